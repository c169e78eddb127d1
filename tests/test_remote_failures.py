"""Every failure of a remote provider, produced by a real socket (tests/support/remote_servers.FailureServer): 429
with Retry-After (honoured), 5xx and connection resets (retried with backoff, bounded), timeouts, bodies that are not
JSON or are cut short, answers with an index missing, repeated or out of range, and a wrong key (one clear error, no
retry). Either every document has a score, or the call fails naming what is missing: never a partial ranking."""

from __future__ import annotations

import json

import pytest

import rankwise
from rankwise.rerankers.remote import RemoteAnswerError, RemoteAuthError, RemoteError
from tests.support.remote_servers import (
    FailureServer,
    answer,
    cohere_answer,
    overlap_scores,
    raw,
    reset,
    stall,
    status,
)

QUERY = "lstm gates memory"
DOCS = ["lstm gates", "pooling layers", "memory cells and gates", "lstm", "edges", "gates memory lstm cell"]
KEY = "failure-test-secret"


def reranker(server: FailureServer, **options: object):  # noqa: ANN201
    settings = {"backoff": 0.01, "max_retries": 3, "timeout": 5.0, "api_key": KEY, **options}
    return rankwise.load("m", backend="cohere", base_url=server.base_url, **settings)


def failure(server: FailureServer, kind: type[RemoteError], match: str, **options: object) -> RemoteError:
    """The error ``kind`` (its message matching ``match``) that scoring through ``server`` raises."""
    with pytest.raises(kind, match=match) as err:
        reranker(server, **options).score(QUERY, DOCS)
    return err.value


def test_a_good_answer_is_read_and_the_key_sent_as_bearer() -> None:
    with FailureServer() as server:
        assert reranker(server).score(QUERY, DOCS) == overlap_scores(QUERY, DOCS)
    (seen,) = server.seen
    assert seen.path == "/v2/rerank" and seen.authorization == f"Bearer {KEY}"
    assert seen.body == {
        "model": "m",
        "query": QUERY,
        "documents": DOCS,
        "top_n": len(DOCS),
    }  # always every score


def test_429_waits_for_retry_after() -> None:
    with FailureServer(status(429, {"Retry-After": "1"})) as server:
        scores = reranker(server, backoff=0.0).score(QUERY, DOCS)
    assert scores == overlap_scores(QUERY, DOCS)
    first, second = server.seen
    assert second.at - first.at >= 0.95  # the server's Retry-After, not the (zero) backoff


def test_5xx_is_retried_then_succeeds() -> None:
    with FailureServer(status(503), status(500), status(502)) as server:
        assert reranker(server).score(QUERY, DOCS) == overlap_scores(QUERY, DOCS)
    assert len(server.seen) == 4


def test_retries_are_bounded() -> None:
    with FailureServer(*[status(503)] * 10) as server:
        err = failure(server, RemoteError, r"failed after 3 attempt\(s\): HTTP 503", max_retries=2)
    assert len(server.seen) == 3 and err.status == 503


def test_connection_reset_is_retried() -> None:
    with FailureServer(reset(), reset()) as server:
        assert reranker(server).score(QUERY, DOCS) == overlap_scores(QUERY, DOCS)
    assert len(server.seen) == 3
    with FailureServer(*[reset()] * 5) as server, pytest.raises(RemoteError, match="could not connect"):
        reranker(server, max_retries=1).score(QUERY, DOCS)
    assert len(server.seen) == 2


def test_timeouts_are_retried_then_reported() -> None:
    with FailureServer(stall(2.0)) as server:
        assert reranker(server, timeout=0.3).score(QUERY, DOCS) == overlap_scores(QUERY, DOCS)
    with FailureServer(stall(2.0), stall(2.0)) as server:
        failure(server, RemoteError, r"timed out after 0.3 s", timeout=0.3, max_retries=1)


def test_a_body_cut_off_in_transit_is_retried() -> None:
    body = json.dumps(cohere_answer({"query": QUERY, "documents": DOCS})).encode()
    with FailureServer(raw(body[:20], declared=len(body))) as server:
        assert reranker(server).score(QUERY, DOCS) == overlap_scores(QUERY, DOCS)
    assert len(server.seen) == 2


@pytest.mark.parametrize(
    "body", [b"<html>proxy login</html>", b'{"results": [{"index": 0, "relev', b"\xff\xfe{}"]
)
def test_a_body_that_is_not_complete_json_fails_once(body: bytes) -> None:
    with FailureServer(raw(body)) as server, pytest.raises(RemoteAnswerError, match="not complete JSON"):
        reranker(server).score(QUERY, DOCS)
    assert len(server.seen) == 1  # the server answered: asking again would get the same


