"""Issue 10, the server's part: every text ranks or gets a JSON 4xx, a request's work is bounded in size and time,
the server scores exactly what the library scores, and the details (/ready, keys, shutdown, logs, default model).

In-process tests use Starlette's ASGI TestClient (the app with its lifespan, no socket); the ones about deadlines and
shutdown use a real uvicorn server. Timing never decides a test: gated models hold a model call at a known batch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
from starlette.testclient import TestClient

from rankwise.errors import InvalidInputError
from rankwise.rerankers.fusion import FusionReranker
from rankwise.rerankers.lexical import BM25Reranker
from rankwise.server import ServerConfig, build_config, create_app
from tests.support.server import (
    DOCS,
    QUERIES,
    GatedBatchCrossEncoder,
    GatedCrossEncoder,
    WordOverlapReranker,
    gated_bi_encoder,
    live_server,
)

pytest_plugins = ("tests.support.server_fixtures",)


@contextmanager
def client(models: dict, **config: object) -> Iterator[TestClient]:
    with TestClient(create_app(models, ServerConfig(**config))) as c:  # type: ignore[arg-type]
        yield c


def post(c: TestClient, path: str, raw: str, **headers: str) -> httpx.Response:
    """POST a JSON body written by hand (so it can hold escapes such as \\ud800 that a client library would refuse)."""
    return c.post(path, content=raw.encode(), headers={"content-type": "application/json", **headers})


def by_index(results: list[dict], key: str = "relevance_score") -> list[float]:
    return [r[key] for r in sorted(results, key=lambda r: r["index"])]


@pytest.fixture(scope="module")
def models(bm25_model, default_model, tiny_ce, bi_encoder) -> dict:  # noqa: ANN001
    return {"bm25": bm25_model, "default": default_model, "ce": tiny_ce, "bi": bi_encoder}


# ---- 1. every text ranks -----------------------------------------------------------------------------------------
SURROGATE_BODIES = [  # (route, body with a lone surrogate in the query, a document, an unscored field)
    ("/v1/rerank", ('{"model": "M", "query": "lstm \\ud800", "documents": ["x \\ud800 y", "lstm"], '
                    '"return_documents": true}')),
    ("/v2/rerank", ('{"model": "M", "query": "q", "documents": [{"text": "t", "note": "\\udfff"}], '
                    '"return_documents": true}')),
    ("/v2/rerank", ('{"model": "M", "query": "q", "documents": [{"t": "\\ud800", "u": 1}], '
                    '"rank_fields": ["t", "u"], "return_documents": true}')),
    ("/rerank", ('{"model": "M", "query": "q \\ud800", "texts": ["x \\ud800", "y"], "return_text": true, '
                 '"truncate": true}')),
]  # fmt: skip


@pytest.mark.parametrize("name", ["bm25", "default", "ce", "bi"])
@pytest.mark.parametrize(("route", "raw"), SURROGATE_BODIES)
def test_lone_surrogates_rank_and_come_back_as_sent(models, name: str, route: str, raw: str) -> None:  # noqa: ANN001
    raw = raw.replace('"M"', json.dumps(name))
    sent = json.loads(raw)
    with client({name: models[name]}) as c:
        r = post(c, route, raw)
        assert c.get("/health").json() == {"status": "ok"}
    assert r.status_code == 200, r.text
    out = r.json()
    if route == "/rerank":
        assert sorted(x["index"] for x in out) == [0, 1]
        assert all(x["text"] == sent["texts"][x["index"]] for x in out)  # "\ud800" back, exactly
        return
    docs = sent["documents"]
    assert sorted(x["index"] for x in out["results"]) == list(range(len(docs)))
    for x in out["results"]:
        want = docs[x["index"]]
        assert x["document"] == ({"text": want} if isinstance(want, str) else want)
    if "rank_fields" not in sent:  # the library ranks the same texts, to the same scores
        assert by_index(out["results"]) == models[name].score(sent["query"], docs)


@pytest.mark.parametrize("docs", [["A", "B", "C", "D"], ["7", "8"], ["👍", "👎"], ["the of", "it is"], ["", " "]])
def test_candidates_without_an_indexable_token_rank(models, docs: list[str]) -> None:  # noqa: ANN001
    with client({"bm25": models["bm25"], "default": models["default"]}) as c:
        for name in ("bm25", "default"):
            r = c.post("/v2/rerank", json={"model": name, "query": "running shoes", "documents": docs})
            assert r.status_code == 200, r.text
            results = r.json()["results"]
            scores = by_index(results)
            assert scores == models[name].score("running shoes", docs)
            if name == "bm25":
                assert scores == [0.0] * len(docs)
                assert [x["index"] for x in results] == list(range(len(docs)))  # ties keep input order
        tei = c.post("/rerank", json={"model": "bm25", "query": "shoes", "texts": docs})
        assert tei.status_code == 200 and [x["index"] for x in tei.json()] == list(range(len(docs)))


def test_returned_documents_json_cannot_carry_are_a_400_naming_them(models) -> None:  # noqa: ANN001
    raw = '{"query": "q", "documents": ["a", {"text": "b", "price": 1e400}], "return_documents": true}'
    with client({"bm25": models["bm25"]}) as c:
        r = post(c, "/v2/rerank", raw)
        assert r.status_code == 400 and "documents[1]" in r.json()["message"] and "1e400" in r.json()["message"]
        assert post(c, "/v2/rerank", raw.replace("true", "false")).status_code == 200  # ranked when not echoed


# ---- 2. bounded work per request ---------------------------------------------------------------------------------
def test_a_query_over_max_query_bytes_is_a_413_naming_the_setting(models) -> None:  # noqa: ANN001
    with client({"ce": models["ce"]}, max_query_bytes=1000) as c:
        for path, body in (
            ("/v2/rerank", {"query": "é" * 501, "documents": ["a"]}),  # 1,002 bytes in UTF-8
            ("/rerank", {"query": "x" * 1001, "texts": ["a"], "truncate": True}),
        ):
            r = c.post(path, json=body)
            assert r.status_code == 413, r.text
            out = r.json()
            assert out["error_type"] == "query_too_large" and "limit of 1000 bytes" in out["message"]
            assert "--max-query-bytes" in out["message"] and "RANKWISE_MAX_QUERY_BYTES" in out["message"]
        assert c.post("/v2/rerank", json={"query": "é" * 500, "documents": ["a"]}).status_code == 200
    assert ServerConfig().max_query_bytes == 65536
    assert build_config({}, environ={"RANKWISE_MAX_QUERY_BYTES": "4096"}).max_query_bytes == 4096


class LoopSpy:
    """Wraps a real tokenizer and records every call made on a thread that runs an event loop."""

    def __init__(self, tokenizer) -> None:  # noqa: ANN001
        self.tokenizer = tokenizer
        self.calls = 0
        self.on_loop = 0

    def __getattr__(self, name: str):  # noqa: ANN204
        method = getattr(self.tokenizer, name)

        def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            self.calls += 1
            try:
                asyncio.get_running_loop()
                self.on_loop += 1
            except RuntimeError:
                pass
            return method(*args, **kwargs)

        return spy


def test_truncation_and_token_counts_never_tokenize_on_the_event_loop(sharp_cross_encoder) -> None:  # noqa: ANN001
    from rankwise.rerankers.cross_encoder import CrossEncoderReranker

    model = CrossEncoderReranker(sharp_cross_encoder, device="cpu")
    long_query = "lstm memory gates " * 400
    with client({"ce": model}) as c:
        truncator = c.app.state.serving.truncators["ce"]
        spy = truncator.tokenizer = LoopSpy(truncator.tokenizer)
        tei = c.post("/rerank", json={"query": long_query, "texts": [DOCS[0] * 40, DOCS[1]], "truncate": True})
        jina = c.post("/v1/rerank", json={"query": long_query, "documents": [DOCS[0] * 40], "max_tokens_per_doc": 5})
    assert tei.status_code == 200 and jina.status_code == 200
    assert jina.json()["meta"]["warnings"] == ["1 document(s) were cut to 5 tokens."]
    assert spy.calls >= 3 and spy.on_loop == 0


SHAPES = ["fusion-whole", "cross-encoder-batched", "cross-encoder-whole"]


@pytest.fixture(params=SHAPES)
def gated_shape(request, sharp_cross_encoder):  # noqa: ANN001, ANN201
    """(model, server options, the gated part): a model scored whole (fusion of BM25 and a bi-encoder, as the
    `default` preset), or a cross-encoder through the batcher's steps or scored whole."""
    if request.param == "fusion-whole":
        gated = gated_bi_encoder(batch_size=4)
        return FusionReranker([BM25Reranker(), gated], weights=[1.0, 2.0]), {}, gated
    gated = GatedBatchCrossEncoder(sharp_cross_encoder, device="cpu", batch_size=4)
    return gated, {"batching": request.param == "cross-encoder-batched"}, gated


