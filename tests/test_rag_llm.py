"""End to end with a real LLM: SmolLM2-135M behind llama.cpp's OpenAI-compatible server on loopback (and in process).

SmolLM2 is tiny: it may cite nothing or cite a number that is not in the context. So the checks are on
well-formedness -- every valid citation points at a passage that was in the context, every invalid number is outside
it, the spans are brackets in the answer -- never on what the model chose to say."""

from __future__ import annotations

import json
import re

import pytest

from rankwise.cli import main
from rankwise.llm import OpenAIChatClient
from rankwise.rag.generation import Generator, parse_citations
from rankwise.rag.pipeline import Pipeline
from tests.support.llm import llama_cpp_server, require_smollm2
from tests.support.retrieval import bm25_index, collection, queries


@pytest.fixture(scope="module")
def server_url():
    with llama_cpp_server(require_smollm2()) as url:
        yield url


def check_well_formed(answer, passages, citations, invalid):
    assert isinstance(answer, str)
    numbers = {p["number"] for p in passages}
    by_number = {p["number"]: p for p in passages}
    for c in citations:
        assert c["number"] in numbers
        assert c["doc_id"] == by_number[c["number"]]["doc_id"] and c["passage_id"] == by_number[c["number"]]["id"]
        assert re.fullmatch(r"\[.*\]", answer[c["start"]:c["end"]])
    assert all(n not in numbers for n in invalid)
    cited = {int(n) for group in re.findall(r"\[(\d+)\]", answer) for n in [group]}
    assert cited <= numbers | set(invalid)  # every plain [n] in the text was parsed one way or the other


@pytest.mark.slow  # llama.cpp's server (llama-cpp-python, .[llm-local])
def test_ask_end_to_end_against_llama_cpp_server(server_url, tmp_path, capsys):
    index_dir = tmp_path / "medline.index"
    assert main(["index", str(collection("medline") / "corpus.jsonl"), "--out", str(index_dir), "--no-dense"]) == 0
    capsys.readouterr()
    question = queries("medline")["1"]
    args = ["ask", str(index_dir), question, "--llm-base-url", server_url, "--llm-model", "smollm2",
            "--rerank", "bm25", "--top-n", "3", "--context-tokens", "500", "--max-tokens", "60"]
    assert main([*args, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "smollm2" and 1 <= len(data["passages"]) <= 3
    assert sum(p["tokens"] for p in data["passages"]) <= 500
    check_well_formed(data["answer"], data["passages"], data["citations"], data["invalid_citations"])
    assert data["timings"]["generate"] > 0 and data["timings"]["total"] >= data["timings"]["generate"]
    assert main(args) == 0  # streamed text output
    out = capsys.readouterr().out
    assert "\nSources:\n" in out and "Timings: retrieve" in out


@pytest.mark.slow
def test_pipeline_with_the_openai_client(server_url):
    client = OpenAIChatClient(model="smollm2", base_url=server_url, timeout=120, max_retries=1)
    pipeline = Pipeline(bm25_index("medline"), None, Generator(client, max_tokens=60), top_n=3, context_tokens=500)
    pieces: list[str] = []
    result = pipeline.run("What are the effects of smoking on the lungs?", on_token=pieces.append)
    assert "".join(pieces) == result.answer and len(pieces) > 1  # streamed in pieces
    data = result.to_dict()
    check_well_formed(data["answer"], data["passages"], data["citations"], data["invalid_citations"])
    again, bad = parse_citations(result.answer, [c.passage for c in result.passages])
    assert tuple(again) == result.citations and tuple(bad) == result.invalid_citations


@pytest.mark.slow
def test_pipeline_with_the_local_gguf_default():
    require_smollm2()
    pipeline = Pipeline(bm25_index("adi"), None, Generator(max_tokens=40), top_n=2, context_tokens=400)
    result = pipeline.run(queries("adi")["3"])
    data = result.to_dict()
    check_well_formed(data["answer"], data["passages"], data["citations"], data["invalid_citations"])
    assert result.model and result.timings["generate"] > 0
