"""rankwise._http, the one HTTP client with retries: what its HTTPError carries, Retry-After, no URL rewriting, and
the LLM client's /v1 rule as an option of its own."""

from __future__ import annotations

import time

import pytest

from rankwise._http import HTTPError, RetryingHTTP
from rankwise.errors import InvalidInputError, RankwiseError
from rankwise.llm import LLMError, OpenAIChatClient
from tests.support.llm import ScriptedServer, completion, free_port, send_json


def test_a_refusal_carries_status_body_and_url():
    with ScriptedServer(lambda h, b, n: send_json(h, 404, {"error": "no such route " + "x" * 400})) as srv:
        http = RetryingHTTP(max_retries=3, backoff=0.01)
        with pytest.raises(HTTPError) as info:
            http.request("POST", srv.url + "/rerank", {"q": 1})
    error = info.value
    assert isinstance(error, RankwiseError) and not isinstance(error, LLMError)
    assert (error.kind, error.status, error.url, error.attempts) == ("refused", 404, srv.url + "/rerank", 1)
    assert error.body.startswith('{"error": "no such route') and len(error.body) == 300
    assert len(srv.requests) == 1  # a 4xx is not retried


def test_retry_after_is_honoured_and_the_url_is_used_as_given():
    def busy_once(h, body, n):
        if n == 1:
            h.send_response(503)
            h.send_header("Retry-After", "1")
            h.send_header("Content-Length", "0")
            h.end_headers()
        else:
            send_json(h, 200, {"ok": True})

    with ScriptedServer(busy_once) as srv:
        http = RetryingHTTP(max_retries=2, backoff=0.01)
        began = time.monotonic()
        root = srv.url.removesuffix("/v1")  # no /v1 appended: that is the LLM client's rule, not the transport's
        assert http.request("POST", root + "/score", {}).json() == {"ok": True}
    assert time.monotonic() - began >= 0.9 and len(srv.requests) == 2
    assert http.delay(0) == 0.01 and http.delay(20) == http.max_backoff == 20.0


def test_giving_up_says_how_often_and_why():
    port = free_port()  # nothing listens there
    with pytest.raises(HTTPError) as info:
        RetryingHTTP(max_retries=1, backoff=0.01).request("GET", f"http://127.0.0.1:{port}/x")
    assert (info.value.kind, info.value.status, info.value.attempts) == ("failed", None, 2)
    assert "could not connect" in str(info.value) and "2 attempt(s)" in str(info.value)
    with pytest.raises(InvalidInputError, match="max_backoff"):
        RetryingHTTP(max_backoff=-1)


def test_the_llm_client_appends_v1_only_as_its_own_option():
    assert OpenAIChatClient(model="m", base_url="http://127.0.0.1:9").base_url == "http://127.0.0.1:9/v1"
    assert OpenAIChatClient(model="m", base_url="http://127.0.0.1:9", default_path="").base_url == "http://127.0.0.1:9"
    with ScriptedServer(lambda h, b, n: send_json(h, 200, completion("yes"))) as srv:
        client = OpenAIChatClient(model="m", base_url=srv.url.removesuffix("/v1"), max_retries=0)
        assert client.chat([{"role": "user", "content": "hi"}], max_tokens=1).text == "yes"
