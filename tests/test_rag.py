"""The RAG pipeline on a real medline index with real re-rankers: context selection (merge, dedupe, top_n, token
budget), per-stage scores and timings, citation parsing, and the generator's failures (endpoint down, garbage).

The LLM here is a scripted chat client or a scripted loopback HTTP server (the answer text is what is under control);
tests/test_rag_llm.py runs the real SmolLM2 behind llama.cpp's OpenAI-compatible server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence

import pytest

import rankwise
from rankwise.errors import InvalidInputError
from rankwise.llm import ChatClient, ChatResult, LLMError, LLMResponseError, OpenAIChatClient, load_prompt
from rankwise.rag.generation import RAG_PROMPT, GenerationError, Generator, parse_citations, passage_text
from rankwise.rag.pipeline import Pipeline, PipelineResult
from rankwise.retrieval import Index
from rankwise.retrieval.passages import Passage, PassageSplitter
from tests.support.llm import ScriptedServer, completion, free_port, send_json
from tests.support.retrieval import bm25_index, queries


class ScriptedClient(ChatClient):
    """A chat model that answers with a fixed text (optionally in pieces) and records what it was asked."""

    def __init__(self, answer: str = "", pieces: Sequence[str] | None = None, fail: Exception | None = None) -> None:
        self.answer, self.pieces, self.fail = answer, pieces, fail
        self.model = "scripted"
        self.calls: list[list[dict]] = []

    def chat(self, messages, *, max_tokens=256, temperature=0.0, logprobs=None, stop=None, **params) -> ChatResult:
        self.calls.append(list(messages))
        if self.fail is not None:
            raise self.fail
        return ChatResult(text=self.answer, model=self.model, finish_reason="stop")

    def stream(self, messages, *, max_tokens=256, temperature=0.0, stop=None, **params) -> Iterator[str]:
        self.calls.append(list(messages))
        yield from self.pieces or [self.answer]


# -- citation parsing ------------------------------------------------------------------------------------------------
CTX = [Passage(f"d{i}#0", f"d{i}", 0, f"text {i}") for i in range(1, 5)]


@pytest.mark.parametrize(("answer", "numbers", "invalid"), [
    ("Plain answer [1].", [1], []),
    ("Both [1, 3] and [2][4].", [1, 3, 2, 4], []),
    ("A range [2-4], [Passage 1], [source 2] and [1 and 2].", [2, 3, 4, 1, 2, 1, 2], []),
    ("Out of range [7] and [0], valid [2].", [2], [7, 0]),
    ("No citations at all.", [], []),
    ("Not citations: [a], [ ], [1.5], x[]y, (1).", [], []),
    ("", [], []),
])
def test_parse_citations(answer, numbers, invalid):
    found, bad = parse_citations(answer, CTX)
    assert [c.number for c in found] == numbers and bad == invalid
    for c in found:
        assert c.doc_id == f"d{c.number}" and c.passage_id == f"d{c.number}#0"
        assert answer[c.start:c.end].startswith("[") and answer[c.start:c.end].endswith("]")


def test_rag_prompt_numbers_the_passages_and_shows_titles():
    gen = Generator(ScriptedClient("x"))
    passages = [Passage("a#0", "a", 0, "first text", title="Title A"), Passage("b#0", "b", 0, "second text")]
    messages = gen.messages("what?", passages)
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[-1]["content"]
    assert "[1] Title A\nfirst text" in user and "[2] second text" in user and "Question: what?" in user
    assert "[n]" in user and "only" in messages[0]["content"]
    assert passage_text(passages[1]) == "second text"
    with pytest.raises(InvalidInputError, match="no passages"):
        gen.messages("what?", [])


def test_custom_rag_prompt_is_validated(tmp_path):
    path = tmp_path / "my_rag.txt"
    path.write_text("--- user ---\nQ: {question}\n{passages}\n--- item ---\n<{number}> {passage}\n")
    gen = Generator(ScriptedClient("x"), prompt=str(path))
    assert "<1> t" in gen.messages("q", [Passage("a#0", "a", 0, "t")])[-1]["content"]
    path.write_text("--- user ---\nQ: {qestion}\n{passages}\n--- item ---\n[{number}] {passage}\n")
    with pytest.raises(InvalidInputError, match="qestion"):
        Generator(ScriptedClient("x"), prompt=str(path))
    assert load_prompt(RAG_PROMPT, kind="rag").kind == "rag"  # the bundled template is valid


# -- the pipeline -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def medline():
    return bm25_index("medline")


def test_run_retrieves_reranks_and_cites(medline):
    client = ScriptedClient("Lung cancer is treated by surgery [1] and radiotherapy [2, 9].")
    pipeline = Pipeline(medline, rankwise.load("bm25"), Generator(client), top_k=30, top_n=4)
    result = pipeline.run(queries("medline")["1"])
    assert isinstance(result, PipelineResult) and result.candidates == 30
    assert 1 <= len(result.passages) <= 4 and [c.number for c in result.passages] == list(range(1, len(result.passages) + 1))
    assert all(set(c.scores) == {"bm25", "rerank"} and c.score == c.scores["rerank"] for c in result.passages)
    assert [c.score for c in result.passages] == sorted((c.score for c in result.passages), reverse=True)
    assert [c.number for c in result.citations] == [1, 2] and result.invalid_citations == (9,)
    assert [c.doc_id for c in result.citations] == [result.passages[0].doc_id, result.passages[1].doc_id]
    assert [s.number for s in result.sources] == [1, 2]
    assert set(result.timings) == {"retrieve", "rerank", "generate", "total"}
    assert result.timings["total"] >= result.timings["retrieve"] + result.timings["rerank"]
    prompt = client.calls[0][-1]["content"]
    assert all(f"[{c.number}] " in prompt and c.text[:40] in prompt for c in result.passages)
    as_json = json.loads(json.dumps(result.to_dict()))
    assert as_json["citations"][0]["doc_id"] == result.passages[0].doc_id and as_json["model"] == "scripted"


def test_without_reranker_and_generator_it_only_retrieves(medline):
    result = Pipeline(medline, top_k=10, top_n=3).run("lung cancer")
    assert result.answer is None and result.citations == () and "rerank" not in result.timings
    assert len(result.passages) == 3 and all(set(c.scores) == {"bm25"} for c in result.passages)


def _two_passage_index() -> Index:
    words = " ".join(f"w{i}" for i in range(30))
    return Index.build(
        [{"id": "long", "text": "alpha beta " + words + " alpha beta", "metadata": {"k": 1}},
         {"id": "other", "text": "alpha gamma delta"}],
        splitter=PassageSplitter(max_words=20, overlap=5), dense=False,
    )


def test_passages_of_one_document_are_merged_or_deduplicated():
    index = _two_passage_index()
    assert len(index) == 3
    merged = Pipeline(index, top_k=10, top_n=5, merge="merge").run("alpha beta")
    assert [c.doc_id for c in merged.passages] == ["long", "other"]
    first = merged.passages[0]
    assert first.parts in (("long#0", "long#1"), ("long#1", "long#0"))
    assert first.text.split() == ("alpha beta " + " ".join(f"w{i}" for i in range(30)) + " alpha beta").split()
    assert first.passage.metadata == {"k": 1}
    deduped = Pipeline(index, top_k=10, top_n=5, merge="dedupe").run("alpha beta")
    assert next(c.parts for c in deduped.passages) in (("long#0",), ("long#1",)) and len(deduped.passages) == 2
    everything = Pipeline(index, top_k=10, top_n=5, merge="none").run("alpha beta")
    assert len(everything.passages) == 3


def test_top_n_and_the_token_budget_are_respected(medline):
    pipeline = Pipeline(medline, top_k=40, top_n=8, context_tokens=400)
    result = pipeline.run("cancer therapy")
    assert sum(c.tokens for c in result.passages) <= 400 and len(result.passages) <= 8
    assert all(c.tokens == pipeline.count_tokens(c.text) for c in result.passages)
    tiny = pipeline.run("cancer therapy", context_tokens=20, top_n=3)  # per-call options, state untouched
    assert len(tiny.passages) == 1 and tiny.passages[0].tokens <= 20 and tiny.passages[0].text
    assert pipeline.context_tokens == 400 and pipeline.top_n == 8
    assert len(pipeline.run("cancer therapy", top_n=2).passages) <= 2


def test_options_are_checked(medline):
    for bad in ({"top_n": 0}, {"context_tokens": 0}, {"merge": "smush"}, {"top_k": 0}):
        with pytest.raises(InvalidInputError):
            Pipeline(medline, **bad)
    with pytest.raises(InvalidInputError, match="retrieve"):
        Pipeline(object())
    with pytest.raises(InvalidInputError, match="Reranker"):
        Pipeline(medline, reranker=42)
    with pytest.raises(InvalidInputError, match="query"):
        Pipeline(medline).run("")


def test_streaming_passes_every_piece_and_the_result_has_the_whole_answer(medline):
    pieces = ["Surgery", " helps", " [1]", "."]
    seen: list[str] = []
    result = Pipeline(medline, None, Generator(ScriptedClient(pieces=pieces))).run("lung cancer", on_token=seen.append)
    assert seen == pieces and result.answer == "Surgery helps [1]." and result.citations[0].number == 1


def test_arun(medline):
    import asyncio

    result = asyncio.run(Pipeline(medline, None, Generator(ScriptedClient("ok [1]"))).arun("lung cancer"))
    assert result.answer == "ok [1]" and len(result.citations) == 1


# -- generator failures: clear errors, never a hang --------------------------------------------------------------------
def test_endpoint_down_is_a_clear_error_quickly(medline):
    client = OpenAIChatClient(model="m", base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=1, backoff=0.01)
    started = time.monotonic()
    with pytest.raises(LLMError, match="Check that the server is running"):
        Pipeline(medline, None, Generator(client)).run("lung cancer")
    assert time.monotonic() - started < 30


def test_garbage_from_the_endpoint_is_a_clear_error(medline):
    with ScriptedServer(lambda h, body, n: send_json(h, 200, None, raw=b"<html>oops</html>")) as srv:
        client = OpenAIChatClient(model="m", base_url=srv.url, max_retries=0)
        with pytest.raises(LLMResponseError):
            Pipeline(medline, None, Generator(client)).run("lung cancer")


def test_a_hanging_endpoint_times_out(medline):
    def hang(handler, body, n):
        time.sleep(5)

    with ScriptedServer(hang) as srv:
        client = OpenAIChatClient(model="m", base_url=srv.url, max_retries=0, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(LLMError):
            Pipeline(medline, None, Generator(client)).run("lung cancer")
        assert time.monotonic() - started < 5


def test_a_real_server_answer_is_parsed(medline):
    with ScriptedServer(lambda h, body, n: send_json(h, 200, completion("From [2]."))) as srv:
        result = Pipeline(medline, None, Generator(srv.url, model="m")).run("lung cancer")
        request = srv.requests[0]
    assert result.answer == "From [2]." and result.citations[0].doc_id == result.passages[1].doc_id
    assert request["temperature"] == 0.0 and request["max_tokens"] == 256 and "[1] " in request["messages"][-1]["content"]


def test_backend_failures_are_wrapped_with_the_fix(medline):
    gen = Generator(ScriptedClient(fail=ValueError("Requested tokens (5000) exceed context window of 2048")))
    with pytest.raises(GenerationError, match="exceed context window.*context_tokens"):
        Pipeline(medline, None, gen).run("lung cancer")
    with pytest.raises(InvalidInputError, match="max_tokens"):
        Generator(ScriptedClient(), max_tokens=0)
