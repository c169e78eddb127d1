"""Fuzzing the HTTP server with random JSON bodies on every route (hypothesis, pinned seed).

Bodies are valid-ish requests (every field of the Cohere/Jina and TEI shapes, each sometimes of a wrong type, huge,
negative, nested junk, missing, or joined by unknown fields) and garbage (any JSON value, broken JSON, bytes that are
not UTF-8); texts hold any code point, lone surrogates included (sent as JSON ``\\ud800`` escapes). Requests go
through the in-process ASGI client to an app serving ``bm25``, ``default``, ``hybrid``, a tiny cross-encoder and a
model scored whole, behind an API key that most requests carry (some carry a wrong or non-ASCII one).

Invariants: never a 5xx; every 4xx is a JSON ``{message, error, error_type}``; a 200 re-rank answer holds every input
document exactly once (without ``top_n``), ``index`` maps back to the input, scores are finite and best first (ties
by input order), returned documents and texts are exactly what was sent; ``/health`` answers after every example.

CI runs a small pinned sample (``derandomize=True``); ``RANKWISE_FUZZ_EXAMPLES=2000`` runs a longer one.
"""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from rankwise.server import ServerConfig, create_app
from tests.support.fuzzing import fuzz_settings
from tests.support.server import WordOverlapReranker

pytest_plugins = ("tests.support.server_fixtures",)

FUZZ = fuzz_settings(60)
KEY = "fuzz-key"
MODELS = ["bm25", "default", "ce", "overlap", "hybrid"]
RERANK = ["/v1/rerank", "/v2/rerank"]
SERVICE = ["/v1/models", "/info", "/health", "/ready", "/metrics"]

ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=30)  # lone surrogates included
WORDS = st.sampled_from(["lstm", "memory", "the", "of", "A", "7", "👍", "Straße", "\ud800", "", " ", "\x00"])
SOME_TEXT = st.one_of(ANY_TEXT, st.lists(WORDS, max_size=6).map(" ".join))
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0, -1, 1, 2**63])
)
JUNK = st.recursive(
    st.none() | st.booleans() | NUMBERS | SOME_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SOME_TEXT, inner, max_size=3),
    max_leaves=6,
)


QUERY = st.one_of(st.lists(WORDS, min_size=1, max_size=6).map(" ".join), ANY_TEXT)
OBJECT_DOCS = st.dictionaries(
    st.sampled_from(["text", "title", "id", "metadata", "name", "price", "tags"]) | SOME_TEXT,
    st.one_of(SOME_TEXT, SOME_TEXT, JUNK),
    max_size=4,
)
TEXT_DOCS = st.fixed_dictionaries(
    {"text": SOME_TEXT}, optional={"id": JUNK, "title": SOME_TEXT, "price": NUMBERS, "first_stage_score": NUMBERS}
)
DOCUMENTS = st.lists(st.one_of(SOME_TEXT, TEXT_DOCS, OBJECT_DOCS), max_size=6)
COHERE_FIELDS = {
    "model": st.sampled_from(MODELS),
    "query": QUERY,
    "documents": DOCUMENTS,
    "top_n": st.integers(1, 8) | st.none(),
    "return_documents": st.booleans(),
    "rank_fields": st.lists(st.sampled_from(["text", "title", "name", "price", "tags", "id"]), min_size=1, max_size=3),
    "max_tokens_per_doc": st.integers(1, 64),
}
TEI_FIELDS = {
    "model": st.sampled_from(MODELS),
    "query": QUERY,
    "texts": st.lists(SOME_TEXT, max_size=6),
    "raw_scores": st.booleans(),
    "return_text": st.booleans(),
    "truncate": st.booleans() | st.none(),
    "truncation_direction": st.sampled_from(["Left", "Right", "left", "right"]),
}
REQUIRED = {"query", "documents", "texts"}


@st.composite
def bodies(draw: st.DrawFn, options: dict[str, st.SearchStrategy]) -> dict[str, Any]:
    """A valid request (optional fields present or not) that is, one time in three, broken: a field of any type
    or value, a required field missing, unknown fields added."""
    body = {k: draw(v) for k, v in options.items() if k in REQUIRED or draw(st.booleans())}
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        name = draw(st.sampled_from(sorted(options)) | SOME_TEXT)
        how = draw(st.sampled_from(["junk", "drop", "number"]))
        if how == "drop":
            body.pop(name, None)
        else:
            body[name] = draw(JUNK if how == "junk" else NUMBERS)
    return body


