"""Loopback servers for the remote re-ranker tests (tests/test_remote_*.py).

* :func:`voyage_app` and :func:`mixedbread_app`: FastAPI apps that follow Voyage's ``POST /v1/rerank`` and
  Mixedbread's ``POST /v1/reranking`` references -- field names, required fields, limits (1-1,000 documents), the
  bearer key, unknown fields refused -- and score with a real rankwise model, so a test can check the backend's
  scores against the same model in process. Each records the bodies it accepted.
* :func:`app_server`: any ASGI app under uvicorn on a free loopback port, in a thread.
* :class:`FailureServer`: a scripted raw-socket server (``http.server``) that answers each request with the next
  step of a script -- an HTTP status with headers, a connection reset, a stall, a body that is not JSON or is cut
  short, an answer with a missing or repeated index -- and a well-formed Cohere v2 answer once the script is spent.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from rankwise.rerankers.base import Reranker
from tests.support.llm import ScriptedServer, send_json
from tests.support.server import free_port


class VoyageRequest(BaseModel):
    """Voyage's ``POST /v1/rerank`` body (unknown fields refused)."""

    model_config = ConfigDict(extra="forbid")
    query: StrictStr = Field(min_length=1)
    documents: list[StrictStr] = Field(min_length=1, max_length=1000)
    model: StrictStr = Field(min_length=1)
    top_k: int | None = Field(None, ge=1)
    return_documents: StrictBool = False
    truncation: StrictBool = True


class MixedbreadRequest(BaseModel):
    """Mixedbread's ``POST /v1/reranking`` body (unknown fields refused)."""

    model_config = ConfigDict(extra="forbid")
    model: StrictStr = Field(min_length=1, max_length=500)
    query: StrictStr = Field(min_length=1, max_length=32000)
    input: list[StrictStr | dict[str, Any]] = Field(min_length=1, max_length=1000)
    rank_fields: list[StrictStr] | None = Field(None, min_length=1)
    top_k: int | None = Field(None, ge=1)
    return_input: StrictBool = False
    rewrite_query: StrictBool = False


