"""The HTTP server against real clients: the official Cohere SDK (v1 and v2), raw httpx for Jina and TEI, every limit
and error case, auth, CORS and metrics. Every score is checked against a direct library call on the same model."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from tests.support.server import DOCS, QUERIES, WordOverlapReranker, live_server

pytest_plugins = ("tests.support.server_fixtures",)  # its fixtures: tiny_ce, sharp_cross_encoder...

cohere = pytest.importorskip("cohere")

# ~900 tokens, over the 512 window, with its two halves about different things (chunking and truncating differ)
LONG_DOC = " ".join(["pooling layers shrink feature maps"] * 80 + ["lstm memory gates cell state"] * 60)


@pytest.fixture(scope="module")
def server(tiny_ce):  # noqa: ANN001
    with live_server(
        {"tiny": tiny_ce, "overlap": WordOverlapReranker()},
        max_documents=50,
        max_tokens_per_doc=1000,
        max_body_bytes=20_000,
    ) as s:
        yield s


def assert_matches(results: list, direct: list[float], n: int | None = None) -> None:
    """Results carry index and score; each score equals the direct call's, and they come best first."""
    assert len(results) == (n if n is not None else len(direct))
    scores = [r["relevance_score"] if isinstance(r, dict) else r.relevance_score for r in results]
    indexes = [r["index"] if isinstance(r, dict) else r.index for r in results]
    assert scores == sorted(scores, reverse=True)
    np.testing.assert_allclose(scores, [direct[i] for i in indexes], rtol=1e-4, atol=1e-5)
    best = sorted(range(len(direct)), key=lambda i: (-direct[i], i))[: len(results)]
    np.testing.assert_allclose(sorted(direct[i] for i in best), sorted(scores), rtol=1e-4, atol=1e-5)


# ---- the official Cohere SDK, unchanged ------------------------------------------------------------------------
def test_cohere_v2_sdk(server, tiny_ce):  # noqa: ANN001
    client = cohere.ClientV2(api_key="x", base_url=server.url, max_retries=0)
    out = client.rerank(model="tiny", query=QUERIES[0], documents=DOCS, top_n=3)
    assert_matches(out.results, tiny_ce.score(QUERIES[0], DOCS), n=3)
    assert out.id and out.meta.api_version.version == "2"


def test_cohere_v2_sdk_long_document_is_chunked_like_the_library(server, tiny_ce):  # noqa: ANN001
    client = cohere.ClientV2(api_key="x", base_url=server.url, max_retries=0)
    docs = [LONG_DOC, *DOCS[:2]]
    out = client.rerank(model="tiny", query=QUERIES[0], documents=docs)
    assert_matches(out.results, tiny_ce.score(QUERIES[0], docs))


def test_cohere_v1_sdk_objects_rank_fields_and_documents(server, tiny_ce):  # noqa: ANN001
    client = cohere.Client(api_key="x", base_url=server.url, max_retries=0)
    docs = [{"title": f"T{i}", "text": d, "url": f"u{i}"} for i, d in enumerate(DOCS)]
    out = client.rerank(
        model="tiny",
        query=QUERIES[1],
        documents=docs,
        rank_fields=["title", "text"],
        return_documents=True,
        top_n=4,
    )
    direct = tiny_ce.score(QUERIES[1], [f"T{i}\n{d}" for i, d in enumerate(DOCS)])
    assert_matches(out.results, direct, n=4)
    for r in out.results:  # an object comes back whole
        assert r.document.text == DOCS[r.index]
        assert r.document.dict()["url"] == f"u{r.index}"
    plain = client.rerank(model="tiny", query=QUERIES[1], documents=docs)  # default: the 'text' field
    assert_matches(plain.results, tiny_ce.score(QUERIES[1], DOCS))
    assert all(r.document is None for r in plain.results)


