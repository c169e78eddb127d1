"""A user mistake in any subcommand is one line on standard error, in CLI words, exit status 2; a bug is one line
and status 1; ``--debug`` adds the traceback. Inputs that are odd but valid (BOM, CRLF, U+2028, lone surrogates)
rank without losing or splitting a document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from rankwise import cli
from rankwise.cli import main
from tests.conftest import SEED_DOCS, SEED_QUERY


def run_cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rankwise.cli", *args],
        input=stdin, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False,
    )


def one_error_line(err: str) -> str:
    """The single line a failed command printed (asserts there is exactly one and no traceback)."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def check_user_error(capsys: pytest.CaptureFixture[str], argv: list[str], *expected: str) -> str:
    """``rankwise ARGV`` in process fails with status 2 and one line containing every ``expected`` text."""
    assert main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    for text in expected:
        assert text in line, line
    return line


@pytest.fixture
def docs_file(tmp_path: Path) -> Path:
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(SEED_DOCS) + "\n", encoding="utf-8")
    return path


# -- item 2: user mistakes -----------------------------------------------------------------------------------------
def test_unknown_backend_option_names_the_valid_ones(docs_file, capsys):
    line = check_user_error(capsys, ["rerank", "-q", "q", "-d", str(docs_file), "-m", "bm25", "-o", "batch_size=3"],
                            "batch_size")
    assert "k1" in line and "rankwise.load(" not in line  # the valid options are listed, in CLI words


def test_select_with_a_missing_file_names_the_path(tmp_path, capsys):
    missing = tmp_path / "missing.jsonl"
    check_user_error(capsys, ["select", str(missing), "--judge", "token-f1"], str(missing), "not found")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["index", "{tmp}/nowhere", "--out", "{tmp}/i"], "nowhere"),
        (["search", "{tmp}/no.index", "query"], "no.index"),
        (["ask", "{tmp}/no.index", "question"], "no.index"),
        (["eval", "--data", "{tmp}/no-data", "-r", "bm25"], "no-data"),
        (["rerank", "-q", "q", "-d", "{tmp}/no-docs.jsonl"], "no-docs.jsonl"),
        (["rerank", "-q", "q", "-d", "{tmp}"], "folder"),
    ],
)
def test_a_missing_path_is_one_line_naming_it(tmp_path, capsys, argv, expected):
    check_user_error(capsys, [a.format(tmp=tmp_path) for a in argv], expected)


def test_errors_speak_cli_flags_not_python(docs_file, capsys):
    line = check_user_error(capsys, ["rerank", "-q", "q", "-d", str(docs_file), "-m", "no-such-model"],
                            "unknown model 'no-such-model'", "--backend")
    assert "rankwise.load(" not in line and "backend=" not in line
    line = check_user_error(capsys, ["eval", "--data", "nowhere", "-r", "no-such-model"], "--reranker NAME:BACKEND",
                            "e.g. --reranker no-such-model:cross-encoder")
    assert "rankwise.load(" not in line and "backend=" not in line
    check_user_error(capsys, ["search", "nowhere", "q"], "rankwise index DOCS --out nowhere")
    check_user_error(capsys, ["rerank", "-q", "q", "-d", str(docs_file), "-m", "bm25", "-k", "0"],
                     "--top-k", "got '0'")
    check_user_error(capsys, ["search", "x", "q", "--candidates", "-3"], "--candidates")
    check_user_error(capsys, ["rerank", "-q", "q"], "--docs", "required")  # argparse's own errors: one line too
    check_user_error(capsys, ["models", "--format", "yaml"], "--format", "yaml")
    check_user_error(capsys, ["rerank", "-q", "q", "-d", str(docs_file), "-o", "novalue"], "KEY=VALUE")


