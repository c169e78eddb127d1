"""The OpenAI-compatible client against scripted loopback servers: success, logprobs, streaming, retries, the
disk cache, and every failure a real deployment shows (server down, garbage, hangs, HTTP errors)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from rankwise.errors import InvalidInputError, RankwiseError
from rankwise.llm import ChatResult, DiskCache, LLMError, LLMResponseError, OpenAIChatClient, make_client
from rankwise.llm.openai import normalize_base_url
from tests.support.llm import ScriptedServer, completion, free_port, send_json

MSG = [{"role": "user", "content": "Is the sky blue? yes or no"}]


def ok_server(text: str = "yes", logprobs: dict[str, float] | None = None) -> ScriptedServer:
    return ScriptedServer(lambda h, body, n: send_json(h, 200, completion(text, logprobs)))


def test_chat_sends_openai_payload_and_parses_reply():
    with ok_server("yes", {"yes": -0.1, "no": -2.5}) as srv:
        client = OpenAIChatClient(model="m", base_url=srv.url, api_key="k", max_retries=0)
        result = client.chat(MSG, max_tokens=3, logprobs=5, stop=["\n"], seed=7)
    assert isinstance(result, ChatResult)
    assert result.text == "yes" and result.model == "fake" and not result.cached
    assert result.usage == {"prompt_tokens": 7, "completion_tokens": 1}
    assert result.logprobs[0].token == "yes"
    assert result.first_token_logprobs() == {"yes": -0.1, "no": -2.5}
    sent = srv.requests[0]
    assert sent["model"] == "m" and sent["messages"] == MSG and sent["max_tokens"] == 3
    assert sent["logprobs"] is True and sent["top_logprobs"] == 5  # llama.cpp needs both
    assert sent["stop"] == ["\n"] and sent["seed"] == 7 and sent["temperature"] == 0.0


def test_model_is_discovered_from_the_server_when_not_configured(monkeypatch):
    monkeypatch.delenv("RANKWISE_LLM_MODEL", raising=False)
    with ok_server() as srv:
        client = OpenAIChatClient(base_url=srv.url, max_retries=0)
        client.chat(MSG, max_tokens=1)
    assert client.model == "fake-model" and srv.requests[0]["model"] == "fake-model"


def test_environment_configures_the_client(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("OPENAI_API_KEY", "secret")
    monkeypatch.setenv("RANKWISE_LLM_MODEL", "env-model")
    client = OpenAIChatClient()
    assert client.base_url == "http://127.0.0.1:9/v1" and client.model == "env-model"
    assert client._headers["Authorization"] == "Bearer secret"


def test_base_url_normalisation_and_bad_urls():
    assert normalize_base_url("http://h:1/") == "http://h:1/v1"
    assert normalize_base_url("http://h:1/api/v1/") == "http://h:1/api/v1"
    with pytest.raises(InvalidInputError, match="not an http"):
        normalize_base_url("localhost:8000")


def test_server_down_raises_clear_error_after_retries_in_bounded_time():
    port = free_port()  # nothing listens there
    client = OpenAIChatClient(
        model="m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=2, backoff=0.01, timeout=2
    )
    began = time.monotonic()
    with pytest.raises(LLMError) as info:
        client.chat(MSG)
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "3 attempt(s)" in message and "could not connect" in message
    assert "server is running" in message  # the fix is named
    assert time.monotonic() - began < 30  # bounded, never a hang (a generous bound, not a speed claim)


def test_garbage_body_is_a_clear_error_without_retries():
    def garbage(h, body, n):
        send_json(h, 200, None, raw=b"<html>this is not json")

    with ScriptedServer(garbage) as srv:
        client = OpenAIChatClient(model="m", base_url=srv.url, max_retries=3, backoff=0.01)
        with pytest.raises(LLMResponseError, match="not JSON"):
            client.chat(MSG)
    assert len(srv.requests) == 1


@pytest.mark.parametrize(
    "body", [{"choices": []}, {"foo": 1}, {"choices": [{"message": {"content": 5}}]}, [1, 2]]
)
def test_json_that_is_not_a_completion_is_a_clear_error(body):
    with ScriptedServer(lambda h, b, n: send_json(h, 200, body)) as srv:
        client = OpenAIChatClient(model="m", base_url=srv.url, max_retries=0)
        with pytest.raises(LLMResponseError, match="not a chat completion"):
            client.chat(MSG)


def test_timeout_is_retried_then_reported():
    def hang(h, body, n):
        time.sleep(1.5)
        send_json(h, 200, completion("late"))

    with ScriptedServer(hang) as srv:
        client = OpenAIChatClient(model="m", base_url=srv.url, timeout=0.3, max_retries=1, backoff=0.01)
        with pytest.raises(LLMError, match="timed out after 0.3 s"):
            client.chat(MSG)
    assert len(srv.requests) == 2


def test_503_then_success_is_retried_with_backoff():
    def flaky(h, body, n):
        if n <= 2:
            send_json(h, 503, {"error": "overloaded"})
        else:
            send_json(h, 200, completion("fine"))

    with ScriptedServer(flaky) as srv:
        client = OpenAIChatClient(model="m", base_url=srv.url, max_retries=3, backoff=0.01)
        assert client.chat(MSG).text == "fine"
    assert len(srv.requests) == 3


def test_4xx_is_not_retried_and_names_the_fix():
    with ScriptedServer(lambda h, b, n: send_json(h, 401, {"error": {"message": "bad key"}})) as srv:
        client = OpenAIChatClient(model="m", base_url=srv.url, max_retries=3, backoff=0.01)
        with pytest.raises(LLMError, match="HTTP 401.*OPENAI_API_KEY"):
            client.chat(MSG)
    assert len(srv.requests) == 1


def test_error_object_with_200_is_reported():
    with (
        ScriptedServer(lambda h, b, n: send_json(h, 200, {"error": "model not loaded"})) as srv,
        pytest.raises(LLMResponseError, match="model not loaded"),
    ):
        OpenAIChatClient(model="m", base_url=srv.url, max_retries=0).chat(MSG)


def test_stream_yields_deltas():
    def sse(h, body, n):
        assert body["stream"] is True
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()
        for piece in ["Hel", "lo", "!"]:
            chunk = {"choices": [{"index": 0, "delta": {"content": piece}}]}
            h.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        h.wfile.write(b"data: [DONE]\n\n")

    with ScriptedServer(sse) as srv:
        pieces = list(OpenAIChatClient(model="m", base_url=srv.url).stream(MSG, max_tokens=5))
    assert pieces == ["Hel", "lo", "!"]


def test_batch_keeps_order_and_bounds_concurrency():
    active = {"now": 0, "max": 0}

    def echo(h, body, n):
        active["now"] += 1
        active["max"] = max(active["max"], active["now"])
        time.sleep(0.05)
        active["now"] -= 1
        send_json(h, 200, completion(body["messages"][0]["content"]))

    chats = [[{"role": "user", "content": f"q{i}"}] for i in range(12)]
    with ScriptedServer(echo) as srv:
        client = OpenAIChatClient(model="m", base_url=srv.url, concurrency=3)
        results = client.batch(chats, max_tokens=2)
        async_results = asyncio.run(client.abatch(chats, concurrency=2, max_tokens=2))
        single = asyncio.run(client.achat(chats[0]))
    assert [r.text for r in results] == [f"q{i}" for i in range(12)]
    assert [r.text for r in async_results] == [f"q{i}" for i in range(12)]
    assert single.text == "q0"
    assert 1 <= active["max"] <= 3


def test_disk_cache_serves_deterministic_calls_only(tmp_path):
    with ok_server("cached answer") as srv:
        client = OpenAIChatClient(model="m", base_url=srv.url, cache=DiskCache(tmp_path))
        first = client.chat(MSG, max_tokens=4)
        second = client.chat(MSG, max_tokens=4)
        client.chat(MSG, max_tokens=5)  # different parameters: a different key
        client.chat(MSG, max_tokens=4, temperature=0.9)  # sampled, no seed: never cached
        client.chat(MSG, max_tokens=4, temperature=0.9)
        client.chat(MSG, max_tokens=4, temperature=0.9, seed=1)  # sampled with a seed: cached
        client.chat(MSG, max_tokens=4, temperature=0.9, seed=1)
    assert not first.cached and second.cached and second.text == "cached answer"
    assert len(srv.requests) == 5
    assert len(DiskCache(tmp_path)) == 3


def test_bad_arguments_are_named():
    client = OpenAIChatClient(model="m", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(InvalidInputError, match="messages"):
        client.chat("hello")
    with pytest.raises(InvalidInputError, match="role"):
        client.chat([{"role": "robot", "content": "x"}])
    with pytest.raises(InvalidInputError, match="max_tokens"):
        client.chat(MSG, max_tokens=0)
    with pytest.raises(InvalidInputError, match="temperature"):
        client.chat(MSG, temperature=-1)
    with pytest.raises(InvalidInputError, match="timeout"):
        OpenAIChatClient(model="m", timeout=0)
    assert isinstance(LLMError("x"), RankwiseError)


def test_make_client_routes_specs():
    assert isinstance(make_client("http://127.0.0.1:9/v1", model="m"), OpenAIChatClient)
    named = make_client("gpt-4o-mini", base_url="http://127.0.0.1:9/v1")
    assert isinstance(named, OpenAIChatClient) and named.model == "gpt-4o-mini"
    assert make_client(named) is named
    with pytest.raises(InvalidInputError, match="ready client"):
        make_client(named, timeout=3)
