"""The saved LTR model: a folder with ``ltr.json`` (the manifest) and ``model.txt`` (LightGBM's text model).

``ltr.json`` holds everything needed to compute the features again at serving time::

    {"format": "rankwise-ltr", "version": 2,
     "members": [{"label": "bm25", "name": "bm25", "backend": null, "options": {}}, ...],
     "metadata_fields": ["price"], "text_features": true,
     "feature_names": ["score:bm25", "zscore:bm25", ...],
     "prior": {"zscore:bm25": 0.25, "zscore:minilm-bi-encoder": 0.75},
     "history": {"encoder": {"label": "minilm-bi-encoder", ...}, "queries": 2590, ...} or null,
     "params": {...LightGBM parameters...}, "best_iteration": 87, "report": {...training report...}}

A candidate's score is the trees' output (unless ``"trees": false``: they did not beat the prior on validation)
plus ``prior`` (weights of features, :mod:`rankwise.train.lambdamart.prior`;
the trees were boosted from it). With ``history`` (training's ``history=True``) the folder also holds
``history.npz``, the training queries' judgments the ``history:`` features read
(:mod:`rankwise.train.lambdamart.history`), and ``encoder`` is the bi-encoder that embeds queries for it. Version 1
(before the prior) is read as a model with an empty prior, version 2 (before the history) as one without history.

Members are re-ranker specs (a preset, ``NAME:BACKEND:OPTIONS`` or a JSON object, as in ``rankwise eval -r``)
stored as ``name``/``backend``/``options``; a member that is a local folder is stored as an absolute path (so the
model works from any current directory) and as ``relative``, its path from the model folder: loading tries the
relative path first, so a model moved together with its member folders (``models/ce`` + ``models/ltr`` copied to
another machine) keeps working, and one moved alone still finds members that stayed. ``rankwise.load(folder)``
recognises the folder by its ``ltr.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rankwise.errors import InvalidInputError

FORMAT = "rankwise-ltr"
VERSION = 3
READABLE_VERSIONS = (1, 2, 3)  # version 1 had no prior, version 2 no judgment history
MANIFEST = "ltr.json"
BOOSTER = "model.txt"


@dataclass(frozen=True)
class MemberSpec:
    """One member re-ranker of an LTR model, as stored in the manifest."""

    label: str
    name: str | None
    backend: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    relative: str | None = None  # a folder member's path from the model folder (set when saved)

    def to_dict(self) -> dict[str, Any]:
        out = {"label": self.label, "name": self.name, "backend": self.backend, "options": dict(self.options)}
        return out if self.relative is None else {**out, "relative": self.relative}

    def located(self, model_folder: Path) -> MemberSpec:
        """This member with ``name`` pointing at its folder as seen from ``model_folder`` (``relative`` when that
        exists, else the stored absolute path)."""
        if self.relative is not None and (model_folder / self.relative).exists():
            return replace(self, name=str((model_folder / self.relative).resolve()))
        return self

    def with_relative(self, model_folder: Path) -> MemberSpec:
        """This member with ``relative`` filled in when it is a local folder (the model is being saved there)."""
        if self.name is None or not Path(self.name).is_absolute() or not Path(self.name).exists():
            return self
        return replace(self, relative=os.path.relpath(self.name, model_folder.resolve()))


@dataclass(frozen=True)
class Manifest:
    """The content of ``ltr.json``."""

    members: tuple[MemberSpec, ...]
    metadata_fields: tuple[str, ...]
    text_features: bool
    feature_names: tuple[str, ...]
    params: dict[str, Any]
    best_iteration: int
    report: dict[str, Any] = field(default_factory=dict)
    prior: dict[str, float] = field(default_factory=dict)
    trees: bool = True
    history: dict[str, Any] | None = None  # {"encoder": MemberSpec dict, ...summary}; None: no history features

    def history_encoder(self) -> MemberSpec | None:
        """The bi-encoder that embeds queries for the history features (None without history)."""
        if self.history is None:
            return None
        e = self.history["encoder"]
        return MemberSpec(str(e["label"]), e["name"], e.get("backend"), dict(e.get("options") or {}), e.get("relative"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "members": [m.to_dict() for m in self.members],
            "metadata_fields": list(self.metadata_fields),
            "text_features": self.text_features,
            "feature_names": list(self.feature_names),
            "prior": dict(self.prior),
            "trees": self.trees,
            "history": self.history,
            "params": self.params,
            "best_iteration": self.best_iteration,
            "report": self.report,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str) -> Manifest:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InvalidInputError(f"{source} is not a rankwise LTR manifest (no \"format\": {FORMAT!r}).")
        if data.get("version") not in READABLE_VERSIONS:
            raise InvalidInputError(
                f"{source} has LTR format version {data.get('version')!r}; this rankwise reads versions "
                f"{', '.join(map(str, READABLE_VERSIONS))}: retrain the model with this version (rankwise train ltr)."
            )
        try:
            members = tuple(
                MemberSpec(str(m["label"]), m["name"], m.get("backend"), dict(m.get("options") or {}),
                           m.get("relative"))
                for m in data["members"]
            )
            prior = {str(k): float(v) for k, v in (data.get("prior") or {}).items()}
            unknown = sorted(set(prior) - {str(n) for n in data["feature_names"]})
            if unknown:
                raise ValueError(f"a prior over {unknown}, which are no features")
            return cls(
                members=members,
                metadata_fields=tuple(str(f) for f in data["metadata_fields"]),
                text_features=bool(data["text_features"]),
                feature_names=tuple(str(n) for n in data["feature_names"]),
                params=dict(data["params"]),
                best_iteration=int(data["best_iteration"]),
                report=dict(data.get("report") or {}),
                prior=prior,
                trees=bool(data.get("trees", True)),
                history=_history(data.get("history")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"{source} is missing or garbles {exc}; retrain the model (rankwise train ltr).") from exc


def _history(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("encoder"), dict) or "label" not in raw["encoder"]:
        raise ValueError("'history', which must name its encoder")
    return dict(raw)


def save_model(folder: str | Path, manifest: Manifest, booster: Any, history: Any = None) -> Path:
    """Write ``ltr.json`` and ``model.txt`` (and ``history.npz`` when the model has a judgment history) into
    ``folder`` (created; existing files of those names replaced)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(f"output {str(folder)!r} is a file; give a folder to write the model into.")
    folder.mkdir(parents=True, exist_ok=True)
    manifest = replace(manifest, members=tuple(m.with_relative(folder) for m in manifest.members))
    if (history is None) != (manifest.history is None):
        raise InvalidInputError("a model with history features is saved with its JudgmentHistory, and only then.")
    if history is not None:
        encoder = manifest.history_encoder().with_relative(folder)  # type: ignore[union-attr]
        manifest = replace(manifest, history={**manifest.history, "encoder": encoder.to_dict()})  # type: ignore[dict-item]
        history.save(folder)
    booster.save_model(str(folder / BOOSTER), num_iteration=manifest.best_iteration or None)
    tmp = folder / f".{MANIFEST}.tmp{os.getpid()}"
    tmp.write_text(json.dumps(manifest.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, folder / MANIFEST)  # the manifest last: a folder with ltr.json is complete
    return folder


def read_manifest(folder: str | Path) -> Manifest:
    """The manifest of a saved model folder."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise InvalidInputError(
            f"{str(folder)!r} is not an LTR model folder (no {MANIFEST}); train one with rankwise train ltr."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{path} cannot be read as JSON ({exc}); retrain the model.") from exc
    return Manifest.from_dict(data, str(path))


def load_booster(folder: str | Path) -> Any:
    """The LightGBM Booster of a saved model folder."""
    from rankwise.errors import require

    lgb = require("lightgbm", "ltr", "learning to rank (the ltr backend)")
    path = Path(folder) / BOOSTER
    if not path.is_file():
        raise InvalidInputError(f"{str(folder)!r} has {MANIFEST} but no {BOOSTER}; retrain the model.")
    return lgb.Booster(model_file=str(path))
