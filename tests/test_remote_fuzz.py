"""Fuzz (hypothesis) what a remote re-ranker takes from outside: the provider's answer. Any JSON either gives one
finite score per document, in call order, or a :class:`RemoteAnswerError` -- never another exception, never a partial
ranking; and any split of any documents (duplicates included) merges back in input order."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rankwise
from rankwise.rerankers.remote import RemoteAnswerError, RemoteError
from rankwise.rerankers.remote._answers import read_scores, units_of
from tests.support.fuzzing import fuzz_settings
from tests.support.remote_servers import FailureServer, answer, cohere_answer, overlap_scores, raw

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=8), c, max_size=5),
    max_leaves=25,
)
indexes = st.integers(-2, 9) | st.booleans() | st.floats(-1, 9) | st.text(max_size=2) | st.none()
scores = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**400), 10**400) | scalars
results = st.lists(
    st.fixed_dictionaries({"index": indexes, "relevance_score": scores}) | json_values, max_size=10
)
answers = json_values | st.builds(
    lambda r, extra: {"results": r, **extra},
    results,
    st.dictionaries(st.text(max_size=5), json_values, max_size=2),
)


def check(answer: object, n: int) -> None:
    """The invariant: a full, finite, in-order ranking, or a RemoteAnswerError."""
    positions = list(range(100, 100 + n))
    try:
        out = read_scores(
            answer, items="results", score="relevance_score", positions=positions, provider="p", url="u"
        )
    except RemoteAnswerError as exc:
        assert str(exc).startswith("p at u answered")
        return
    assert len(out) == n and all(isinstance(s, float) and math.isfinite(s) for s in out)
    by_index = {r["index"]: r["relevance_score"] for r in answer["results"]}  # type: ignore[index]
    assert out == [float(by_index[i]) for i in range(n)]
    assert len(answer["results"]) == n  # type: ignore[index]  # exactly once each


@fuzz_settings(300)
@given(answers, st.integers(0, 8))
def test_any_answer_is_a_full_ranking_or_one_clear_error(answer: object, n: int) -> None:
    check(answer, n)


@fuzz_settings(200)
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=30),
    st.randoms(),
)
def test_well_formed_answers_in_any_order_read_back_exactly(values: list[float], rnd: random.Random) -> None:
    items = [{"index": i, "relevance_score": v, "document": {"text": "x"}} for i, v in enumerate(values)]
    rnd.shuffle(items)
    answer = {
        "results": items,
        "meta": {"billed_units": {"search_units": rnd.choice([1, "x", None, -1, 2.5])}},
    }
    check(answer, len(values))
    units = units_of(answer, search_units=("meta", "billed_units", "search_units"))
    assert set(units) <= {"search_units"} and all(v >= 0 and math.isfinite(v) for v in units.values())


@pytest.fixture(scope="module")
def server():  # noqa: ANN201 - one scripted server for every example (a server per example costs ~0.5 s)
    with FailureServer() as s:
        yield s


@fuzz_settings(25)
@given(
    st.lists(st.sampled_from(["lstm gates", "pooling", "memory gates", "", "lstm \u00e9", "x"]), max_size=14),
    st.integers(1, 5),
    st.integers(1, 3),
    st.integers(0, 2**32 - 1),
)
def test_any_split_of_any_documents_merges_in_input_order(
    server, docs, limit: int, threads: int, seed: int
) -> None:  # noqa: ANN001
    """Over a real socket: documents split into calls of ``limit``, answered in shuffled order, merge back exactly."""

    rnd = random.Random(seed)  # a plain generator: the server thread must not draw from hypothesis itself

    def shuffled(body: dict) -> dict:
        out = cohere_answer(body)
        rnd.shuffle(out["results"])
        return out

    server.script.clear()
    server.script.extend([answer(shuffled)] * 20)
    reranker = rankwise.load(
        "m",
        backend="cohere",
        base_url=server.base_url,
        api_key="k",
        max_documents_per_call=limit,
        concurrency=threads,
    )
    ranked, cost = reranker.rank_with_cost("lstm memory gates", docs)
    assert [r.score for r in sorted(ranked, key=lambda r: r.index)] == overlap_scores(
        "lstm memory gates", docs
    )
    assert cost.documents == len(set(docs)) and cost.calls == -(-len(set(docs)) // limit)


@fuzz_settings(60)
@given(st.binary(max_size=60) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_body_over_http_is_a_ranking_or_a_remote_error(server, body: bytes) -> None:  # noqa: ANN001
    server.script.clear()
    server.script.append(raw(body))
    reranker = rankwise.load("m", backend="cohere", base_url=server.base_url, api_key="k", max_retries=0)
    try:
        scores = reranker.score("q", ["a", "b"])
    except RemoteError:
        return
    assert len(scores) == 2 and all(
        math.isfinite(s) for s in scores
    )  # pragma: no cover - random bodies rarely pass


@pytest.mark.parametrize("n", [0, 1, 3])
def test_empty_and_minimal_answers(n: int) -> None:
    check({"results": [{"index": i, "relevance_score": i} for i in range(n)]}, n)
    check([], n)