def test_cohere_async_client(server, tiny_ce):  # noqa: ANN001
    import asyncio

    async def go():  # noqa: ANN202
        client = cohere.AsyncClientV2(api_key="x", base_url=server.url, max_retries=0)
        return await asyncio.gather(*(client.rerank(model="tiny", query=q, documents=DOCS) for q in QUERIES))

    for q, out in zip(QUERIES, asyncio.run(go())):
        assert_matches(out.results, tiny_ce.score(q, DOCS))


def test_cohere_errors_are_typed_by_the_sdk(server):  # noqa: ANN001
    client = cohere.ClientV2(api_key="x", base_url=server.url, max_retries=0)
    with pytest.raises(cohere.NotFoundError) as err:
        client.rerank(model="rerank-v3.5", query="q", documents=["a"])
    assert "tiny" in str(err.value.body) and "overlap" in str(err.value.body)
    with pytest.raises(cohere.BadRequestError) as err:
        client.rerank(model="tiny", query="   ", documents=["a"])
    assert "query is empty" in err.value.body["message"]


# ---- Jina and TEI shapes (raw httpx) -----------------------------------------------------------------------------
def test_jina_shape(server, tiny_ce):  # noqa: ANN001
    body = {"model": "tiny", "query": QUERIES[2], "documents": DOCS, "top_n": 2, "return_documents": True}
    r = httpx.post(server.url + "/v1/rerank", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["model"] == "tiny"
    assert_matches(out["results"], tiny_ce.score(QUERIES[2], DOCS), n=2)
    assert all(res["document"] == {"text": DOCS[res["index"]]} for res in out["results"])
    objs = [{"text": d} for d in DOCS]
    r2 = httpx.post(server.url + "/v1/rerank", json={**body, "documents": objs, "top_n": None})
    assert_matches(r2.json()["results"], tiny_ce.score(QUERIES[2], DOCS))


def test_default_model_when_none_named(server, tiny_ce):  # noqa: ANN001
    r = httpx.post(server.url + "/v2/rerank", json={"query": QUERIES[0], "documents": DOCS})
    assert r.json()["model"] == "tiny"
    assert_matches(r.json()["results"], tiny_ce.score(QUERIES[0], DOCS))


def test_second_model_scored_whole(server):  # noqa: ANN001
    r = httpx.post(
        server.url + "/v2/rerank", json={"model": "overlap", "query": "image edges", "documents": DOCS}
    )
    assert r.status_code == 200
    assert_matches(r.json()["results"], WordOverlapReranker().score("image edges", DOCS))


def test_tei_shape_sigmoid_raw_and_text(server, tiny_ce):  # noqa: ANN001
    direct = np.asarray(tiny_ce.score(QUERIES[3], DOCS))
    r = httpx.post(server.url + "/rerank", json={"query": QUERIES[3], "texts": DOCS, "return_text": True})
    assert r.status_code == 200
    out = r.json()
    assert [x["score"] for x in out] == sorted((x["score"] for x in out), reverse=True)
    for x in out:
        assert x["text"] == DOCS[x["index"]]
        assert x["score"] == pytest.approx(1 / (1 + np.exp(-direct[x["index"]])), rel=1e-4, abs=1e-5)
    raw = httpx.post(
        server.url + "/rerank", json={"query": QUERIES[3], "texts": DOCS, "raw_scores": True}
    ).json()
    assert all("text" not in x for x in raw)
    for x in raw:
        assert x["score"] == pytest.approx(direct[x["index"]], rel=1e-4, abs=1e-5)


def test_tei_truncate_keeps_one_window(server, tiny_ce, tiny_ce_truncating):  # noqa: ANN001
    texts = [LONG_DOC, DOCS[0]]
    body = {"query": QUERIES[0], "texts": texts, "raw_scores": True}
    cut = {
        x["index"]: x["score"]
        for x in httpx.post(server.url + "/rerank", json={**body, "truncate": True}).json()
    }
    whole = {x["index"]: x["score"] for x in httpx.post(server.url + "/rerank", json=body).json()}
    np.testing.assert_allclose(
        [cut[0], cut[1]], tiny_ce_truncating.score(QUERIES[0], texts), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose([whole[0], whole[1]], tiny_ce.score(QUERIES[0], texts), rtol=1e-4, atol=1e-5)
    assert abs(cut[0] - whole[0]) > 1e-3  # the test can tell the two apart


# ---- Jina's usage, Cohere's billed units, TEI's /info ----------------------------------------------------------------
def token_count(model, text: str) -> int:  # noqa: ANN001
    return len(model.encoder.tokenizer.encode(text, add_special_tokens=False).ids)


def test_jina_usage_counts_query_and_document_tokens(server, tiny_ce):  # noqa: ANN001
    docs = DOCS[:3]
    out = httpx.post(
        server.url + "/v1/rerank", json={"model": "tiny", "query": QUERIES[0], "documents": docs}
    ).json()
    query = token_count(tiny_ce, QUERIES[0])
    assert out["usage"] == {"total_tokens": sum(query + token_count(tiny_ce, d) for d in docs)}
    assert out["meta"]["billed_units"] == {"search_units": 1}
    # documents count as cut: 5 tokens each here
    cut = httpx.post(
        server.url + "/v2/rerank",
        json={
            "model": "tiny",
            "query": QUERIES[0],
            "documents": [LONG_DOC, DOCS[0]],
            "max_tokens_per_doc": 5,
        },
    ).json()
    assert cut["usage"] == {"total_tokens": 2 * (query + 5)}
    words = httpx.post(  # no tokenizer: whitespace-separated words
        server.url + "/v1/rerank",
        json={"model": "overlap", "query": "image edges", "documents": ["a b c", "d"]},
    ).json()
    assert words["usage"] == {"total_tokens": (2 + 3) + (2 + 1)}
    empty = httpx.post(server.url + "/v1/rerank", json={"query": "q", "documents": []}).json()
    assert empty["usage"] == {"total_tokens": 0} and empty["meta"]["billed_units"] == {"search_units": 1}


@pytest.mark.parametrize(("n", "units"), [(0, 1), (1, 1), (100, 1), (101, 2), (1000, 10)])
def test_search_units_follow_cohere_100_documents_per_unit(n: int, units: int) -> None:
    from rankwise.server.routes import search_units

    assert search_units(n) == units


def test_cohere_sdks_parse_billed_units(server):  # noqa: ANN001
    v2 = cohere.ClientV2(api_key="x", base_url=server.url, max_retries=0)
    out = v2.rerank(model="tiny", query=QUERIES[0], documents=DOCS)
    assert out.meta.billed_units.search_units == 1 and out.meta.api_version.version == "2"
    v1 = cohere.Client(api_key="x", base_url=server.url, max_retries=0)
    out1 = v1.rerank(model="tiny", query=QUERIES[0], documents=DOCS)
    assert out1.meta.billed_units.search_units == 1 and out1.meta.api_version.version == "1"


TEI_INFO_FIELDS = {
    "model_id", "model_sha", "model_dtype", "model_type", "max_concurrent_requests", "max_input_length",
    "max_batch_tokens", "max_batch_requests", "max_client_batch_size", "auto_truncate", "tokenization_workers",
    "version", "sha", "docker_label",
}  # fmt: skip


def test_tei_info_describes_the_default_model(server, tiny_ce):  # noqa: ANN001
    import rankwise

    info = httpx.get(server.url + "/info").json()
    assert TEI_INFO_FIELDS <= set(info)
    assert info["model_id"] == "tiny" and info["served_models"] == ["tiny", "overlap"]
    labels = {str(k): v for k, v in tiny_ce.model.config.id2label.items()}
    assert info["model_type"] == {
        "reranker": {"id2label": labels, "label2id": {v: int(k) for k, v in labels.items()}}
    }
    assert info["model_dtype"] == "float32"
    assert info["max_input_length"] == tiny_ce.encoder.max_length
    assert info["max_batch_tokens"] == tiny_ce.max_tokens
    assert info["max_client_batch_size"] == 50  # --max-documents
    assert info["max_concurrent_requests"] is None  # --max-connections unset: unlimited
    assert info["auto_truncate"] is True and info["version"] == rankwise.__version__


def test_tei_info_for_a_model_without_a_tokenizer(tiny_ce):  # noqa: ANN001
    with live_server(
        {"tiny": tiny_ce, "overlap": WordOverlapReranker()}, default_model="overlap", max_connections=7
    ) as s:
        info = httpx.get(s.url + "/info").json()
    assert info["model_id"] == "overlap" and info["served_models"] == ["overlap", "tiny"]
    assert info["model_dtype"] == "unknown" and info["max_batch_tokens"] is None
    assert info["max_input_length"] == 4096  # the --max-tokens-per-doc default, in words
    assert info["max_concurrent_requests"] == 7


# ---- per-request truncation never changes the shared model -------------------------------------------------------
def test_max_tokens_per_doc_cuts_per_request_only(server, tiny_ce):  # noqa: ANN001
    before = (tiny_ce.encoder.max_length, tiny_ce.encoder.overflow, tiny_ce.max_tokens)
    docs = [DOCS[0], LONG_DOC]
    r = httpx.post(
        server.url + "/v2/rerank",
        json={"model": "tiny", "query": QUERIES[0], "documents": docs, "max_tokens_per_doc": 5},
    )
    out = r.json()
    # the first 5 WordPiece tokens of each
    first5 = ["LSTM networks use", "pooling layers shrink feature"]  # l ##st ##m; pool ##ing
    assert_matches(out["results"], tiny_ce.score(QUERIES[0], first5))
    assert out["meta"]["warnings"] == ["2 document(s) were cut to 5 tokens."]
    assert (tiny_ce.encoder.max_length, tiny_ce.encoder.overflow, tiny_ce.max_tokens) == before
    again = httpx.post(
        server.url + "/v2/rerank", json={"model": "tiny", "query": QUERIES[0], "documents": docs}
    )
    assert_matches(again.json()["results"], tiny_ce.score(QUERIES[0], docs))
    assert "warnings" not in again.json()["meta"]


def test_word_truncation_for_models_without_a_tokenizer(server):  # noqa: ANN001
    docs = ["image edges " + "x " * 10, "nothing here image edges"]
    r = httpx.post(
        server.url + "/v2/rerank",
        json={"model": "overlap", "query": "image edges", "documents": docs, "max_tokens_per_doc": 2},
    )
    assert_matches(
        r.json()["results"], WordOverlapReranker().score("image edges", ["image edges", "nothing here"])
    )
    assert r.json()["meta"]["warnings"] == ["2 document(s) were cut to 2 words."]


# ---- limits and errors -------------------------------------------------------------------------------------------
def post_raw(server, path: str, content: bytes, **headers: str) -> httpx.Response:  # noqa: ANN001
    return httpx.post(
        server.url + path, content=content, headers={"content-type": "application/json", **headers}
    )


@pytest.mark.parametrize(
    ("body", "status", "kind", "words"),
    [
        (b'{"query": "q", "documents": [', 400, "invalid_json", "not valid JSON"),
        (b'["q", "a"]', 400, "invalid_json", "JSON object"),
        (b'{"query": "\xff\xfe", "documents": []}', 400, "invalid_json", "could not be read as JSON"),
        (b'{"documents": ["a"]}', 422, "invalid_type", "query: is required"),
        (b'{"query": 5, "documents": ["a"]}', 422, "invalid_type", "query: input should be a valid string"),
        (b'{"query": "q", "documents": "a"}', 422, "invalid_type", "documents: input should be a valid list"),
        (
            b'{"query": "q", "documents": ["a", 7]}',
            422,
            "invalid_type",
            "documents[1]: must be a string or an object",
        ),
        (b'{"query": "q", "documents": ["a"], "top_n": 0}', 422, "invalid_type", "top_n"),
        (b'{"query": "q", "documents": ["a"], "top_n": "x"}', 422, "invalid_type", "top_n"),
        (b'{"query": "", "documents": ["a"]}', 400, "invalid_request", "query is empty"),
        (b'{"model": "nope", "query": "q", "documents": ["a"]}', 404, "model_not_found", "'tiny', 'overlap'"),
        (
            json.dumps({"query": "q", "documents": ["a"] * 51}).encode(),
            400,
            "too_many_documents",
            "limit of 50",
        ),
        (
            b'{"query": "q", "documents": ["a"], "max_tokens_per_doc": 1001}',
            400,
            "invalid_request",
            "limit of 1000",
        ),
        (
            b'{"query": "q", "documents": ["a"], "max_tokens_per_doc": 0}',
            422,
            "invalid_type",
            "max_tokens_per_doc",
        ),
        (
            b'{"query": "q", "documents": [{"title": "t"}]}',
            400,
            "invalid_request",
            "documents[0] has no 'text'",
        ),
        (
            b'{"query": "q", "documents": [{"a": "t"}], "rank_fields": ["b"]}',
            400,
            "invalid_request",
            "rank_fields",
        ),
    ],
)
def test_bad_requests_get_clear_json_errors(server, body: bytes, status: int, kind: str, words: str):  # noqa: ANN001
    r = post_raw(server, "/v2/rerank", body)
    assert r.status_code == status, r.text
    out = r.json()
    assert out["error_type"] == kind
    assert words in out["message"], out["message"]
    assert out["error"] == out["message"]
    assert "Traceback" not in r.text


def test_tei_errors(server):  # noqa: ANN001
    r = post_raw(server, "/rerank", b'{"query": "q", "texts": ["a", 3]}')
    assert r.status_code == 422 and "texts[1]" in r.json()["error"]
    r = post_raw(server, "/rerank", b'{"query": " ", "texts": ["a"]}')
    assert r.status_code == 400 and "query is empty" in r.json()["error"]


def test_body_limit_by_length_and_by_stream(server):  # noqa: ANN001
    big = json.dumps({"query": "q", "documents": ["word " * 5000]}).encode()
    r = post_raw(server, "/v2/rerank", big)
    assert r.status_code == 413 and "limit of 20000 bytes" in r.json()["message"]

    def chunks():  # no Content-Length: the limit is enforced while reading
        yield b'{"query": "q", "documents": ["'
        for _ in range(50):
            yield b"word " * 100
        yield b'"]}'

    r = httpx.post(server.url + "/v2/rerank", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error_type"] == "payload_too_large"


def test_empty_documents_give_empty_results(server):  # noqa: ANN001
    r = httpx.post(server.url + "/v2/rerank", json={"query": "q", "documents": []})
    assert r.status_code == 200 and r.json()["results"] == []


def test_model_failure_is_a_clean_500_and_the_server_lives(server):  # noqa: ANN001
    r = httpx.post(
        server.url + "/v2/rerank", json={"model": "overlap", "query": "explode", "documents": ["a"]}
    )
    assert r.status_code == 500
    assert r.json()["error_type"] == "internal"
    assert "secret internal detail" not in r.text and "Traceback" not in r.text
    ok = httpx.post(server.url + "/v2/rerank", json={"model": "overlap", "query": "a", "documents": ["a"]})
    assert ok.status_code == 200


def test_unknown_route_and_method(server):  # noqa: ANN001
    r = httpx.get(server.url + "/v3/rerank")
    assert r.status_code == 404 and r.json()["error_type"] == "not_found"
    r = httpx.get(server.url + "/v2/rerank")
    assert r.status_code == 405 and r.json()["error_type"] == "method_not_allowed"


# ---- service routes ------------------------------------------------------------------------------------------------
def test_health_ready_models_docs(server):  # noqa: ANN001
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}
    # /ready needs no key, so it names no model (issue 10: it leaked local paths); /v1/models lists them
    assert httpx.get(server.url + "/ready").json() == {"status": "ready"}
    models = httpx.get(server.url + "/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["tiny", "overlap"] and models["default"] == "tiny"
    assert [m["batching"] for m in models["data"]] == [True, False]
    spec = httpx.get(server.url + "/openapi.json").json()
    paths = {"/v1/rerank", "/v2/rerank", "/rerank", "/health", "/ready", "/metrics", "/v1/models", "/info"}
    assert paths <= set(spec["paths"])
    assert httpx.get(server.url + "/docs").status_code == 200


def test_metrics_count_requests_errors_and_batches(server):  # noqa: ANN001
    httpx.post(server.url + "/v2/rerank", json={"model": "tiny", "query": "q", "documents": DOCS})
    post_raw(server, "/v2/rerank", b"{")
    text = httpx.get(server.url + "/metrics").text
    for name in (
        "rankwise_requests_total",
        "rankwise_request_duration_seconds_bucket",
        "rankwise_errors_total",
        "rankwise_batch_pairs_bucket",
        "rankwise_batch_requests_bucket",
        "rankwise_queue_pairs",
        "rankwise_queue_requests",
        "rankwise_pairs_scored_total",
        "rankwise_requests_in_flight",
        "rankwise_batch_duration_seconds_bucket",
        "rankwise_cancelled_requests_total",
    ):
        assert name in text, name
    assert server.metric("rankwise_requests_total", endpoint="/v2/rerank", status="200") >= 1
    assert server.metric("rankwise_errors_total", endpoint="/v2/rerank", type="invalid_json") >= 1
    assert server.metric("rankwise_pairs_scored_total", model="tiny") >= len(DOCS)
    assert server.metric("rankwise_queue_pairs", model="tiny") == 0


# ---- security -------------------------------------------------------------------------------------------------------
def test_api_keys(tiny_ce):  # noqa: ANN001
    with live_server({"tiny": tiny_ce}, api_keys=("key-one", "key-two")) as s:
        body = {"query": QUERIES[0], "documents": DOCS}
        assert httpx.post(s.url + "/v2/rerank", json=body).status_code == 401
        bad = httpx.post(s.url + "/v2/rerank", json=body, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.json()["error_type"] == "unauthorized"
        assert bad.headers["www-authenticate"] == "Bearer"
        ok = httpx.post(
            s.url + "/rerank",
            json={"query": "q", "texts": ["a"]},
            headers={"Authorization": "Bearer key-two"},
        )
        assert ok.status_code == 200
        out = cohere.ClientV2(api_key="key-one", base_url=s.url, max_retries=0).rerank(
            model="tiny", query=QUERIES[0], documents=DOCS
        )
        assert_matches(out.results, tiny_ce.score(QUERIES[0], DOCS))
        with pytest.raises(cohere.UnauthorizedError):
            cohere.ClientV2(api_key="wrong", base_url=s.url, max_retries=0).rerank(
                model="tiny", query="q", documents=["a"]
            )
        assert httpx.get(s.url + "/metrics").status_code == 401
        assert httpx.get(s.url + "/v1/models").status_code == 401
        assert httpx.get(s.url + "/info").status_code == 401
        assert httpx.get(s.url + "/metrics", headers={"Authorization": "Bearer key-one"}).status_code == 200
        for open_path in ("/health", "/ready", "/openapi.json"):
            assert httpx.get(s.url + open_path).status_code == 200


def test_cors_is_off_by_default_and_configurable(server, tiny_ce):  # noqa: ANN001
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    r = httpx.options(server.url + "/v2/rerank", headers=preflight)
    assert "access-control-allow-origin" not in r.headers
    with live_server({"tiny": tiny_ce}, cors_origins=("https://app.example",), docs=False) as s:
        r = httpx.options(s.url + "/v2/rerank", headers=preflight)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://app.example"
        r = httpx.options(s.url + "/v2/rerank", headers={**preflight, "Origin": "https://evil.example"})
        assert r.headers.get("access-control-allow-origin") != "https://evil.example"
        assert httpx.get(s.url + "/openapi.json").status_code == 404  # docs=False


def test_binds_loopback_by_default():
    from rankwise.server.config import ServerConfig

    assert ServerConfig().host == "127.0.0.1"
