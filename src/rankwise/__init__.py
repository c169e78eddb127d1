"""rankwise: re-rank candidates for search, RAG and LLM response selection.

Quick start::

    import rankwise
    reranker = rankwise.load("default")          # offline: BM25 + MiniLM bi-encoder, z-score fusion
    results = reranker.rank("How does LSTM handle long-term dependencies?", docs)
    for r in results.top_k(3):
        print(r.rank, r.score, r.text)

Public names are imported lazily, so ``import rankwise`` stays fast and never imports torch.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("rankwise")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

_LAZY: dict[str, str] = {
    "Document": "rankwise.types",
    "RankedResult": "rankwise.types",
    "RankedResults": "rankwise.types",
    "RankwiseError": "rankwise.errors",
    "InvalidInputError": "rankwise.errors",
    "UnknownModelError": "rankwise.errors",
    "MissingDependencyError": "rankwise.errors",
    "Reranker": "rankwise.rerankers.base",
    "load": "rankwise.registry",
    "presets": "rankwise.registry",
    "backends": "rankwise.registry",
    "CrossEncoderReranker": "rankwise.rerankers.cross_encoder",
    "OnnxReranker": "rankwise.rerankers.onnx",
    "BiEncoderReranker": "rankwise.rerankers.bi_encoder",
    "BM25Reranker": "rankwise.rerankers.lexical",
    "FusionReranker": "rankwise.rerankers.fusion",
    "select": "rankwise.selection",
    "best_of_n": "rankwise.selection",
    "preference_pairs": "rankwise.selection",
    "Pipeline": "rankwise.pipeline",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rankwise' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: the next access is a plain attribute lookup
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # for type checkers and IDEs only
    from rankwise.errors import InvalidInputError, MissingDependencyError, RankwiseError, UnknownModelError
    from rankwise.registry import backends, load, presets
    from rankwise.rerankers.base import Reranker
    from rankwise.rerankers.bi_encoder import BiEncoderReranker
    from rankwise.rerankers.cross_encoder import CrossEncoderReranker
    from rankwise.rerankers.fusion import FusionReranker
    from rankwise.rerankers.lexical import BM25Reranker
    from rankwise.rerankers.onnx import OnnxReranker
    from rankwise.pipeline import Pipeline
    from rankwise.selection import best_of_n, preference_pairs, select
    from rankwise.types import Document, RankedResult, RankedResults