COHERE = bodies(COHERE_FIELDS)
TEI = bodies(TEI_FIELDS)
RAW = st.one_of(
    JUNK.map(lambda v: json.dumps(v).encode()),  # any JSON value (NaN and Infinity as Python writes them)
    st.binary(max_size=40),  # broken JSON, bytes that are not UTF-8
    st.sampled_from([b"", b"{", b'{"query": "q", "documents": [', b"[" * 5000 + b"]" * 5000, b'{"a": 1e400}']),
)
AUTH = st.integers(0, 9).flatmap(  # mostly the right key; sometimes none, junk bytes, or a non-ASCII wrong one
    lambda i: st.just(f"Bearer {KEY}".encode())
    if i < 7
    else [
        st.none(),
        st.binary(max_size=20).map(lambda b: b"Bearer " + bytes(c for c in b if c not in b"\r\n\x00")),
        st.just("Bearer clé".encode()),
    ][i - 7]
)


@pytest.fixture(scope="module")
def fuzz_client(bm25_model, default_model, tiny_ce):  # noqa: ANN001, ANN201
    import rankwise

    models = {
        "bm25": bm25_model,
        "default": default_model,
        "ce": tiny_ce,
        "overlap": WordOverlapReranker(),  # no independent_scores: scored whole
        "hybrid": rankwise.load("hybrid"),  # reads each object's first_stage_score
    }
    config = ServerConfig(api_keys=(KEY,), max_documents=5, max_tokens_per_doc=64, max_query_bytes=200)
    with TestClient(create_app(models, config)) as c:
        yield c


def send(c: TestClient, method: str, path: str, content: bytes, auth: bytes | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if auth is not None:
        headers["authorization"] = auth  # type: ignore[assignment] - raw bytes, as a client may send them
    return c.request(method, path, content=content, headers=headers)


def encode(body: Any) -> bytes:
    return json.dumps(body).encode()  # ASCII, lone surrogates as \ud800 escapes


def check_common(c: TestClient, r: httpx.Response) -> None:
    event(f"status {r.status_code}")  # --hypothesis-show-statistics: how many examples reach the model
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        out = r.json()
        assert set(out) == {"message", "error", "error_type"} and out["message"] == out["error"], out
        assert out["message"] and "Traceback" not in out["message"]
    assert c.get("/health").json() == {"status": "ok"}


def check_ranked(indexes: list[int], scores: list[float], n: int, top_n: int | None) -> None:
    """Every document once (or the best ``top_n``), ``index`` in range, finite scores, best first, ties by index."""
    assert all(isinstance(i, int) and 0 <= i < n for i in indexes)
    assert len(set(indexes)) == len(indexes)
    assert len(indexes) == (n if top_n is None else min(top_n, n))
    assert all(isinstance(s, float) and math.isfinite(s) for s in scores)
    assert list(zip(scores, indexes)) == sorted(zip(scores, indexes), key=lambda p: (-p[0], p[1]))


@FUZZ
@given(path=st.sampled_from(RERANK), body=COHERE, auth=AUTH)
def test_cohere_routes(fuzz_client, path: str, body: dict, auth: bytes | None) -> None:  # noqa: ANN001
    r = send(fuzz_client, "POST", path, encode(body), auth)
    check_common(fuzz_client, r)
    if r.status_code != 200:
        return
    out = r.json()
    docs = body["documents"]
    results = out["results"]
    top_n = body.get("top_n")
    check_ranked([x["index"] for x in results], [x["relevance_score"] for x in results], len(docs), top_n)
    for x in results:
        if body.get("return_documents"):
            sent = docs[x["index"]]
            assert x["document"] == ({"text": sent} if isinstance(sent, str) else sent)  # ids and fields untouched
        else:
            assert "document" not in x


@FUZZ
@given(body=TEI, auth=AUTH)
def test_tei_route(fuzz_client, body: dict, auth: bytes | None) -> None:  # noqa: ANN001
    r = send(fuzz_client, "POST", "/rerank", encode(body), auth)
    check_common(fuzz_client, r)
    if r.status_code != 200:
        return
    out = r.json()
    check_ranked([x["index"] for x in out], [x["score"] for x in out], len(body["texts"]), None)
    for x in out:
        assert x.get("text") == (body["texts"][x["index"]] if body.get("return_text") else None)


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    path=st.sampled_from([*RERANK, "/rerank", *SERVICE, "/nope"]),
    content=RAW,
    auth=AUTH,
)
def test_every_route_with_garbage(  # noqa: ANN001
    fuzz_client, method: str, path: str, content: bytes, auth: bytes | None
) -> None:
    r = send(fuzz_client, method, path, content, auth)
    check_common(fuzz_client, r)
    if r.status_code == 200 and path in ("/v1/models", "/info", "/ready"):
        assert isinstance(r.json(), dict)
