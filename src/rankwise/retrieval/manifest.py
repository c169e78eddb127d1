"""The index manifest (``manifest.json``): what wrote the index, how, and with which embedding model.

It is written last when an index is saved and checked first when one is loaded:

* ``format`` must be ``"rankwise-index"`` and ``format_version`` the one this rankwise reads (:data:`FORMAT_VERSION`);
* ``rankwise_version`` must not be newer than the running rankwise (a newer writer may store what this one misreads);
* ``dense.model`` must be the embedder's name when an embedder is passed (vectors of two models are not comparable),
  and ``dense.dim`` the size of the vectors it makes (checked on the first query).

Example:
    >>> check_manifest({"format": "rankwise-index", "format_version": FORMAT_VERSION, "rankwise_version": "0.0.1"},
    ...                "idx")["format_version"] == FORMAT_VERSION
    True
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rankwise.retrieval.errors import IndexCompatibilityError, IndexNotFoundError

FORMAT = "rankwise-index"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


def read_manifest(folder: Path) -> dict[str, Any]:
    """The checked manifest of the index in ``folder``."""
    if not folder.is_dir():
        raise IndexNotFoundError(
            f"index folder {str(folder)!r} does not exist; build it with `rankwise index DOCS --out {folder}` "
            "(or rankwise.retrieval.Index.build(...).save(folder))."
        )
    path = folder / MANIFEST
    if not path.is_file():
        raise IndexNotFoundError(
            f"{str(folder)!r} has no {MANIFEST}: it is not a rankwise index, or its build was interrupted; rebuild it "
            f"with `rankwise index DOCS --out {folder}`."
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise IndexCompatibilityError(f"cannot read {path}: {exc}; rebuild the index with `rankwise index`.") from exc
    if not isinstance(manifest, dict):
        raise IndexCompatibilityError(f"{path} is not a JSON object; rebuild the index with `rankwise index`.")
    return check_manifest(manifest, str(folder))


def check_manifest(manifest: dict[str, Any], where: str) -> dict[str, Any]:
    """Raise :class:`IndexCompatibilityError` unless this rankwise can read the index the manifest describes."""
    from rankwise import __version__

    written_by = str(manifest.get("rankwise_version", "unknown"))
    if manifest.get("format") != FORMAT:
        raise IndexCompatibilityError(
            f"{where} is not a rankwise index (format {manifest.get('format')!r}, expected {FORMAT!r})."
        )
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise IndexCompatibilityError(
            f"index {where} has format version {version!r} (written by rankwise {written_by}), but rankwise "
            f"{__version__} reads format version {FORMAT_VERSION}; rebuild it with `rankwise index DOCS --out {where}` "
            f"or use rankwise {written_by}."
        )
    if _newer(written_by, __version__):
        raise IndexCompatibilityError(
            f"index {where} was written by rankwise {written_by}, newer than this rankwise {__version__}; upgrade "
            f"rankwise (pip install -U rankwise) or rebuild the index with this version."
        )
    return manifest


def check_model(manifest: dict[str, Any], model: str, where: str) -> None:
    """The embedder passed to load an index must be the model that embedded it."""
    dense = manifest.get("dense") or {}
    if dense and dense.get("model") != model:
        raise IndexCompatibilityError(
            f"index {where} was embedded with {dense.get('model')!r}, but the embedder given is {model!r}; vectors of "
            "different models cannot be compared. Load it without an embedder (the index's model is used), pass that "
            f"model, or rebuild the index with `rankwise index DOCS --out {where} --embedding-model {model}`."
        )


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _release(version: str) -> tuple[int, ...] | None:
    match = re.match(r"^(\d+(?:\.\d+)*)", version)
    return tuple(int(x) for x in match.group(1).split(".")) if match else None


def _newer(written: str, running: str) -> bool:
    """True when ``written`` is a later release than ``running`` (unknown or local versions never are)."""
    a, b = _release(written), _release(running)
    if a is None or b is None or running.startswith("0+"):
        return False
    width = max(len(a), len(b))
    return a + (0,) * (width - len(a)) > b + (0,) * (width - len(b))
