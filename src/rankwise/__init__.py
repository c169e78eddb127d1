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

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from rankwise._lazy import by_name, lazy_attributes

try:
    __version__ = version("rankwise")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

_LAZY: dict[str, str] = by_name(
    {
        "rankwise.types": ("Document", "RankedResult", "RankedResults"),
        "rankwise.errors": (
            "RankwiseError",
            "InvalidInputError",
            "UnknownModelError",
            "MissingDependencyError",
        ),
        "rankwise.rerankers.base": ("Reranker",),
        "rankwise.registry": ("load", "presets", "backends"),
        "rankwise.rerankers.cross_encoder.torch": ("CrossEncoderReranker",),
        "rankwise.rerankers.cross_encoder.onnx": ("OnnxReranker",),
        "rankwise.rerankers.cross_encoder.openvino": ("OpenVinoReranker",),
        "rankwise.rerankers.bi_encoder": ("BiEncoderReranker",),
        "rankwise.rerankers.lexical": ("BM25Reranker",),
        "rankwise.rerankers.fusion": ("FusionReranker",),
        "rankwise.rerankers.cascade": ("Cascade",),
        "rankwise.rerankers.ltr": ("LTRReranker",),
        "rankwise.rerankers.corpus_bm25": ("CorpusStats", "CorpusBM25Reranker"),
        "rankwise.selection": ("select", "best_of_n", "preference_pairs"),
        "rankwise.rag.pipeline": ("Pipeline",),
    }
)

__all__ = ["__version__", *_LAZY]


# Subpackages used as namespaces in the docs (``rankwise.train.ltr(...)``, ``rankwise.batch.rerank_dataset(...)``):
# each is imported when first read, like the names above.
_SUBPACKAGES = ("batch", "distributed", "evaluation", "integrations", "llm", "rag", "retrieval", "server", "train")

# PEP 562 hooks: each name is imported on first use, so importing this package stays light.
__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals(), __all__, _SUBPACKAGES)


if TYPE_CHECKING:  # for type checkers and IDEs only
    from rankwise.errors import InvalidInputError, MissingDependencyError, RankwiseError, UnknownModelError
    from rankwise.rag.pipeline import Pipeline
    from rankwise.registry import backends, load, presets
    from rankwise.rerankers.base import Reranker
    from rankwise.rerankers.bi_encoder import BiEncoderReranker
    from rankwise.rerankers.cascade import Cascade
    from rankwise.rerankers.corpus_bm25 import CorpusBM25Reranker, CorpusStats
    from rankwise.rerankers.cross_encoder.onnx import OnnxReranker
    from rankwise.rerankers.cross_encoder.openvino import OpenVinoReranker
    from rankwise.rerankers.cross_encoder.torch import CrossEncoderReranker
    from rankwise.rerankers.fusion import FusionReranker
    from rankwise.rerankers.lexical import BM25Reranker
    from rankwise.rerankers.ltr import LTRReranker
    from rankwise.selection import best_of_n, preference_pairs, select
    from rankwise.types import Document, RankedResult, RankedResults