def test_a_huge_request_stops_at_its_deadline_and_the_next_small_one_is_answered(gated_shape) -> None:  # noqa: ANN001
    model, options, gated = gated_shape
    huge = [f"{DOCS[i % len(DOCS)]} number {i}" for i in range(400)]  # 100 batches of 4
    with live_server({"m": model}, request_timeout_s=3, max_wait_ms=0, **options) as s:
        gated.gate.clear()
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(
                httpx.post, s.url + "/v2/rerank", json={"query": QUERIES[0], "documents": huge}, timeout=60
            )
            assert gated.entered.wait(30)  # the model is inside the huge request's first batch, held there
            late = pending.result()  # the deadline passes while the batch is held
            assert late.status_code == 504 and "request timeout of 3 s" in late.json()["message"]
            gated.gate.set()  # the batch finishes; the model call must stop at this batch boundary
            small = httpx.post(s.url + "/v2/rerank", json={"query": QUERIES[1], "documents": DOCS}, timeout=60)
            ran = gated.batches  # the huge request's held batch, then the small request's (at most 3)
        assert small.status_code == 200, small.text  # answered within its own 3 s
        assert ran <= 1 + 3  # not the huge request's 100
        assert by_index(small.json()["results"]) == model.score(QUERIES[1], DOCS)
        assert httpx.get(s.url + "/health").json() == {"status": "ok"}