# ---- any app on a free port -------------------------------------------------------------------------------------
@contextmanager
def app_server(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in a daemon thread; yield its base URL; stop it afterwards."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("loopback app did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def _checked_key(request: Request, key: str) -> JSONResponse | None:
    """None when the bearer key matches, else the 401 answer (what both providers do for a wrong key)."""
    if request.headers.get("authorization") != f"Bearer {key}":
        return JSONResponse({"detail": "Provided API key is invalid."}, status_code=401)
    return None


def _validation_answer(app: FastAPI) -> None:
    """Both references answer a malformed request with 400 and a message (FastAPI's default is 422)."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": str(exc.errors()[:3])}, status_code=400)


# ---- Voyage ------------------------------------------------------------------------------------------------------
def voyage_app(model: Reranker, key: str, accepted: list[dict]) -> FastAPI:
    """Voyage's rerank API: ``{query, documents, model, top_k?, return_documents?, truncation?}`` ->
    ``{object: "list", data: [{relevance_score, index, document?}], model, usage: {total_tokens}}``, best first,
    cut to ``top_k``. Scores are ``model.score(query, documents)``; accepted bodies are appended to ``accepted``."""
    app = FastAPI()
    _validation_answer(app)

    @app.post("/v1/rerank")
    def rerank(body: VoyageRequest, request: Request) -> Any:
        refused = _checked_key(request, key)
        if refused is not None:
            return refused
        accepted.append(body.model_dump())
        scores = model.score(body.query, body.documents)
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[: body.top_k]
        data = []
        for i in order:
            item: dict[str, Any] = {"relevance_score": scores[i], "index": i}
            if body.return_documents:
                item["document"] = body.documents[i]
            data.append(item)
        tokens = sum(len(body.query.split()) + len(d.split()) for d in body.documents)
        return {"object": "list", "data": data, "model": body.model, "usage": {"total_tokens": tokens}}

    return app


# ---- Mixedbread --------------------------------------------------------------------------------------------------
def mixedbread_app(model: Reranker, key: str, accepted: list[dict]) -> FastAPI:
    """Mixedbread's reranking API: ``{model, query, input, rank_fields?, top_k?, return_input?, rewrite_query?}`` ->
    ``{usage: {prompt_tokens, total_tokens}, model, data: [{index, score, input?, object: "rank_result"}], object:
    "list", top_k, return_input}``, best first. Scores are ``model.score(query, input)`` (string inputs)."""
    app = FastAPI()
    _validation_answer(app)

    @app.post("/v1/reranking")
    def rerank(body: MixedbreadRequest, request: Request) -> Any:
        refused = _checked_key(request, key)
        if refused is not None:
            return refused
        accepted.append(body.model_dump())
        texts = [
            d if isinstance(d, str) else "\n".join(str(d[f]) for f in body.rank_fields or ["text"])
            for d in body.input
        ]
        scores = model.score(body.query, texts)
        top_k = body.top_k or len(texts)
        order = sorted(range(len(scores)), key=lambda i: -scores[i])[:top_k]
        data = []
        for i in order:
            item: dict[str, Any] = {"index": i, "score": scores[i], "object": "rank_result"}
            if body.return_input:
                item["input"] = body.input[i]
            data.append(item)
        tokens = sum(len(body.query.split()) + len(t.split()) for t in texts)
        return {
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            "model": body.model,
            "data": data,
            "object": "list",
            "top_k": top_k,
            "return_input": body.return_input,
        }

    return app


# ---- scripted failures -------------------------------------------------------------------------------------------
def overlap_scores(query: str, documents: list[str]) -> list[float]:
    """What :class:`FailureServer` scores when it answers well: query words found in the document, plus a tie-breaker
    from the document's length (so scores differ and are exactly reproducible)."""
    words = set(query.lower().split())
    return [len(words & set(d.lower().split())) + 1.0 / (1 + len(d)) for d in documents]


def cohere_answer(body: dict, scores: list[float] | None = None) -> dict:
    """A well-formed Cohere v2 answer for ``body`` (best first), with ``search_units``."""
    docs = body["documents"]
    scores = overlap_scores(body["query"], docs) if scores is None else scores
    order = sorted(range(len(docs)), key=lambda i: -scores[i])[: body.get("top_n") or len(docs)]
    results = [{"index": i, "relevance_score": scores[i]} for i in order]
    return {"id": "x", "results": results, "meta": {"billed_units": {"search_units": 1}}}


Step = Callable[[BaseHTTPRequestHandler, dict], None]


def status(code: int, headers: dict[str, str] | None = None, body: object = None) -> Step:
    """Answer HTTP ``code`` with ``headers`` and a JSON ``body``."""

    def step(handler: BaseHTTPRequestHandler, request: dict) -> None:
        data = json.dumps(body if body is not None else {"message": f"status {code}"}).encode()
        handler.send_response(code)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return step


def reset() -> Step:
    """Close the connection with a TCP reset (SO_LINGER 0) before any answer."""

    def step(handler: BaseHTTPRequestHandler, request: dict) -> None:
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.close_connection = True
        handler.connection.close()

    return step


def stall(seconds: float) -> Step:
    """Answer nothing for ``seconds`` (longer than the client's timeout), then a well-formed answer if anyone waits."""

    def step(handler: BaseHTTPRequestHandler, request: dict) -> None:
        time.sleep(seconds)
        try:
            send_json(handler, 200, cohere_answer(request))
        except OSError:  # the client gave up long ago
            handler.close_connection = True

    return step


def raw(data: bytes, declared: int | None = None) -> Step:
    """Answer 200 with ``data`` as the body; ``declared`` > len(data) announces more bytes than are sent and closes
    the connection (a body cut off in transit)."""

    def step(handler: BaseHTTPRequestHandler, request: dict) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(declared if declared is not None else len(data)))
        handler.end_headers()
        handler.wfile.write(data)
        if declared is not None:
            handler.close_connection = True

    return step


def answer(make: Callable[[dict], object]) -> Step:
    """Answer 200 with the JSON ``make(request body)``."""

    def step(handler: BaseHTTPRequestHandler, request: dict) -> None:
        send_json(handler, 200, make(request))

    return step


@dataclass
class Seen:
    """One request the failure server received."""

    at: float
    path: str
    authorization: str | None
    body: dict = field(default_factory=dict)


class FailureServer(ScriptedServer):
    """:class:`tests.support.llm.ScriptedServer` driven by a script of steps (each request takes the next; a spent
    script answers well). ``seen`` records every request with its arrival time; ``base_url`` is the server root."""

    def __init__(self, *steps: Step) -> None:
        self.script: deque[Step] = deque(steps)
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        super().__init__(self._respond)
        self.base_url = self.url.removesuffix("/v1")

    def _respond(self, handler: BaseHTTPRequestHandler, body: dict, n: int) -> None:
        with self._lock:
            self.seen.append(Seen(time.monotonic(), handler.path, handler.headers.get("Authorization"), body))
            step = self.script.popleft() if self.script else answer(cohere_answer)
        step(handler, body)

    def __enter__(self) -> FailureServer:  # noqa: PYI034 - as ScriptedServer
        super().__enter__()
        return self
