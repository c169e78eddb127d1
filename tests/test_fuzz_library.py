"""Fuzz: random queries and candidates through every offline preset and a tiny cross-encoder.

Each example must rank or raise :class:`InvalidInputError`, nothing else, and a ranking must hold the library's
contract: every input exactly once, ``index`` mapping back to it, the caller's own objects returned, finite scores,
ranks 1..n, ties in input order, and ``score()`` equal to ``rank()``'s scores by index.

Seeds are pinned (``derandomize=True``): CI runs the same examples every time. For a longer, still reproducible
run set ``RANKWISE_FUZZ_EXAMPLES`` (default 25 examples per model), e.g. ``RANKWISE_FUZZ_EXAMPLES=2000``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import event, given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import rankwise  # noqa: E402
from rankwise import CrossEncoderReranker, Document, InvalidInputError  # noqa: E402
from tests.support.fuzzing import fuzz_settings  # noqa: E402

FUZZ = fuzz_settings(25)

# Any code point, lone surrogates included (hypothesis leaves them out by default), plus the crafted cases that broke.
CHARACTERS = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
CRAFTED = ["", " ", "A", "7", "👍", "the of", "it is", "\ud800", "lstm \udc00 memory", "\x00\x1f\x7f", "\u200b",
           "LSTM networks keep long-term memory.", "é" * 300, "memory " * 200]
TEXT = st.one_of(st.text(CHARACTERS, max_size=40), st.sampled_from(CRAFTED))
JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=6,
)
SCORE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


def _documents(with_score: bool) -> st.SearchStrategy[Any]:
    """A string, a dict (id/title/metadata/extra keys) or a Document; with ``with_score`` always carrying a
    ``first_stage_score`` (strings then cannot: they have no metadata)."""
    metadata = st.dictionaries(TEXT, JSON_VALUE, max_size=3)
    if with_score:
        metadata = st.builds(lambda m, s: {**m, "first_stage_score": s}, metadata, SCORE)
    as_dict = st.builds(
        lambda text, extra, meta, title, ident: {"text": text, **extra, **({"metadata": meta} if meta else {}),
                                                 **({"title": title} if title is not None else {}),
                                                 **({"id": ident} if ident is not None else {})},
        TEXT,
        st.dictionaries(st.sampled_from(["price", "url", "body", "name"]), JSON_VALUE, max_size=2),
        metadata,
        st.none() | TEXT,
        st.none() | TEXT | st.integers(),
    )
    as_document = st.builds(Document, TEXT, id=st.none() | TEXT | st.integers(), title=st.none() | TEXT,
                            metadata=metadata)
    kinds = [as_dict, as_document] if with_score else [TEXT, as_dict, as_document]
    return st.one_of(*kinds)


def _candidates(with_score: bool = False) -> st.SearchStrategy[list[Any]]:
    return st.lists(_documents(with_score), max_size=8)


QUERY = st.one_of(TEXT, st.text(CHARACTERS, min_size=1, max_size=200))


def check_ranking(model: rankwise.Reranker, query: Any, docs: list[Any], top_k: int | None) -> None:
    """The contract every ranking keeps (or an InvalidInputError, the one documented refusal)."""
    try:
        results = model.rank(query, docs)
    except InvalidInputError as exc:
        event(f"refused: {str(exc)[:40]}")  # --hypothesis-show-statistics shows how often, and why
        return
    n = len(docs)
    event(f"ranked {min(n, 3)}{'+' if n > 3 else ''} documents")
    assert results.query is query
    assert len(results) == n and sorted(r.index for r in results) == list(range(n))  # each input exactly once
    assert [r.rank for r in results] == list(range(1, n + 1))
    assert all(math.isfinite(r.score) for r in results)
    for a, b in zip(results, results.results[1:]):  # best first, ties in input order
        assert a.score > b.score or (a.score == b.score and a.index < b.index)
    for r in results:
        _assert_callers_document(docs[r.index], r.document)
    assert model.score(query, docs) == [s for _, s in sorted((r.index, r.score) for r in results)]
    if top_k is not None:
        assert model.rank(query, docs, top_k=top_k).results == results.results[:top_k]


def _assert_callers_document(given: Any, returned: Document) -> None:
    if isinstance(given, Document):
        assert returned is given
    elif isinstance(given, str):
        assert returned.text is given
    else:
        assert returned.text is given.get("text", "")
        assert returned.id is given.get("id") and returned.title is given.get("title")
        extras = {k: v for k, v in given.items() if k not in ("text", "id", "title", "metadata")}
        meta: Mapping[str, Any] = given.get("metadata") or {}
        if extras:
            assert dict(returned.metadata) == {**meta, **extras}
        else:
            assert returned.metadata is given.get("metadata", returned.metadata)
        for key, value in returned.metadata.items():  # the caller's value objects, never copies
            assert value is (extras[key] if key in extras else meta[key])


class Models(dict):
    """Each model loaded on first use, once for the module (a missing optional backend skips its tests only)."""

    def __init__(self, tiny_cross_encoder: Any, cache_dir: Any) -> None:
        super().__init__()
        self.makers = {
            "bm25": lambda: rankwise.load("bm25"),
            "default": lambda: rankwise.load("default", device="cpu"),
            "hybrid": lambda: rankwise.load("hybrid", device="cpu"),
            "first-stage-score": lambda: rankwise.load("first-stage-score"),
            "minilm-bi-encoder": lambda: rankwise.load("minilm-bi-encoder", device="cpu"),
            "tiny-cross-encoder": lambda: CrossEncoderReranker(
                tiny_cross_encoder, device="cpu", max_length=64, batch_size=4
            ),
            "tiny-onnx": lambda: _onnx(tiny_cross_encoder, cache_dir),
        }

    def __missing__(self, name: str) -> rankwise.Reranker:
        self[name] = self.makers[name]()
        return self[name]


def _onnx(folder: Any, cache_dir: Any) -> rankwise.Reranker:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from rankwise import OnnxReranker

    return OnnxReranker(folder, cache_dir=cache_dir, max_length=64, batch_size=4)  # exported once, ~1 s


@pytest.fixture(scope="module")
def models(tiny_cross_encoder, tmp_path_factory) -> Models:
    return Models(tiny_cross_encoder, tmp_path_factory.mktemp("fuzz-onnx-cache"))


TOP_K = st.none() | st.integers(min_value=1, max_value=10)


@pytest.mark.parametrize("name", ["bm25", "default", "minilm-bi-encoder", "tiny-cross-encoder", "tiny-onnx"])
@FUZZ
@given(query=QUERY, docs=_candidates(), top_k=TOP_K)
def test_any_text_ranks_or_is_refused_cleanly(models, name, query, docs, top_k) -> None:
    check_ranking(models[name], query, docs, top_k)


@pytest.mark.parametrize("name", ["hybrid", "first-stage-score"])
@FUZZ
@given(query=QUERY, docs=_candidates(with_score=True), top_k=TOP_K)
def test_first_stage_scores_rank_with_any_text(models, name, query, docs, top_k) -> None:
    check_ranking(models[name], query, docs, top_k)


BAD_DOCS = st.one_of(
    st.none(), st.integers(), st.floats(), st.binary(max_size=5), TEXT, st.dictionaries(TEXT, JSON_VALUE, max_size=2),
    st.lists(st.one_of(st.none(), st.integers(), st.fixed_dictionaries({"text": st.integers()}),
                       st.fixed_dictionaries({"text": TEXT, "metadata": st.integers() | TEXT}),
                       st.fixed_dictionaries({"text": TEXT, "title": st.integers()})), min_size=1, max_size=3),
)


@FUZZ
@given(query=st.one_of(st.none(), st.integers(), st.just(""), st.just(" \n"), QUERY), docs=BAD_DOCS)
def test_malformed_input_is_an_invalid_input_error(models, query, docs) -> None:
    for name in ("bm25", "tiny-cross-encoder"):
        with pytest.raises(InvalidInputError):
            models[name].rank(query, docs)