def test_a_hub_name_offline_is_the_same_one_line_on_torch_and_onnx():
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    lines = {}
    for backend in ("cross-encoder", "onnx"):
        out = run_cli("rerank", "-q", "q", "-d", "-", "-m", "cross-encoder/no-such-model", "-b", backend,
                      env=env, stdin="a\nb\n")
        assert out.returncode == 2, out.stderr
        lines[backend] = one_error_line(out.stderr)
    assert lines["cross-encoder"] == lines["onnx"]
    for line in lines.values():
        assert "cannot load 'cross-encoder/no-such-model' as a cross-encoder:" in line
        assert "neither a local model folder nor a reachable hub model (HF_HUB_OFFLINE=1" in line


def test_debug_shows_the_traceback_before_the_line(docs_file):
    for argv in (["--debug", "rerank"], ["rerank", "--debug"]):
        out = run_cli(*argv, "-q", "q", "-d", str(docs_file), "-m", "bm25", "-k", "x")
        assert out.returncode == 2 and "Traceback" not in out.stderr  # argparse refuses it before any code runs
        out = run_cli(*argv, "-q", " ", "-d", str(docs_file), "-m", "bm25")
        assert out.returncode == 2 and "Traceback (most recent call last)" in out.stderr
        assert out.stderr.strip().splitlines()[-1].startswith("rankwise rerank: error: ")


def test_a_bug_is_one_line_with_status_1_and_the_debug_hint(monkeypatch, capsys):
    broken = types.ModuleType("rankwise_test_broken_command")
    broken.add_arguments = lambda parser: None

    def run(args):
        raise ZeroDivisionError("division by zero")

    broken.run = run
    monkeypatch.setitem(sys.modules, broken.__name__, broken)
    monkeypatch.setitem(cli.COMMANDS, "broken", broken.__name__)
    assert main(["broken"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert line == ("rankwise broken: internal error: ZeroDivisionError: division by zero "
                    "(run with --debug for the traceback)")
    assert main(["--debug", "broken"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.strip().splitlines()[-1] == line


# -- odd but valid input: nothing lost, split or changed ------------------------------------------------------------
def rerank_jsonl(capsys, path: Path, *extra: str) -> list[dict]:
    assert main(["rerank", "-q", SEED_QUERY, "-d", str(path), "-m", "bm25", "-f", "jsonl", *extra]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_bom_crlf_and_line_separators_inside_a_document(tmp_path, capsys):
    path = tmp_path / "docs.txt"
    docs = ["LSTM gates\u2028keep memory", "form\x0cfeed and \x85 next line", "plain"]
    path.write_bytes(("\ufeff" + "\r\n".join(docs) + "\r\n").encode("utf-8"))
    rows = rerank_jsonl(capsys, path)
    assert sorted(r["text"] for r in rows) == sorted(docs)  # three documents, exactly as written
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text("\n".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) for i, t in enumerate(docs)))
    assert {r["id"]: r["text"] for r in rerank_jsonl(capsys, jsonl)} == dict(enumerate(docs))


def test_text_that_is_not_utf8_is_one_line_naming_the_file(tmp_path, capsys):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    check_user_error(capsys, ["rerank", "-q", "q", "-d", str(path), "-m", "bm25"], "latin1.txt", "not UTF-8", "0xe9")


def test_lone_surrogates_come_back_exactly(tmp_path, capsys):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"id": "s", "text": "bad \\ud800 text"}\n{"id": "ok", "text": "LSTM memory"}\n')
    rows = rerank_jsonl(capsys, path)
    assert {r["id"]: r["text"] for r in rows} == {"s": "bad \ud800 text", "ok": "LSTM memory"}
    assert main(["rerank", "-q", "memory", "-d", str(path), "-m", "bm25"]) == 0  # the table shows an escape
    assert "\\ud800" in capsys.readouterr().out


def test_search_reports_loading_apart_from_the_search(tmp_path, capsys):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(SEED_DOCS)))
    assert main(["index", str(corpus), "--out", str(tmp_path / "i"), "--no-dense"]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "i"), "lstm memory", "-f", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["timings"]) == {"retrieve", "total"} and data["load_seconds"] > 0  # loading is not a stage
    assert main(["search", str(tmp_path / "i"), "lstm memory"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "search " in first and " ms, loading the index and models " in first
