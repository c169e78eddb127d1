"""`rankwise index`, `rankwise search` and `rankwise ask` through the real command-line entry point: outputs, --add,
errors with exit code 2 and one clear line, and `ask` streaming from a scripted OpenAI-compatible server."""

from __future__ import annotations

import json

import pytest

from rankwise.cli import main
from tests.support.llm import ScriptedServer, completion, free_port, send_json
from tests.support.retrieval import collection


@pytest.fixture(scope="module")
def adi_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "adi.index"
    assert main(["index", str(collection("adi") / "corpus.jsonl"), "--out", str(out), "--no-dense"]) == 0
    return out


def test_index_prints_a_summary_and_writes_the_folder(adi_dir, capsys, tmp_path):
    assert (adi_dir / "manifest.json").is_file()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Gates\nLSTM gates keep long-term memory.")
    assert main(["index", str(docs), "--out", str(tmp_path / "i"), "--no-dense", "--passage-words", "50",
                 "--overlap", "5"]) == 0
    out = capsys.readouterr().out
    assert "built" in out and "1 documents, 1 passages" in out
    (docs / "b.txt").write_text("Convolutions see images.")
    (docs / "more").mkdir()
    (docs / "more" / "c.txt").write_text("Attention relates tokens.")
    assert main(["index", str(docs / "more"), "--out", str(tmp_path / "i"), "--add"]) == 0
    assert "added 1 documents (1 passages)" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "i" / "manifest.json").read_text())
    assert manifest["counts"] == {"documents": 2, "passages": 2} and manifest["splitter"]["max_words"] == 50


def test_search_table_and_json(adi_dir, capsys):
    assert main(["search", str(adi_dir), "information retrieval evaluation", "-k", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("3 passages from") and "bm25" in out[0] and len(out) == 5
    assert main(["search", str(adi_dir), "information retrieval evaluation", "-k", "4", "-f", "json",
                 "--rerank", "bm25", "--candidates", "20"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["results"]) == 4 and set(data["results"][0]["scores"]) == {"bm25", "rerank"}
    assert set(data["timings"]) == {"retrieve", "rerank", "total"}
    assert main(["search", str(adi_dir), "indexing", "-k", "2", "-f", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["rank"] for r in rows] == [1, 2] and all("doc_id" in r for r in rows)


def test_cli_errors_are_one_clear_line(adi_dir, tmp_path, capsys):
    assert main(["search", str(tmp_path / "missing"), "q"]) == 2
    err = capsys.readouterr().err
    assert "does not exist; build it with `rankwise index" in err and "Traceback" not in err
    assert main(["search", str(adi_dir), "q", "--mode", "dense"]) == 2
    assert "built without one" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["index", str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "--no-dense"]) == 2
    assert "no documents found" in capsys.readouterr().err
    assert main(["index", str(tmp_path / "nothing.jsonl"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["index", str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "--no-dense", "--no-bm25"]) == 2


def _sse(handler, pieces):
    handler.send_response(200)
    handler.send_header("Content-Type", "text/event-stream")
    handler.end_headers()
    for piece in pieces:
        chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}], "model": "fake"}
        handler.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        handler.wfile.flush()
    handler.wfile.write(b"data: [DONE]\n\n")


def test_ask_streams_the_answer_then_sources_and_timings(adi_dir, capsys):
    pieces = ["Indexing", " is", " described", " in", " [1]", " and [7]."]

    def respond(handler, body, n):
        if body.get("stream"):
            _sse(handler, pieces)
        else:
            send_json(handler, 200, completion("".join(pieces)))

    with ScriptedServer(respond) as srv:
        args = ["ask", str(adi_dir), "automatic indexing of documents", "--llm-base-url", srv.url,
                "--llm-model", "fake", "--rerank", "bm25", "--top-n", "3"]
        assert main(args) == 0
        out = capsys.readouterr().out
        assert out.startswith("Indexing is described in [1] and [7].")
        assert "\nSources:\n*[1] " in out and "\n [2] " in out
        assert "do not exist: [7]" in out and "Timings: retrieve" in out and "generate" in out
        assert srv.requests[0]["stream"] is True and srv.requests[0]["model"] == "fake"
        assert main([*args, "--format", "json"]) == 0
        data = json.loads(capsys.readouterr().out)
    assert data["answer"] == "".join(pieces) and data["invalid_citations"] == [7]
    assert data["citations"][0]["doc_id"] == data["passages"][0]["doc_id"]
    assert set(data["timings"]) == {"retrieve", "rerank", "generate", "total"}


def test_ask_with_the_endpoint_down_fails_clearly(adi_dir, capsys):
    url = f"http://127.0.0.1:{free_port()}/v1"
    assert main(["ask", str(adi_dir), "indexing", "--llm-base-url", url, "--llm-model", "m", "--rerank", "none",
                 "--llm-timeout", "2"]) == 2
    err = capsys.readouterr().err
    assert "rankwise ask: error:" in err and "Check that the server is running" in err
    assert main(["ask", str(adi_dir), "x", "--gguf", "m.gguf", "--llm-base-url", url]) == 2
    assert "not both" in capsys.readouterr().err
