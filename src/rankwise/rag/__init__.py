"""Retrieval-augmented generation: retrieve -> re-rank -> build a cited context -> generate.

:class:`Pipeline` (:mod:`rankwise.rag.pipeline`) runs the flow over any retriever (``rankwise.retrieval.Index``) and
re-ranker; :class:`Generator` (:mod:`rankwise.rag.generation`) writes an answer from numbered passages with an LLM
and maps its ``[n]`` citations back to documents.

Example:
    >>> from rankwise.rag import Pipeline                                        # doctest: +SKIP
    >>> from rankwise.retrieval import Index                                     # doctest: +SKIP
    >>> Pipeline(Index.load("docs.index"), reranker="bm25").run("how does bm25 rank?")  # doctest: +SKIP

Names are imported lazily: ``import rankwise.rag`` imports neither the LLM clients nor the retrieval indexes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rankwise._lazy import by_name, lazy_attributes

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ below imports each name
    from rankwise.rag.generation import (
        RAG_PROMPT,
        Citation,
        Generation,
        GenerationError,
        Generator,
        parse_citations,
        passage_text,
    )
    from rankwise.rag.pipeline import ContextPassage, Pipeline, PipelineResult

_LAZY: dict[str, str] = by_name(
    {
        "rankwise.rag.pipeline": ("Pipeline", "PipelineResult", "ContextPassage"),
        "rankwise.rag.generation": (
            "Generator",
            "Generation",
            "GenerationError",
            "Citation",
            "parse_citations",
            "passage_text",
            "RAG_PROMPT",
        ),
    }
)

__all__ = list(_LAZY)


# PEP 562 hooks: each name is imported on first use, so importing this package stays light.
__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals(), __all__)
