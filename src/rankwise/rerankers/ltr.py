"""A learnt ranker: LightGBM LambdaMART over the scores of member re-rankers, metadata numbers and text features.

A model folder comes from ``rankwise train ltr`` / :func:`rankwise.train.ltr` (``ltr.json`` + ``model.txt``, see
:mod:`rankwise.train.lambdamart.model`). Serving it computes the very features training computed (the same
:class:`~rankwise.train.lambdamart.features.FeatureExtractor`), member by member, then adds the trees' output
(LightGBM, unless they lost to the prior on validation) to the prior they were boosted from (a weighted sum of the
members' z-scores); a model trained with judgment history reads it from the folder (``history.npz``). So scores
match training's exactly and the model works wherever a re-ranker does: library, CLI, server, batch.

Example:
    >>> import rankwise                                            # doctest: +SKIP
    >>> ranker = rankwise.load("my-ltr-model")                     # doctest: +SKIP
    >>> ranker.rank("query", [{"text": "...", "first_stage_score": 12.3}, ...])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankwise.errors import InvalidInputError, require
from rankwise.rerankers.base import ProgressCallback, Reranker
from rankwise.train.lambdamart.fit import model_scores
from rankwise.types import Document

MemberLoader = Callable[..., Reranker]


def build_member(spec: Any, loader: MemberLoader, extra: Mapping[str, Any] | None = None) -> Reranker:
    """The re-ranker of one :class:`~rankwise.train.lambdamart.model.MemberSpec` (``extra`` options over its
    own), built with the registry's ``loader`` (this module never imports the registry: no import cycle)."""
    if spec.name is None:
        raise InvalidInputError(f"LTR member {spec.label!r} names no model or preset; retrain with a preset or MODEL.")
    return loader(spec.name, backend=spec.backend, **{**spec.options, **(extra or {})})


class LTRReranker(Reranker):
    """Scores candidates with a trained LambdaMART model (see the module docs).

    Args:
        path: the model folder (``ltr.json`` + ``model.txt``).
        member_options: ``{member label: {option: value}}`` given to that member when it is built (e.g. a
            ``batch_size`` for a cross-encoder member); the features, and so the model, stay the same.
        name: the model name put on results (default ``"ltr:<folder name>"``).
        loader: builds members by name; the registry passes :func:`rankwise.load`, so build it with
            ``rankwise.load(path)``.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        member_options: Mapping[str, Mapping[str, Any]] | None = None,
        name: str | None = None,
        loader: MemberLoader | None = None,
    ) -> None:
        from rankwise.train.lambdamart.features import FeatureExtractor
        from rankwise.train.lambdamart.model import load_booster, read_manifest

        require("lightgbm", "ltr", "the ltr backend (LightGBM LambdaMART)")
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        labels = [m.label for m in self.manifest.members]
        unknown = sorted(set(member_options or {}) - set(labels))
        if unknown:
            raise InvalidInputError(
                f"member_options names {', '.join(map(repr, unknown))}, which is no member of {self.path}; "
                f"members: {', '.join(map(repr, labels))}."
            )
        if loader is None:
            raise InvalidInputError(
                f"LTRReranker({str(path)!r}) needs loader= to build its members; use rankwise.load({str(path)!r})."
            )
        built = [
            (m.label, build_member(m.located(self.path), loader, (member_options or {}).get(m.label)))
            for m in self.manifest.members
        ]
        self.extractor = FeatureExtractor(built, self.manifest.metadata_fields, self.manifest.text_features,
                                          self._history(built, loader))
        if tuple(self.extractor.names) != self.manifest.feature_names:
            raise InvalidInputError(
                f"{self.path}: the features this rankwise computes differ from the model's "
                f"({len(self.extractor.names)} vs {len(self.manifest.feature_names)}); retrain the model."
            )
        self.booster = load_booster(self.path)
        self.name = name or f"ltr:{self.path.resolve().name}"
        self._init_args = (self.path, dict(member_options or {}), name, loader)

    def _history(self, built: Sequence[tuple[str, Reranker]], loader: MemberLoader) -> Any:
        """The judgment-history features of a model trained with them (None otherwise); the query encoder is the
        member of the same spec when there is one."""
        encoder = self.manifest.history_encoder()
        if encoder is None:
            return None
        from rankwise.train.lambdamart.history import HistoryFeatures, JudgmentHistory

        reused = [r for label, r in built if label == encoder.label]
        model = reused[0] if reused else build_member(encoder.located(self.path), loader)
        return HistoryFeatures(JudgmentHistory.load(self.path), model)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its folder and options (rebuilt on load): members such as BM25 hold modules that do not
        pickle, and the folder is what defines the model (Ray workers, process pools)."""
        path, member_options, name, loader = self._init_args
        return (_rebuild, (path, member_options, name, loader))

    def members(self) -> tuple[Reranker, ...]:
        """The member re-rankers whose scores are features, in order."""
        return tuple(r for _, r in self.extractor.members)

    def features(self, query: str, documents: Sequence[Document]) -> np.ndarray:
        """The feature matrix of the candidates (columns: ``self.extractor.names``), to inspect a ranking."""
        return self.extractor.matrix(query, list(documents))

    def _score(self, query: str, documents: list[Document], progress: ProgressCallback | None) -> list[float]:
        rows = self.extractor.matrix(query, documents, progress=progress)
        trees = self.booster if self.manifest.trees else None
        return [float(s) for s in model_scores(rows, self.extractor.names, self.manifest.prior, trees)]


def _rebuild(
    path: Path, member_options: dict[str, Any], name: str | None, loader: MemberLoader | None
) -> LTRReranker:
    return LTRReranker(path, member_options=member_options, name=name, loader=loader)


def build_ltr(
    path: str | Path,
    *,
    member_options: Mapping[str, Mapping[str, Any]] | None = None,
    name: str | None = None,
    loader: MemberLoader | None = None,
    options_of: Callable[..., Any] | None = None,
) -> LTRReranker:
    """Registry entry point (composite: the registry passes ``loader`` and ``options_of``)."""
    del options_of  # members' options are fixed by the manifest; member_options are checked by the members
    return LTRReranker(path, member_options=member_options, name=name, loader=loader)


def _accepted_options(*, options_of: Callable[..., Any], **_: Any) -> tuple[str, ...]:
    return ("member_options", "name")


build_ltr.accepted_options = _accepted_options  # type: ignore[attr-defined]
