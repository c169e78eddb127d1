"""Remote backends against a real rankwise server on loopback (it speaks Cohere v1/v2, Jina and TEI): each backend's
scores equal, bit for bit, what the same model scores in process; documents over the per-call limit are split,
run concurrently and merged in input order; structured documents follow the library's text rule; keys come from the
argument or the environment and never show."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

import rankwise
from rankwise.errors import InvalidInputError
from rankwise.rerankers.remote import RemoteAuthError, RemoteCost, RemoteReranker
from rankwise.types import Document
from tests.support.server import DOCS, QUERIES, live_server

pytest_plugins = ("tests.support.server_fixtures",)  # tiny_ce: the sharp tiny cross-encoder, loaded once

KEY = "provider-secret-key-123"
BACKENDS = {  # backend -> (model/url, options) against the loopback server
    "cohere": lambda url: ("tiny", {"base_url": url}),
    "cohere-v1": lambda url: ("tiny", {"base_url": url, "api_version": 1}),
    "jina": lambda url: ("tiny", {"base_url": url}),
    "tei": lambda url: (url, {"model": "tiny"}),
    "rankwise": lambda url: (url, {"model": "tiny"}),
}


@pytest.fixture(scope="module")
def server(tiny_ce):  # noqa: ANN001
    with live_server({"tiny": tiny_ce}, api_keys=(KEY,)) as s:
        yield s


def load(backend: str, url: str, **options: object) -> RemoteReranker:
    model, base = BACKENDS[backend](url)
    name = "cohere" if backend.startswith("cohere") else backend
    reranker = rankwise.load(model, backend=name, api_key=KEY, **{**base, **options})
    assert isinstance(reranker, RemoteReranker)
    return reranker


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_scores_equal_the_same_model_in_process(server, tiny_ce, backend: str) -> None:  # noqa: ANN001
    reranker = load(backend, server.url)
    for query in QUERIES:
        assert reranker.score(query, DOCS) == tiny_ce.score(query, DOCS)  # bit for bit
    ranked = reranker.rank(QUERIES[0], DOCS, top_k=3)
    direct = tiny_ce.rank(QUERIES[0], DOCS, top_k=3)
    assert [(r.index, r.score) for r in ranked] == [(r.index, r.score) for r in direct]
    assert ranked.model == reranker.name


@pytest.mark.parametrize("backend", ["cohere", "tei", "rankwise"])
def test_split_calls_merge_in_input_order_and_report_cost(server, tiny_ce, backend: str) -> None:  # noqa: ANN001
    docs = [f"{d} (variant {k})" for k in range(3) for d in DOCS]  # 18 distinct texts
    # one call at a time: the server scores each call of 4 as the same model scores those 4 in process, bit for bit
    one_by_one = load(backend, server.url, max_documents_per_call=4, concurrency=1)
    ranked, cost = one_by_one.rank_with_cost(QUERIES[1], docs)
    chunked = [s for start in range(0, 18, 4) for s in tiny_ce.score(QUERIES[1], docs[start : start + 4])]
    assert [r.score for r in sorted(ranked, key=lambda r: r.index)] == chunked
    assert (cost.calls, cost.documents, cost.cached) == (5, 18, 0)  # ceil(18 / 4) calls
    if backend != "tei":  # TEI answers no billing units
        assert cost.units["search_units"] == 5  # the server bills one unit a call of <= 100 documents
    assert one_by_one.cost_total() == cost
    # concurrent calls: the server may batch them together (other padding: float32 rounding), merged in input order
    concurrent = load(backend, server.url, max_documents_per_call=4, concurrency=3)
    scores, cost = concurrent.score(QUERIES[1], docs), concurrent.cost_total()
    np.testing.assert_allclose(scores, tiny_ce.score(QUERIES[1], docs), rtol=1e-5, atol=1e-6)
    assert (cost.calls, cost.documents) == (5, 18)


def test_units_from_our_server_include_tokens(server) -> None:  # noqa: ANN001
    _, cost = load("rankwise", server.url).rank_with_cost(QUERIES[0], DOCS)
    assert cost.units["search_units"] == 1 and cost.units["tokens"] > 0
    _, jina_cost = load("jina", server.url).rank_with_cost(QUERIES[0], DOCS)
    assert jina_cost.units == {"tokens": cost.units["tokens"]}  # Jina's usage.total_tokens, the same count


def test_identical_texts_are_sent_once(server, tiny_ce) -> None:  # noqa: ANN001
    docs = [DOCS[0], DOCS[1], DOCS[0], DOCS[0]]
    scores, cost = load("rankwise", server.url).rank_with_cost(QUERIES[0], docs)
    assert cost.documents == 2
    assert [r.score for r in sorted(scores, key=lambda r: r.index)] == tiny_ce.score(QUERIES[0], docs)


def test_structured_documents_use_the_library_text_rule(server, tiny_ce) -> None:  # noqa: ANN001
    items = [{"name": f"item {i}", "body": d, "price": 5 + i, "id": i} for i, d in enumerate(DOCS)]
    fields = ("name", "body")
    remote = load("cohere", server.url, fields=fields)
    texts = [f"item {i}\n{d}" for i, d in enumerate(DOCS)]  # the fields joined by newlines, as in process
    assert remote.score(QUERIES[0], items) == tiny_ce.score(QUERIES[0], texts)
    ranked = remote.rank(QUERIES[0], items)
    assert {r.document.id for r in ranked} == set(
        range(len(DOCS))
    )  # the caller's documents come back unchanged
    assert all(r.document.metadata["price"] == 5 + r.document.id for r in ranked)


def test_lone_surrogates_are_sent_as_the_model_reads_them(server, tiny_ce) -> None:  # noqa: ANN001
    docs = ["lstm \ud800 gates", DOCS[2]]
    reranker = load("rankwise", server.url)
    assert reranker.score("lstm\udfff memory", docs) == tiny_ce.score("lstm\udfff memory", docs)
    assert reranker.rank("q", docs)[0].document.text in docs  # the caller's text, unchanged


def test_score_groups_share_calls_and_equal_score(server, tiny_ce) -> None:  # noqa: ANN001
    reranker = load("rankwise", server.url)
    groups = [(QUERIES[0], DOCS[:3]), (QUERIES[1], DOCS), (QUERIES[0], DOCS[3:]), (QUERIES[2], [])]
    out = reranker.score_groups(groups)
    for (query, docs), scores in zip(
        groups, out
    ):  # (calls run together: the server may batch them, float32 noise)
        assert scores.dtype == np.float64 and scores.shape == (len(docs),)
        np.testing.assert_allclose(scores, tiny_ce.score(query, docs), rtol=1e-5, atol=1e-6)
    assert reranker.cost_total().calls == 2  # one per distinct query: the two QUERIES[0] groups shared a call


def test_concurrent_callers_get_their_own_scores_and_costs(server, tiny_ce) -> None:  # noqa: ANN001
    reranker = load("cohere", server.url, max_documents_per_call=2)
    expected = {q: tiny_ce.score(q, DOCS) for q in QUERIES}
    errors: list[BaseException] = []
    costs: list[RemoteCost] = []

    def work(query: str) -> None:
        try:
            for _ in range(3):
                ranked, cost = reranker.rank_with_cost(query, DOCS)
                scores = [r.score for r in sorted(ranked, key=lambda r: r.index)]
                np.testing.assert_allclose(
                    scores, expected[query], rtol=1e-5, atol=1e-6
                )  # batched with others
                costs.append(cost)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(q,)) for q in QUERIES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    assert all(c.calls == 3 and c.documents == 6 for c in costs)
    assert reranker.cost_total().calls == 3 * len(costs)


def test_progress_counts_documents_after_each_call(server) -> None:  # noqa: ANN001
    seen: list[tuple[int, int]] = []
    load("tei", server.url, max_documents_per_call=2, concurrency=1).score(
        QUERIES[0], DOCS, progress=lambda d, t: seen.append((d, t))
    )
    assert seen == [(2, 6), (4, 6), (6, 6)]

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt  # a caller that gives up: the call stops, nothing partial comes back

    with pytest.raises(KeyboardInterrupt):
        load("tei", server.url, max_documents_per_call=2).score(QUERIES[0], DOCS, progress=stop)


def test_wrong_key_is_one_clear_error_without_the_key(server) -> None:  # noqa: ANN001
    for backend in ("cohere", "tei", "rankwise"):
        model, base = BACKENDS[backend](server.url)
        reranker = rankwise.load(model, backend=backend, api_key="wrong-key-456", **base)
        with pytest.raises(RemoteAuthError, match="HTTP 401") as err:
            reranker.score(QUERIES[0], DOCS)
        assert "wrong-key-456" not in str(err.value) and err.value.status == 401
        assert "wrong-key-456" not in repr(reranker)


def test_keys_come_from_the_environment(server, tiny_ce, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("COHERE_API_KEY", KEY)
    reranker = rankwise.load("tiny", backend="cohere", base_url=server.url)
    assert reranker.score(QUERIES[0], DOCS) == tiny_ce.score(QUERIES[0], DOCS)
    monkeypatch.setenv("CO_API_KEY", "wrong-first-choice")  # CO_API_KEY (the SDK's) is read first
    with pytest.raises(RemoteAuthError):
        rankwise.load("tiny", backend="cohere", base_url=server.url).score(QUERIES[0], DOCS)
    monkeypatch.setenv("RANKWISE_REMOTE_API_KEY", KEY)
    assert rankwise.load(server.url, backend="rankwise").score(QUERIES[0], DOCS) == tiny_ce.score(
        QUERIES[0], DOCS
    )


@pytest.mark.parametrize(
    ("backend", "env"),
    [
        ("cohere", "CO_API_KEY"),
        ("jina", "JINA_API_KEY"),
        ("voyage", "VOYAGE_API_KEY"),
        ("mixedbread", "MXBAI_API_KEY"),
    ],
)
def test_hosted_apis_need_a_key_at_construction(backend: str, env: str, monkeypatch) -> None:  # noqa: ANN001
    for name in (
        "CO_API_KEY",
        "COHERE_API_KEY",
        "JINA_API_KEY",
        "VOYAGE_API_KEY",
        "MXBAI_API_KEY",
        "MIXEDBREAD_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(InvalidInputError, match=f"needs an API key: set {env}"):
        rankwise.load("some-model", backend=backend)
    monkeypatch.setenv(env, "hosted-secret-789")
    reranker = rankwise.load("some-model", backend=backend)
    assert "hosted-secret-789" not in repr(reranker) and "hosted-secret-789" not in reranker.name


def test_options_are_checked_with_the_value_named() -> None:
    with pytest.raises(InvalidInputError, match="api_version must be 1 or 2"):
        rankwise.load("m", backend="cohere", api_key="k", api_version=3)
    with pytest.raises(InvalidInputError, match="max_documents_per_call must be an int >= 1, got 0"):
        rankwise.load("http://127.0.0.1:9", backend="tei", max_documents_per_call=0)
    with pytest.raises(InvalidInputError, match="must be an http:// or https:// URL, got 'localhost:80'"):
        rankwise.load("localhost:80", backend="infinity")
    with pytest.raises(InvalidInputError, match="concurrency must be an int >= 1"):
        rankwise.load("http://127.0.0.1:9", backend="rankwise", concurrency=0)
    with pytest.raises(
        InvalidInputError, match="the voyage backend does not take top_k; valid options are: truncation"
    ):
        rankwise.load("m", backend="voyage", api_key="k", top_k=3)
    with pytest.raises(InvalidInputError, match="cache_dir needs independent=True"):
        rankwise.load("http://127.0.0.1:9", backend="rankwise", independent=False, cache_dir="/tmp/x")


def test_a_model_scored_whole_is_never_split_or_deduplicated(bm25_model) -> None:  # noqa: ANN001
    docs = [*DOCS, DOCS[0]]
    with live_server({"bm25": bm25_model}) as s:
        whole = rankwise.load(s.url, backend="rankwise", model="bm25", independent=False)
        assert not whole.independent_scores
        assert whole.score(QUERIES[0], docs) == bm25_model.score(QUERIES[0], docs)
        with pytest.raises(InvalidInputError, match="cannot be split"):
            rankwise.load(
                s.url, backend="rankwise", model="bm25", independent=False, max_documents_per_call=3
            ).score(QUERIES[0], docs)


def test_empty_input_costs_nothing(server) -> None:  # noqa: ANN001
    reranker = load("cohere", server.url)
    ranked, cost = reranker.rank_with_cost(QUERIES[0], [])
    assert len(ranked) == 0 and cost == RemoteCost()
    assert reranker.score(QUERIES[0], []) == []


def test_documents_and_results_keep_the_callers_objects(server) -> None:  # noqa: ANN001
    docs = [Document("lstm gates", id="a", metadata={"k": [1]}), {"text": "pooling", "id": "b"}]
    ranked = load("rankwise", server.url).rank(QUERIES[0], docs)
    assert ranked.results[[r.index for r in ranked].index(0)].document is docs[0]


def test_a_key_a_header_cannot_carry_is_refused_without_showing_it(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("JINA_API_KEY", "jina-\u2019secret\n")
    with pytest.raises(InvalidInputError, match="API key from JINA_API_KEY holds characters") as err:
        rankwise.load("m", backend="jina")
    assert "secret" not in str(err.value)


def test_importing_needs_no_http_client_and_building_names_the_extra() -> None:
    code = (
        "import sys; import rankwise.rerankers.remote.cohere, rankwise.registry; assert 'httpx' not in sys.modules; "
        "sys.modules['httpx'] = None\n"
        "try:\n    rankwise.registry.load('m', backend='cohere', api_key='k')\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("MissingDependencyError") and "pip install 'rankwise[remote]'" in out
