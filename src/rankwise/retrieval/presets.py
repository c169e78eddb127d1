"""Presets loaded for re-ranking an index's own hits: the ones that can use what the index holds.

``default`` and ``minilm-bi-encoder`` take each candidate's vector from the index when the bundled model embedded it
(:class:`~rankwise.retrieval.stored.StoredVectorReranker`): the same scores as the bi-encoder, no embedding.
``rankwise search``/``ask`` and :class:`~rankwise.rag.pipeline.Pipeline` (given a preset name) load presets this way.

The index's corpus statistics are *not* given to ``default`` (``corpus=``, BM25 with the collection's IDF): measured
on scifact/train and nfcorpus/dev (``benchmarks/rag.py --split``, ``results/rag_default_choice_*.json``), re-ranking
an index's top 100 documents with corpus BM25 tied BM25 over the candidates on BM25 hits (0.7368 vs 0.7370, 0.3219 vs
0.3217) and lost on dense hits (-0.012, -0.007) and hybrid hits (-0.007, -0.008): the hits were found with that very
score, and candidate BM25 adds a signal that differs from it. (Re-ranking hits found by another system is where
corpus statistics help: ``rankwise.load("default", corpus=...)``.)

Example:
    >>> from rankwise.retrieval import Index                                    # doctest: +SKIP
    >>> index = Index.load("docs.index")                                        # doctest: +SKIP
    >>> reranker = preset_for_index("default", index)                          # doctest: +SKIP
    >>> hits = index.search("lstm memory", top_k=50)                           # doctest: +SKIP
    >>> reranker.rank("lstm memory", [h.passage.to_document() for h in hits]).signals  # doctest: +SKIP
    ('candidate-bm25', 'sentence-transformers/all-MiniLM-L6-v2')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rankwise.rerankers.base import Reranker
    from rankwise.retrieval.index import Index

INDEX_AWARE_PRESETS = ("default", "minilm-bi-encoder")


def preset_for_index(name: str, index: Index | None) -> Reranker | None:
    """The preset ``name`` scoring with ``index``'s stored vectors, or None when that does not apply (``name`` is
    another preset, there is no index, or the bundled model did not embed it): then load it as usual."""
    stored = _stored_vectors(index) if name in INDEX_AWARE_PRESETS else None
    if stored is None or name == "minilm-bi-encoder":
        return stored
    from rankwise.registry import load

    return load(name, bi_encoder=stored)


def _stored_vectors(index: Index | None) -> Reranker | None:
    """Cosines from the index's vectors when the bundled bi-encoder embedded it (the presets' own model), else None."""
    dense = getattr(index, "dense", None)
    if dense is None:
        return None
    from rankwise.retrieval.dense import BUNDLED_MODEL
    from rankwise.retrieval.stored import StoredVectorReranker

    return StoredVectorReranker(index) if dense.model == BUNDLED_MODEL else None