class _HeldWholeReranker(WordOverlapReranker):
    """Word overlap scored whole, reporting progress per document; a request of more than 10 documents is held
    at its first batch boundary until ``gate`` opens (a huge request that keeps the model's worker busy)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def _score(self, query: str, documents: list, progress) -> list[float]:  # noqa: ANN001
        scores = super()._score(query, documents, progress)
        for done in range(1, len(documents) + 1):
            if len(documents) > 10:
                self.entered.set()
                if not self.gate.wait(60):
                    raise RuntimeError("gate never opened")
            if progress is not None:
                progress(done, len(documents))
        return scores


def test_a_small_request_takes_the_express_lane_past_a_huge_one_scored_whole() -> None:
    model = _HeldWholeReranker()
    huge = [f"{DOCS[i % len(DOCS)]} number {i}" for i in range(200)]
    with live_server({"m": model}, request_timeout_s=60) as s, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.post, s.url + "/v2/rerank", json={"query": QUERIES[0], "documents": huge},
                              timeout=60)
        assert model.entered.wait(30)  # the worker is inside the huge request, held there
        small = httpx.post(s.url + "/v2/rerank", json={"query": QUERIES[1], "documents": DOCS}, timeout=30)
        assert small.status_code == 200, small.text  # answered while the huge request still holds the worker
        assert not pending.done()
        assert by_index(small.json()["results"]) == model.score(QUERIES[1], DOCS)
        model.gate.set()
        done = pending.result()
    assert done.status_code == 200 and sorted(r["index"] for r in done.json()["results"]) == list(range(200))


# ---- 3. same input, same score ------------------------------------------------------------------------------------
PRODUCTS = [
    {"id": "p1", "name": "Trail running shoes", "price": 89.5, "tags": ["trail", "running"], "text": "grippy"},
    {"id": "p2", "name": "Waterproof hiking boots", "price": 120, "tags": ["hiking"], "text": "leather"},
    {"id": "p3", "name": "Running socks", "price": 9, "specs": {"wool": True}, "text": "merino"},
    {"id": "p4", "name": "Road running shoes", "price": None, "tags": [], "text": ""},
]


def test_server_scores_equal_the_library_bit_for_bit(models) -> None:  # noqa: ANN001
    import rankwise

    fields = ("name", "price", "tags", "specs")
    by_fields = BM25Reranker(fields=fields)
    hybrid = rankwise.load("hybrid")  # first-stage score from each object's metadata + the bi-encoder
    served = {**models, "bm25-fields": by_fields, "hybrid": hybrid}
    titled = [
        {"title": p["name"], "text": p["text"], "price": p["price"], "first_stage_score": 10.0 - i}
        for i, p in enumerate(PRODUCTS)
    ]
    query = "running shoes"
    with client(served) as c:
        for name in ("bm25", "default", "ce", "bi"):
            strings = c.post("/v2/rerank", json={"model": name, "query": query, "documents": DOCS})
            assert by_index(strings.json()["results"]) == served[name].score(query, DOCS)
            objects = c.post(
                "/v1/rerank",
                json={"model": name, "query": query, "documents": titled, "rank_fields": ["title", "text"]},
            )
            assert by_index(objects.json()["results"]) == served[name].score(query, titled)
        fused = c.post(
            "/v1/rerank",
            json={"model": "hybrid", "query": query, "documents": titled, "rank_fields": ["title", "text"]},
        )
        assert by_index(fused.json()["results"]) == hybrid.score(query, titled)
        structured = c.post(
            "/v1/rerank",
            json={"model": "bm25-fields", "query": query, "documents": PRODUCTS, "rank_fields": list(fields)},
        )
    assert by_index(structured.json()["results"]) == by_fields.score(query, PRODUCTS)
    assert len(set(by_fields.score(query, PRODUCTS))) > 1  # the values differ: the comparison means something


def test_object_text_is_the_library_rule() -> None:
    from rankwise.server.documents import request_texts

    doc = {"name": "Boots", "price": 12.5, "tags": ["a", "ü"], "specs": {"size": 42}, "on_sale": True, "empty": ""}
    got = request_texts([doc], ["name", "price", "tags", "specs", "on_sale", "empty", "missing"])
    assert got == ['Boots\n12.5\n["a", "ü"]\n{"size": 42}\nTrue']


# ---- 4. server details --------------------------------------------------------------------------------------------
def test_ready_is_a_status_only_and_models_stay_behind_the_key(models) -> None:  # noqa: ANN001
    with client({"secret-path-model": models["bm25"]}, api_keys=("k",)) as c:
        ready = c.get("/ready")
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        assert "secret-path-model" not in ready.text
        assert c.get("/v1/models").status_code == 401
        listed = c.get("/v1/models", headers={"Authorization": "Bearer k"}).json()
        assert [m["id"] for m in listed["data"]] == ["secret-path-model"]


def test_an_api_key_with_non_ascii_characters_matches(models) -> None:  # noqa: ANN001
    key = "clé-ключ-🔑"
    body = {"query": "q", "documents": ["a"]}
    with client({"bm25": models["bm25"]}, api_keys=(key,)) as c:
        ok = c.post("/v2/rerank", json=body, headers={"Authorization": b"Bearer " + key.encode("utf-8")})
        assert ok.status_code == 200, ok.text
        wrong_key = b"Bearer " + key.encode("latin-1", "replace")  # what a client that cannot send UTF-8 sends
        wrong = c.post("/v2/rerank", json=body, headers={"Authorization": wrong_key})
        assert wrong.status_code == 401


@pytest.mark.parametrize("value", [" , ", "", ",,"])
def test_api_keys_that_are_all_blank_are_a_startup_error(value: str, tmp_path, capsys) -> None:  # noqa: ANN001
    from rankwise.cli import main

    with pytest.raises(InvalidInputError, match="RANKWISE_API_KEYS.*holds no API key"):
        build_config({}, environ={"RANKWISE_API_KEYS": value})
    with pytest.raises(InvalidInputError, match="holds no API key"):
        ServerConfig(api_keys=(" ",))
    comments = tmp_path / "keys"
    comments.write_text("# nothing yet\n\n")
    with pytest.raises(InvalidInputError, match="holds no key"):
        ServerConfig(api_keys_file=str(comments)).all_api_keys()
    assert main(["serve", "--api-keys-file", str(comments), "--print-config"]) == 2
    assert "holds no key" in capsys.readouterr().err


def test_a_request_cut_by_the_graceful_timeout_gets_a_503(sharp_cross_encoder) -> None:  # noqa: ANN001
    gated = GatedCrossEncoder(sharp_cross_encoder, device="cpu")
    server = live_server({"g": gated}, graceful_timeout_s=1, max_wait_ms=0)
    s = server.__enter__()
    try:
        gated.gate.clear()
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(
                httpx.post, s.url + "/v2/rerank", json={"query": QUERIES[0], "documents": DOCS}, timeout=60
            )
            assert gated.entered.wait(30)
            s.server.should_exit = True  # SIGTERM: the request is held in the model past the graceful timeout
            r = pending.result()
    finally:
        gated.gate.set()
        s.thread.join(30)
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["error_type"] == "shutting_down" and "graceful timeout of 1 s" in body["message"]
    assert r.headers["retry-after"] == "1"


def test_a_500_logs_its_traceback_once(caplog) -> None:  # noqa: ANN001
    caplog.set_level(logging.INFO)
    with client({"overlap": WordOverlapReranker()}) as c:  # the client re-raises what reaches the ASGI server
        r = c.post("/v2/rerank", json={"query": "explode", "documents": ["a"]})
    assert r.status_code == 500 and r.json()["error_type"] == "internal"
    ref = r.json()["message"].split("reference ")[1].split(";")[0]
    with_traceback = [rec for rec in caplog.records if rec.exc_info]
    assert len(with_traceback) == 1 and ref in with_traceback[0].getMessage()
    assert "model failure on purpose" in caplog.text and "model failure on purpose" not in r.text


def test_bm25_requests_log_nothing_at_info(models, caplog) -> None:  # noqa: ANN001
    caplog.set_level(logging.INFO)
    with client({"bm25": models["bm25"]}) as c:
        for _ in range(3):
            assert c.post("/v2/rerank", json={"query": "lstm", "documents": DOCS}).status_code == 200
    assert [rec for rec in caplog.records if rec.name.startswith("bm25s")] == []


def test_serve_without_a_model_serves_the_offline_default(monkeypatch, capsys) -> None:  # noqa: ANN001
    from rankwise.cli import main
    from rankwise.server import runner

    monkeypatch.delenv("RANKWISE_MODELS", raising=False)
    monkeypatch.delenv("RANKWISE_CONFIG", raising=False)
    assert main(["serve", "--print-config"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["models"] == [{"name": "default", "source": "default", "backend": None, "options": {}}]
    served = []
    monkeypatch.setattr(runner, "serve", lambda config, rerankers=None: served.append(config))
    assert main(["serve", "--port", "9123"]) == 0
    assert [m.name for m in served[0].models] == ["default"] and served[0].port == 9123
