"""End to end through HTTP: the real SmolLM2 behind ``python -m llama_cpp.server`` on a loopback port, reached
with the OpenAI-compatible client; the LLM re-rankers over HTTP agree with the same model in process."""

from __future__ import annotations

import asyncio

import pytest

from rankwise.llm import OpenAIChatClient
from rankwise.rerankers.llm_listwise import ListwiseLLMReranker
from rankwise.rerankers.llm_pointwise import PointwiseLLMReranker
from tests.support.llm import PASSAGES, smollm2_client, smollm2_server_url  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow  # needs llama-cpp-python (compiled; .[llm-local]): the slow tier runs these

MSG = [{"role": "user", "content": "Is Paris the capital of France? Answer yes or no."}]


@pytest.fixture(scope="module")
def http_client(smollm2_server_url):
    client = OpenAIChatClient(base_url=smollm2_server_url, timeout=120, max_retries=1, concurrency=2)
    yield client
    client.close()


def test_chat_logprobs_and_discovered_model(http_client, smollm2_client):
    result = http_client.chat(MSG, max_tokens=8, logprobs=5)
    assert http_client.model == "smollm2" and result.text.strip()
    assert result.usage["prompt_tokens"] > 10 and result.usage["completion_tokens"] >= 1
    top = result.first_token_logprobs()
    assert len(top) >= 5 and all(v <= 0 for v in top.values())
    # the server runs the same GGUF with the same template: greedy replies match the in-process model
    assert result.text == smollm2_client.chat(MSG, max_tokens=8).text


def test_stream_and_async_batch(http_client):
    assert "".join(http_client.stream(MSG, max_tokens=8)) == http_client.chat(MSG, max_tokens=8).text
    chats = [[{"role": "user", "content": f"Say the number {i}."}] for i in range(3)]
    results = asyncio.run(http_client.abatch(chats, max_tokens=4))
    assert len(results) == 3 and all(r.usage["completion_tokens"] >= 1 for r in results)


def test_pointwise_over_http_matches_local_logits(http_client, smollm2_client):
    query, passages = "What is the capital of France?", PASSAGES[:4]
    remote, report = PointwiseLLMReranker(client=http_client, max_passage_tokens=48).rank_with_report(
        query, passages
    )
    assert report.from_logprobs == len(passages) and report.calls == len(passages)
    local = PointwiseLLMReranker(client=smollm2_client, max_passage_tokens=48).rank(query, passages)
    exact = {r.index: r.score for r in local}
    for r in remote:
        assert r.score == pytest.approx(exact[r.index], abs=0.02)


def test_listwise_over_http(http_client):
    reranker = ListwiseLLMReranker(client=http_client, window=4, step=2, max_passage_tokens=24)
    results, report = reranker.rank_with_report("What is the capital of France?", PASSAGES[:6])
    assert sorted(r.index for r in results) == list(range(6))
    assert report.windows == report.calls == 2 and report.prompt_tokens > 0 and len(report.replies) == 2
