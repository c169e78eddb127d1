"""End to end with the real SmolLM2-135M GGUF in process (llama-cpp-python): chat, logprobs, exact next-token
scores, streaming, threads, the cache, and both LLM re-rankers. The model is tiny, so quality is never
asserted."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

import rankwise
from rankwise.llm import DiskCache, LlamaCppChatClient, LLMError
from rankwise.rerankers.llm_listwise import ListwiseLLMReranker, window_starts
from rankwise.rerankers.llm_pointwise import PointwiseLLMReranker
from tests.support.llm import PASSAGES, require_smollm2, smollm2_client  # noqa: F401 - fixture

# llama-cpp-python compiles llama.cpp on install, so it is not in [test]: these run in the slow tier (.ci/run installs
# .[llm-local] first) and skip without it.
pytestmark = pytest.mark.slow

MSG = [{"role": "user", "content": "Is Paris the capital of France? Answer yes or no."}]


def test_greedy_chat_is_deterministic_and_counts_tokens(smollm2_client):
    a = smollm2_client.chat(MSG, max_tokens=12)
    b = smollm2_client.chat(MSG, max_tokens=12)
    assert a.text == b.text and a.text.strip()
    assert a.usage["prompt_tokens"] > 10 and 1 <= a.usage["completion_tokens"] <= 12
    assert a.model == "SmolLM2-135M-Instruct.Q4_1" and a.finish_reason in ("stop", "length")


# The two reads of one distribution below run different llama.cpp kernels: chat(logprobs=) evaluates the whole
# prompt as one batch on a logits_all model copy (batched GEMM), next_token_logprobs reuses the KV cache and evaluates
# only the tail, reading one row (GEMV). With Q4_1 weights the activations are quantized to 8 bits per block, and
# which kernel, block format and accumulation order is used depends on the batch size and on the CPU features
# llama.cpp was built for (AVX2, AVX-512 VNNI, AMX). So the logprobs agree only to the kernels' rounding: observed max
# |difference| 5e-8 with the portable AVX2 build .ci/run makes, 0.020 with a -march=native AVX-512 VNNI build
# (-0.8558 vs -0.8359). 0.05 nats covers any build with margin; the mistakes this test is for are far larger (the
# wrong position or token id reads another distribution; a missing log-normalizer shifts every value by log Z).
KERNEL_TOLERANCE = 0.05


def test_logprobs_and_exact_next_token_scores_agree(smollm2_client):
    result = smollm2_client.chat(MSG, max_tokens=2, logprobs=10)
    top = result.first_token_logprobs()
    assert len(result.logprobs) >= 1 and len(top) >= 5 and all(v <= 0 for v in top.values())
    exact, n_prompt = smollm2_client.next_token_logprobs(MSG, list(top))
    assert n_prompt == result.usage["prompt_tokens"]
    # invariant on every CPU: the order of any two tokens further apart than the rounding (the greedy one included)
    for a in top:
        for b in top:
            if top[a] - top[b] > 2 * KERNEL_TOLERANCE:
                assert exact[a] > exact[b], (a, b, top, exact)
    for token, lp in top.items():  # the same distribution, read two ways (sampler logprobs vs raw logits)
        assert exact[token] == pytest.approx(lp, abs=KERNEL_TOLERANCE)


def test_stream_gives_the_greedy_reply(smollm2_client):
    pieces = list(smollm2_client.stream(MSG, max_tokens=8))
    assert len(pieces) > 1 and "".join(pieces) == smollm2_client.chat(MSG, max_tokens=8).text


def test_threads_share_one_model_safely(smollm2_client):
    chats = [[{"role": "user", "content": f"Say the number {i}."}] for i in range(4)]
    sequential = [smollm2_client.chat(c, max_tokens=6).text for c in chats]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda c: smollm2_client.chat(c, max_tokens=6).text, chats))
    assert (
        threaded == sequential == [r.text for r in smollm2_client.batch(chats, concurrency=3, max_tokens=6)]
    )


def test_tokens_are_counted_and_cut_with_the_model_tokenizer(smollm2_client):
    text = "Paris is the capital and most populous city of France."
    n = smollm2_client.count_tokens(text)
    assert 8 <= n <= 20
    cut = smollm2_client.truncate(text, 4)
    assert text.startswith(cut) and smollm2_client.count_tokens(cut) <= 4
    assert smollm2_client.truncate(text, 100) == text


def test_disk_cache_with_the_local_model(tmp_path):
    client = LlamaCppChatClient(require_smollm2(), n_ctx=512, cache=DiskCache(tmp_path))
    first = client.chat(MSG, max_tokens=5)
    second = client.chat(MSG, max_tokens=5)
    assert not first.cached and second.cached and second.text == first.text
    client.close()


def test_context_overflow_is_a_clear_error():
    client = LlamaCppChatClient(require_smollm2(), n_ctx=128)
    long = [{"role": "user", "content": "word " * 400}]
    with pytest.raises(LLMError, match="n_ctx"):
        client.chat(long, max_tokens=4)
    with pytest.raises(LLMError, match="n_ctx=128"):
        client.next_token_logprobs(long, ["yes"])
    client.close()


def test_listwise_end_to_end(smollm2_client):
    reranker = ListwiseLLMReranker(client=smollm2_client, window=4, step=2, max_passage_tokens=24)
    docs = [{"text": p, "id": f"d{i}"} for i, p in enumerate(PASSAGES[:6])]
    results, report = reranker.rank_with_report("What is the capital of France?", docs)
    assert sorted(r.index for r in results) == list(range(len(docs)))
    assert [r.document.id for r in results] == [f"d{r.index}" for r in results]
    assert report.windows == len(window_starts(len(docs), 4, 2)) == len(report.replies)
    assert report.calls == report.windows and report.prompt_tokens > 0 and report.completion_tokens > 0
    assert 0.0 <= report.repair_rate <= 1.0 and report.seconds > 0


def test_pointwise_end_to_end_uses_exact_logits(smollm2_client):
    query, passages = "What is the capital of France?", PASSAGES[:4]
    reranker = PointwiseLLMReranker(client=smollm2_client, max_passage_tokens=48)
    results, report = reranker.rank_with_report(query, passages)
    assert all(0.0 <= s <= 1.0 for s in results.scores) and len(set(results.scores)) > 1
    assert report.from_logits == report.calls == len(passages) and report.no_verdict == 0
    assert report.prompt_tokens > 0
    # the same scores through the generic path (one-token replies with top logprobs) agree closely
    generic = PointwiseLLMReranker(client=_Generic(smollm2_client), max_passage_tokens=48, top_logprobs=20)
    generic_results, generic_report = generic.rank_with_report(query, passages)
    assert generic_report.from_logprobs == len(passages)
    exact = {r.index: r.score for r in results}
    for r in generic_results:
        assert r.score == pytest.approx(exact[r.index], abs=0.02)


def test_presets_load_the_bundled_model():
    require_smollm2()
    reranker = rankwise.load("smollm2-pointwise")
    assert isinstance(reranker, PointwiseLLMReranker) and reranker.name == "smollm2-pointwise"
    assert 0.0 <= reranker.rank("capital of France", PASSAGES[:2], top_k=1)[0].score <= 1.0


class _Generic(rankwise.llm.ChatClient):
    """The local client seen only through the generic ChatClient interface (no next_token_logprobs)."""

    def __init__(self, inner: LlamaCppChatClient) -> None:
        self.inner, self.model = inner, inner.model

    def chat(self, messages, **kwargs):
        return self.inner.chat(messages, **kwargs)

    def truncate(self, text: str, max_tokens: int) -> str:
        return self.inner.truncate(text, max_tokens)
