"""Dynamic batching through the real server: concurrent callers get their own results, requests share model calls,
a big request does not starve a small one, a client that leaves frees its work, shutdown finishes what is in flight.

Timing never decides a test: a *gated* model (the real torch cross-encoder whose calls wait for an event) holds the
worker busy so that the queue's state is known, and the tests wait for events (metrics values), not for durations.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from rankwise.server._jobs import OverloadedError
from rankwise.server.batcher import Scheduler
from rankwise.server.metrics import ServerMetrics
from tests.support.server import DOCS, QUERIES, GatedCrossEncoder, WordOverlapReranker, live_server

pytest_plugins = ("tests.support.server_fixtures",)  # its fixtures: tiny_ce, sharp_cross_encoder...


def request_set(n: int) -> list[tuple[str, list[str]]]:
    """``n`` different (query, documents) requests of different sizes and orders."""
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        docs = [f"{DOCS[j % len(DOCS)]} variant {i}-{j}" for j in rng.permutation(3 + i % 9 + i)]
        out.append((f"{QUERIES[i % len(QUERIES)]} number {i}", docs))
    return out


def scores_by_index(body: dict) -> list[float]:
    results = sorted(body["results"], key=lambda r: r["index"])
    return [r["relevance_score"] for r in results]


@pytest.fixture
def gated(sharp_cross_encoder) -> GatedCrossEncoder:  # noqa: ANN001
    return GatedCrossEncoder(sharp_cross_encoder, device="cpu")


def test_concurrent_requests_each_get_their_own_results(tiny_ce):  # noqa: ANN001
    requests = request_set(16)
    with live_server({"tiny": tiny_ce}, max_wait_ms=20, chunk_pairs=8, max_batch_pairs=64) as s:
        barrier = threading.Barrier(len(requests))

        def call(item: tuple[str, list[str]]) -> dict:
            query, docs = item
            barrier.wait()
            r = httpx.post(s.url + "/v2/rerank", json={"query": query, "documents": docs}, timeout=60)
            assert r.status_code == 200, r.text
            return r.json()

        with ThreadPoolExecutor(len(requests)) as pool:
            answers = list(pool.map(call, requests))
        for (query, docs), body in zip(requests, answers):
            assert len(body["results"]) == len(docs)
            np.testing.assert_allclose(
                scores_by_index(body), tiny_ce.score(query, docs), rtol=1e-4, atol=1e-5
            )
        assert s.metric("rankwise_pairs_scored_total", model="tiny") == sum(len(d) for _, d in requests)


def test_waiting_requests_share_one_model_call(gated):  # noqa: ANN001
    requests = request_set(5)
    with live_server({"g": gated}, max_wait_ms=0) as s:
        gated.gate.clear()
        with ThreadPoolExecutor(5) as pool:
            first = pool.submit(
                httpx.post,
                s.url + "/v2/rerank",
                json={"query": requests[0][0], "documents": requests[0][1]},
                timeout=60,
            )
            assert gated.entered.wait(30)  # the worker is inside the first model call
            rest = [
                pool.submit(httpx.post, s.url + "/v2/rerank", json={"query": q, "documents": d}, timeout=60)
                for q, d in requests[1:]
            ]
            s.wait_for(lambda: s.metric("rankwise_queue_requests", model="g") == 5, "4 requests queued")
            assert s.metric("rankwise_queue_pairs", model="g") == sum(len(d) for _, d in requests[1:])
            gated.gate.set()
            answers = [first.result().json()] + [f.result().json() for f in rest]
    assert sorted(gated.calls[-1]) == sorted(len(d) for _, d in requests[1:])  # the four waiting: one call
    for (query, docs), body in zip(requests, answers):
        np.testing.assert_allclose(scores_by_index(body), gated.score(query, docs), rtol=1e-4, atol=1e-5)


def test_a_big_request_does_not_starve_a_small_one(gated):  # noqa: ANN001
    big = [f"{DOCS[i % len(DOCS)]} #{i}" for i in range(300)]
    small = DOCS[:4]
    done_order: list[str] = []
    with live_server({"g": gated}, max_wait_ms=0, max_batch_pairs=32, chunk_pairs=8) as s:
        gated.gate.clear()

        def call(name: str, query: str, docs: list[str]) -> dict:
            r = httpx.post(s.url + "/v2/rerank", json={"query": query, "documents": docs}, timeout=120)
            done_order.append(name)
            return r.json()

        with ThreadPoolExecutor(2) as pool:
            f_big = pool.submit(call, "big", QUERIES[0], big)
            assert gated.entered.wait(30)  # the big request's first slice is in the model
            f_small = pool.submit(call, "small", QUERIES[1], small)
            s.wait_for(
                lambda: s.metric("rankwise_queue_requests", model="g") == 2, "the small request queued"
            )
            gated.gate.set()
            big_body, small_body = f_big.result(), f_small.result()
    assert done_order == ["small", "big"]
    assert gated.calls[0] == [32]  # the big request alone: a full step of it
    # pass 1: 8 of big, all 4 of small; then big's next passes fill the step (its slices merged into one group)
    assert gated.calls[1] == [28, 4]
    np.testing.assert_allclose(
        scores_by_index(small_body), gated.score(QUERIES[1], small), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(scores_by_index(big_body), gated.score(QUERIES[0], big), rtol=1e-4, atol=1e-5)


def test_a_client_that_disconnects_frees_its_work(gated):  # noqa: ANN001
    leaving = [f"{DOCS[i % len(DOCS)]} #{i}" for i in range(200)]
    with live_server({"g": gated}, max_wait_ms=0) as s:
        gated.gate.clear()
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(
                httpx.post, s.url + "/v2/rerank", json={"query": "q", "documents": DOCS}, timeout=60
            )
            assert gated.entered.wait(30)
            with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes its connection
                httpx.post(s.url + "/v2/rerank", json={"query": "bye", "documents": leaving}, timeout=1.0)
            s.wait_for(
                lambda: s.metric("rankwise_cancelled_requests_total", model="g") == 1, "the cancellation"
            )
            assert s.metric("rankwise_queue_pairs", model="g") == 0  # its 200 pairs left the queue
            gated.gate.set()
            assert first.result().status_code == 200
        assert s.metric("rankwise_pairs_scored_total", model="g") == len(DOCS)  # the leaver's pairs never ran
        assert s.metric("rankwise_requests_total", endpoint="/v2/rerank", status="499") == 1
        assert httpx.get(s.url + "/ready").status_code == 200


def cohere_sdk():  # noqa: ANN201 - the cohere module, or skip
    return pytest.importorskip("cohere")


def test_request_timeout_answers_504_and_drops_the_queued_work(gated):  # noqa: ANN001
    waiting = [f"{DOCS[i % len(DOCS)]} #{i}" for i in range(200)]
    with live_server({"g": gated}, max_wait_ms=0, request_timeout_s=3) as s:
        gated.gate.clear()
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(
                httpx.post, s.url + "/v2/rerank", json={"query": "q", "documents": DOCS}, timeout=60
            )
            assert gated.entered.wait(30)  # the worker is held inside the first request's model call
            late = httpx.post(s.url + "/v2/rerank", json={"query": "late", "documents": waiting}, timeout=60)
            assert late.status_code == 504, late.text
            body = late.json()
            assert body["error_type"] == "timeout" and body["error"] == body["message"]
            assert "request timeout of 3 s" in body["message"] and "--request-timeout-s" in body["message"]
            assert s.metric("rankwise_queue_pairs", model="g") == 0  # its 200 pairs left the queue
            assert first.result().status_code == 504  # its model call outlived the deadline as well
            gated.gate.set()
        ok = httpx.post(s.url + "/v2/rerank", json={"query": QUERIES[0], "documents": DOCS}, timeout=60)
        assert ok.status_code == 200  # the server goes on serving
        np.testing.assert_allclose(
            scores_by_index(ok.json()), gated.score(QUERIES[0], DOCS), rtol=1e-4, atol=1e-5
        )
        assert s.metric("rankwise_pairs_scored_total", model="g") == 2 * len(DOCS)  # the 200 never ran
        assert s.metric("rankwise_requests_total", endpoint="/v2/rerank", status="504") == 2
        assert s.metric("rankwise_errors_total", endpoint="/v2/rerank", type="timeout") == 2
        assert s.metric("rankwise_cancelled_requests_total", model="g") == 2
    assert all(max(sizes) <= len(DOCS) for sizes in gated.calls)


def test_a_tiny_timeout_stops_a_big_request_and_the_server_lives(tiny_ce):  # noqa: ANN001
    big = [f"{DOCS[i % len(DOCS)]} #{i}" for i in range(600)]
    with live_server({"tiny": tiny_ce}, request_timeout_s=0.001, max_documents=1000) as s:
        r = httpx.post(s.url + "/v2/rerank", json={"query": QUERIES[0], "documents": big}, timeout=60)
        assert r.status_code == 504 and "request timeout of 0.001 s" in r.json()["message"]
        with pytest.raises(cohere_sdk().GatewayTimeoutError):  # the official SDK types it
            cohere_sdk().ClientV2(api_key="x", base_url=s.url, max_retries=0).rerank(
                model="tiny", query=QUERIES[0], documents=big
            )
        assert s.metric("rankwise_queue_pairs", model="tiny") == 0
        # at most the one step already in the model ran: the rest was dropped (a step holds max_batch_pairs=256)
        assert s.metric("rankwise_pairs_scored_total", model="tiny") <= 2 * 256
        assert httpx.get(s.url + "/ready").status_code == 200
        assert httpx.get(s.url + "/health").json() == {"status": "ok"}


def test_graceful_shutdown_finishes_the_request_in_flight(gated):  # noqa: ANN001
    server = live_server({"g": gated}, max_wait_ms=0)
    s = server.__enter__()
    gated.gate.clear()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(
            httpx.post, s.url + "/v2/rerank", json={"query": QUERIES[0], "documents": DOCS}, timeout=60
        )
        assert gated.entered.wait(30)
        s.server.should_exit = True  # what uvicorn's SIGTERM/SIGINT handler does
        s.wait_for(lambda: s.server.should_exit, "shutdown flag")
        gated.gate.set()
        r = pending.result()
    assert r.status_code == 200
    np.testing.assert_allclose(scores_by_index(r.json()), gated.score(QUERIES[0], DOCS), rtol=1e-4, atol=1e-5)
    s.thread.join(30)
    assert not s.thread.is_alive()
    assert not s.app.state.serving.schedulers["g"].alive


def test_batching_off_scores_one_request_per_call(tiny_ce):  # noqa: ANN001
    requests = request_set(6)
    with live_server({"tiny": tiny_ce}, batching=False) as s:
        with ThreadPoolExecutor(6) as pool:
            answers = list(
                pool.map(
                    lambda item: httpx.post(
                        s.url + "/v2/rerank", json={"query": item[0], "documents": item[1]}, timeout=60
                    ).json(),
                    requests,
                )
            )
        assert s.metric("rankwise_batch_requests_count", model="tiny") == 6
        assert s.metric("rankwise_batch_requests_sum", model="tiny") == 6
        assert httpx.get(s.url + "/v1/models").json()["data"][0]["batching"] is False
    for (query, docs), body in zip(requests, answers):
        np.testing.assert_allclose(scores_by_index(body), tiny_ce.score(query, docs), rtol=1e-4, atol=1e-5)


# ---- the scheduler on its own (no HTTP) -----------------------------------------------------------------------------
def run_scheduler(model, jobs, **options):  # noqa: ANN001, ANN201
    async def go():  # noqa: ANN202
        scheduler = Scheduler(model, "m", ServerMetrics(), **options)
        scheduler.start()
        try:
            return await asyncio.gather(*(scheduler.score(q, d) for q, d in jobs), return_exceptions=True)
        finally:
            scheduler.stop(timeout=10)

    return asyncio.run(go())


def test_scheduler_matches_the_library(tiny_ce):  # noqa: ANN001
    jobs = request_set(7)
    for options in ({}, {"batching": False}, {"chunk_pairs": 1, "max_batch_pairs": 5}):
        for (q, d), got in zip(jobs, run_scheduler(tiny_ce, jobs, **options)):
            np.testing.assert_allclose(got, tiny_ce.score(q, d), rtol=1e-4, atol=1e-5)


def test_scheduler_serves_the_oldest_first_in_capped_turns(gated):  # noqa: ANN001
    """Eight equal requests wait; each pass gives each at most 16: the four oldest finish a step before the rest."""
    finished: list[int] = []

    async def go():  # noqa: ANN202
        scheduler = Scheduler(gated, "m", ServerMetrics(), max_batch_pairs=64, chunk_pairs=16, max_wait_ms=0)
        scheduler.start()
        gated.gate.clear()
        blocker = asyncio.ensure_future(scheduler.score("q", ["x"]))
        await asyncio.to_thread(gated.entered.wait, 30)

        async def one(i: int):  # noqa: ANN202
            out = await scheduler.score(f"query {i}", [f"{DOCS[j % len(DOCS)]} {i}" for j in range(20)])
            finished.append(i)
            return out

        jobs = [asyncio.ensure_future(one(i)) for i in range(8)]
        await asyncio.sleep(0)  # one loop turn: each of the eight enqueues (the worker is held by the gate)
        gated.gate.set()
        await asyncio.gather(blocker, *jobs)
        scheduler.stop(timeout=10)

    asyncio.run(go())
    assert gated.calls[1:] == [[16, 16, 16, 16], [4, 4, 4, 4, 16, 16, 16], [4, 4, 4, 20]]
    assert sorted(finished[:4]) == [0, 1, 2, 3] and sorted(finished[4:]) == [4, 5, 6, 7]


def test_scheduler_whole_requests_for_models_scored_whole():
    model = WordOverlapReranker()
    jobs = [("image edges", DOCS), ("lstm gates", DOCS[:2]), ("explode", ["a"])]
    got = run_scheduler(model, jobs, chunk_pairs=1)
    np.testing.assert_allclose(got[0], model.score("image edges", DOCS))
    np.testing.assert_allclose(got[1], model.score("lstm gates", DOCS[:2]))
    assert isinstance(got[2], RuntimeError)  # one request's failure is its own
    assert model.calls == 3 + 2  # one call per request (and two direct calls above)


def test_scheduler_refuses_work_beyond_its_queue_limit(gated):  # noqa: ANN001
    async def go():  # noqa: ANN202
        scheduler = Scheduler(gated, "m", ServerMetrics(), max_queue_pairs=10, max_wait_ms=0)
        scheduler.start()
        gated.gate.clear()
        first = asyncio.ensure_future(scheduler.score("q", DOCS))
        await asyncio.to_thread(gated.entered.wait, 30)
        queued = asyncio.ensure_future(scheduler.score("q", DOCS))
        await asyncio.sleep(0)
        with pytest.raises(OverloadedError, match="limit 10"):
            await scheduler.score("q", DOCS)
        gated.gate.set()
        await asyncio.gather(first, queued)
        scheduler.stop(timeout=10)
        with pytest.raises(OverloadedError, match="shutting down"):
            await scheduler.score("q", DOCS)

    asyncio.run(go())


def test_score_groups_equals_score_per_group(tiny_ce):  # noqa: ANN001
    long_doc = " ".join(["pooling layers shrink feature maps"] * 80 + ["lstm memory gates cell state"] * 60)
    groups = [(QUERIES[0], DOCS), (QUERIES[1], [long_doc, "x"]), (QUERIES[2], []), (QUERIES[3], DOCS[:1])]
    out = tiny_ce.score_groups(groups)
    assert [len(o) for o in out] == [6, 2, 0, 1]
    for (q, d), got in zip(groups, out):
        np.testing.assert_allclose(got, tiny_ce.score(q, d) if d else [], rtol=1e-4, atol=1e-5)
    assert tiny_ce.score_groups([]) == []


def test_models_that_declare_independent_scores_are_split_and_get_their_metadata():
    from rankwise.rerankers.metadata_score import MetadataScoreReranker

    model = MetadataScoreReranker()
    assert model.independent_scores and not WordOverlapReranker.independent_scores

    async def go():  # noqa: ANN202
        # the step waits until both requests' 4 documents are queued (no timing): they share one model call
        scheduler = Scheduler(model, "m", ServerMetrics(), max_batch_pairs=4, chunk_pairs=1, max_wait_ms=60_000,
                              wait_alone=True)
        scheduler.start()
        try:
            good = scheduler.score("q", ["a", "b"], metadata=[{"first_stage_score": 1.0}, {"first_stage_score": 3.0}])
            bad = scheduler.score("q", ["c", "d"], metadata=[{"first_stage_score": 2.0}, {}])
            return scheduler.splittable, await asyncio.gather(good, bad, return_exceptions=True)
        finally:
            scheduler.stop(timeout=10)

    from rankwise.errors import InvalidInputError

    splittable, (good, bad) = asyncio.run(go())
    assert splittable
    np.testing.assert_array_equal(good, [1.0, 3.0])  # its neighbour's bad input did not fail it
    assert isinstance(bad, InvalidInputError) and "first_stage_score" in str(bad)


def test_a_lone_request_is_not_held_for_company_that_is_not_coming():
    from rankwise.rerankers.metadata_score import MetadataScoreReranker

    async def go():  # noqa: ANN202
        # a 60 s batching window: a lone request on an idle worker must not sit in it (it would time out below)
        scheduler = Scheduler(MetadataScoreReranker(), "m", ServerMetrics(), max_wait_ms=60_000)
        scheduler.start()
        try:
            first = await asyncio.wait_for(scheduler.score("q", ["a"], metadata=[{"first_stage_score": 2.0}]), 30)
            second = await asyncio.wait_for(scheduler.score("q", ["b"], metadata=[{"first_stage_score": 5.0}]), 30)
            return first, second
        finally:
            scheduler.stop(timeout=10)

    first, second = asyncio.run(go())
    np.testing.assert_array_equal(first, [2.0])
    np.testing.assert_array_equal(second, [5.0])
