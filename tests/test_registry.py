"""The registry table: one row per backend, lazily imported factories, options from their signatures, and the
backends that were only reachable by hand before (stored index vectors)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import rankwise
from rankwise.errors import InvalidInputError, UnknownModelError
from rankwise.registry import BackendSpec, backend_specs, options_of
from rankwise.rerankers.fusion import build_fusion
from rankwise.rerankers.lexical import BM25Reranker


def test_every_row_names_an_importable_factory_and_an_extra() -> None:
    specs = backend_specs()
    assert set(specs) == set(rankwise.backends())
    for name, spec in specs.items():
        assert isinstance(spec, BackendSpec) and spec.name == name and spec.extra and spec.description
        assert callable(spec.target()), name
    for preset in rankwise.presets().values():  # every preset's backend is a row
        assert preset.backend in specs


def test_unknown_backend_and_option_errors_name_the_fix() -> None:
    with pytest.raises(UnknownModelError, match="valid backends: .*stored-vectors"):
        rankwise.load("x", backend="nope")
    with pytest.raises(InvalidInputError, match="bm25 does not take batch_size; valid options are: k1, b,"):
        rankwise.load("bm25", batch_size=3)


def test_fusion_builds_named_members_only_through_a_loader() -> None:
    with pytest.raises(InvalidInputError, match="need loader= and options_of="):
        build_fusion(["bm25", BM25Reranker()])
    fused = build_fusion(["bm25", BM25Reranker(k1=1.2)], loader=rankwise.load, options_of=options_of, k1=0.9)
    assert [m.k1 for m in fused.members()] == [0.9, 1.2]  # the shared option reached the named member only
    assert fused.members() == tuple(fused.rerankers)


class _HashEmbedder:
    """A tiny deterministic embedder (unit vectors from word hashes): an index with a dense part, no torch."""

    name = "test/hash-embedder"
    dim = 16

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for word in text.lower().split():
            v[int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        return v / (np.linalg.norm(v) or 1.0)

    def embed_documents(self, texts):
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_query(self, query: str) -> np.ndarray:
        return self._vector(query)


def test_stored_vectors_is_a_backend_loaded_by_name(tmp_path) -> None:
    pytest.importorskip("faiss")
    from rankwise.retrieval import Index, StoredVectorReranker

    embedder = _HashEmbedder()
    docs = [{"id": "a", "text": "lstm gates keep memory"}, {"id": "b", "text": "convolutions see images"}]
    folder = Index.build(docs, bm25=False, embedder=embedder).save(tmp_path / "idx")
    reranker = rankwise.load(folder, backend="stored-vectors", embedder=embedder)
    assert isinstance(reranker, StoredVectorReranker) and reranker.name == embedder.name
    assert reranker.independent_scores
    hits = reranker.index.passages
    candidates = [p.to_document() for p in hits] + ["lstm memory outside the index"]
    expected = [float(embedder.embed_query("lstm memory") @ embedder._vector(d if isinstance(d, str) else d.text))
                for d in candidates]
    np.testing.assert_allclose(reranker.score("lstm memory", candidates), expected, atol=1e-6)
    assert options_of(folder, backend="stored-vectors") == ("embedder",)
    with pytest.raises(InvalidInputError, match="embedder= is for opening an index folder"):
        StoredVectorReranker(reranker.index, embedder=embedder)
