"""The opt-in on-disk cache of remote scores (``cache_dir=``): keyed by provider, endpoint, model, score-changing
options, query and document digests (never the texts), shared safely between threads and instances, and reported
in the cost (``cached``)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

import rankwise
from rankwise.errors import InvalidInputError
from rankwise.rerankers.remote import RemoteCost, RemoteError
from rankwise.rerankers.remote._store import FILE_NAME, ScoreCache, digest
from tests.support.remote_servers import FailureServer, answer, cohere_answer, overlap_scores, status

QUERY = "lstm gates memory"
DOCS = ["lstm gates", "pooling layers", "memory cells and gates", "lstm", "edges", "gates memory lstm cell"]


def cached(server: FailureServer, folder: Path, model: str = "m", **options: object):  # noqa: ANN201
    settings = {"backoff": 0.01, "api_key": "k", "cache_dir": folder, **options}
    return rankwise.load(model, backend="cohere", base_url=server.base_url, **settings)


def test_a_repeated_ranking_costs_no_call(tmp_path: Path) -> None:
    with FailureServer() as server:
        reranker = cached(server, tmp_path)
        first, cost1 = reranker.rank_with_cost(QUERY, DOCS)
        second, cost2 = reranker.rank_with_cost(QUERY, DOCS)
        again = cached(server, tmp_path).score(QUERY, DOCS)  # a new instance reads the same file
    assert first == second and again == overlap_scores(QUERY, DOCS)
    assert (cost1.calls, cost1.documents, cost1.cached) == (1, 6, 0)
    assert (cost2.calls, cost2.documents, cost2.cached) == (0, 0, 6) and cost2.units == {}
    assert len(server.seen) == 1


def test_only_new_pairs_are_sent(tmp_path: Path) -> None:
    with FailureServer() as server:
        reranker = cached(server, tmp_path)
        reranker.score(QUERY, DOCS[:4])
        scores, cost = reranker.score(QUERY, DOCS), reranker.cost_total()
        reranker.score("another query", DOCS[:2])
    assert scores == overlap_scores(QUERY, DOCS)
    assert [s.body["documents"] for s in server.seen] == [DOCS[:4], DOCS[4:], DOCS[:2]]
    assert (cost.calls, cost.documents, cost.cached) == (2, 6, 4)


def test_model_and_score_changing_options_have_their_own_space(tmp_path: Path) -> None:
    with FailureServer() as server:
        cached(server, tmp_path).score(QUERY, DOCS)
        cached(server, tmp_path, model="other").score(QUERY, DOCS)
        cached(server, tmp_path, max_tokens_per_doc=64).score(QUERY, DOCS)
        cached(server, tmp_path, api_version=1).score(QUERY, DOCS)
        cached(server, tmp_path, max_documents_per_call=2).score(
            QUERY, DOCS
        )  # a transport option: same space
    assert len(server.seen) == 4
    assert len(ScoreCache(tmp_path)) == 4 * len(DOCS)


def test_the_file_holds_digests_never_texts(tmp_path: Path) -> None:
    secret_doc, secret_query = "confidential merger memo about acme", "acme merger"
    with FailureServer() as server:
        cached(server, tmp_path).score(secret_query, [secret_doc])
    for path in tmp_path.iterdir():  # the database and its write-ahead log
        data = path.read_bytes()
        assert b"merger" not in data and b"acme" not in data
    rows = sqlite3.connect(tmp_path / FILE_NAME).execute("SELECT query, document FROM scores").fetchall()
    assert rows == [(digest(secret_query), digest(secret_doc))]


def test_threads_and_instances_share_one_file(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    queries = [f"{QUERY} {k}" for k in range(6)]
    with FailureServer() as server:
        rerankers = [cached(server, tmp_path, max_documents_per_call=2) for _ in range(2)]

        def work(k: int) -> None:
            try:
                for query in queries:
                    assert rerankers[k % 2].score(query, DOCS) == overlap_scores(query, DOCS)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert not errors
    assert len(ScoreCache(tmp_path)) == len(queries) * len(DOCS)
    total = sum((r.cost_total() for r in rerankers), start=RemoteCost())
    assert total.documents + total.cached == 4 * len(queries) * len(DOCS)


def test_finished_calls_are_kept_when_a_later_one_fails(tmp_path: Path) -> None:
    def ok_then_fail(handler, body: dict) -> None:  # noqa: ANN001
        server.script.appendleft(status(500))  # the next request (the second call) fails
        answer(cohere_answer)(handler, body)

    with FailureServer(ok_then_fail) as server:
        with pytest.raises(RemoteError, match="HTTP 500"):
            cached(server, tmp_path, max_documents_per_call=3, concurrency=1, max_retries=0).score(
                QUERY, DOCS
            )
        reranker = cached(server, tmp_path, max_documents_per_call=3)
        scores, cost = reranker.score(QUERY, DOCS), reranker.cost_total()
    assert scores == overlap_scores(QUERY, DOCS)
    assert (cost.calls, cost.documents, cost.cached) == (1, 3, 3)


def test_a_file_that_is_not_a_cache_is_named(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(InvalidInputError, match=f"cannot use .*{FILE_NAME}.* as the remote score cache"):
        rankwise.load("m", backend="cohere", base_url="http://127.0.0.1:9", cache_dir=tmp_path)


def test_non_finite_stored_scores_are_misses(tmp_path: Path) -> None:
    cache = ScoreCache(tmp_path)
    space, query = digest("space"), digest("q")
    cache.put(space, query, {digest("a"): 1.5, digest("b"): float("nan")})  # NaN is never stored
    cache._db.execute("INSERT INTO scores VALUES (?, ?, ?, ?)", (space, query, digest("c"), float("inf")))
    assert cache.get(space, query, [digest("a"), digest("b"), digest("c"), digest("a")]) == [
        1.5,
        None,
        None,
        1.5,
    ]