def _without(index: int):  # noqa: ANN202
    return lambda body: {"results": [r for r in cohere_answer(body)["results"] if r["index"] != index]}


def _twice(index: int):  # noqa: ANN202
    def make(body: dict) -> dict:
        results = [r for r in cohere_answer(body)["results"] if r["index"] != index + 1]
        return {"results": [*results, {"index": index, "relevance_score": 0.5}]}

    return make


def test_a_missing_index_fails_naming_the_callers_document() -> None:
    with FailureServer(answer(cohere_answer), answer(_without(1))) as server:
        err = failure(
            server,
            RemoteAnswerError,
            r"no score for document\(s\) 4\b",
            max_documents_per_call=3,
            concurrency=1,
        )
    assert "No partial ranking" in str(err)


def test_a_repeated_index_fails() -> None:
    with (
        FailureServer(answer(_twice(0))) as server,
        pytest.raises(
            RemoteAnswerError, match=r"no score for document\(s\) 1; document\(s\) 0 scored more than"
        ),
    ):
        reranker(server).score(QUERY, DOCS)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda b: {"results": [*cohere_answer(b)["results"], {"index": 6, "relevance_score": 1.0}]},
            "outside 0..5",
        ),
        (
            lambda b: {"results": [{**r, "relevance_score": "high"} for r in cohere_answer(b)["results"]]},
            "no finite",
        ),
        (
            lambda b: {"results": [{**r, "index": str(r["index"])} for r in cohere_answer(b)["results"]]},
            "no integer",
        ),
        (lambda b: [{"index": i, "score": 1.0} for i in range(6)], "not an object with a 'results' list"),
        (lambda b: {"results": []}, r"no score for document\(s\) 0, 1, 2, 3, 4, 5"),
    ],
)
def test_unusable_answers_fail_with_what_is_wrong(make, message: str) -> None:  # noqa: ANN001
    with FailureServer(answer(make)) as server, pytest.raises(RemoteAnswerError, match=message):
        reranker(server).score(QUERY, DOCS)


def test_nan_and_infinite_scores_are_refused() -> None:
    body = {"results": [{"index": i, "relevance_score": 1.0} for i in range(5)]}
    text = json.dumps(body)[:-2] + ', {"index": 5, "relevance_score": NaN}]}'
    with FailureServer(raw(text.encode())) as server:
        failure(server, RemoteAnswerError, r"document 5 has no finite 'relevance_score' \(nan\)")
    with FailureServer(raw(text.replace("NaN", "1e999").encode())) as server:
        failure(server, RemoteAnswerError, r"\(inf\)")


@pytest.mark.parametrize("code", [401, 403])
def test_a_refused_key_is_one_error_never_retried(code: int) -> None:
    with FailureServer(status(code, body={"message": "invalid api token"})) as server:
        err = failure(server, RemoteAuthError, f"HTTP {code}: the API key was refused.*CO_API_KEY")
    assert len(server.seen) == 1 and err.status == code and KEY not in str(err)


def test_a_key_echoed_by_the_server_is_scrubbed() -> None:
    with FailureServer(status(400, body={"message": f"model m unknown for key {KEY}"})) as server:
        err = failure(server, RemoteError, r"refused with HTTP 400")
    assert KEY not in str(err) and "***" in str(err)
    assert len(server.seen) == 1


def test_one_failed_call_fails_the_whole_ranking_but_the_answered_one_is_counted() -> None:
    with FailureServer(answer(cohere_answer), status(401)) as server:
        split = reranker(server, max_documents_per_call=3, concurrency=1)
        with pytest.raises(RemoteAuthError):
            split.rank(QUERY, DOCS)
    assert len(server.seen) == 2
    cost = split.cost_total()  # the provider answered (and billed) the first call
    assert (cost.calls, cost.documents, cost.units["search_units"]) == (1, 3, 1)


def test_no_key_sent_says_so(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.delenv("CO_API_KEY", raising=False)
    monkeypatch.delenv("COHERE_API_KEY", raising=False)
    with FailureServer(status(401)) as server:
        plain = rankwise.load("m", backend="cohere", base_url=server.base_url)  # a custom URL needs no key
        with pytest.raises(RemoteAuthError, match="no API key was sent"):
            plain.score(QUERY, DOCS)
    assert server.seen[0].authorization is None
