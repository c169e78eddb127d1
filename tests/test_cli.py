import json
import subprocess
import sys

from rankwise.cli import main

from .conftest import SEED_DOCS, SEED_QUERY


def run_cli(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "rankwise.cli", *args], input=stdin, capture_output=True, text=True, check=False
    )


def test_rerank_end_to_end_with_the_default_model(tmp_path):
    docs = tmp_path / "docs.jsonl"
    docs.write_text("\n".join(json.dumps({"id": f"d{i}", "text": t, "metadata": {"n": i}}) for i, t in enumerate(SEED_DOCS)))
    out = run_cli("rerank", "--query", SEED_QUERY, "--docs", str(docs), "--format", "json", "--top-k", "2")
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["results"][0]["id"] == "d0" and len(payload["results"]) == 2
    assert payload["results"][0]["metadata"] == {"n": 0}
    assert "MiniLM" in payload["model"]


def test_rerank_reads_stdin_lines_and_a_model_folder(tiny_cross_encoder):
    out = run_cli("rerank", "-q", "query", "-d", "-", "-m", str(tiny_cross_encoder), "-f", "jsonl", "-o", "device=\"cpu\"",
                  stdin="one\ntwo\nthree\n")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert sorted(r["text"] for r in rows) == ["one", "three", "two"]
    assert [r["rank"] for r in rows] == [1, 2, 3]


def test_table_output_names_the_model(tmp_path, capsys):
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(SEED_DOCS))
    assert main(["rerank", "-q", SEED_QUERY, "-d", str(docs), "-m", "bm25"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ranked by: bm25") and "LSTM networks" in out.splitlines()[3]


def test_errors_are_one_line_with_exit_code_2(tmp_path):
    docs = tmp_path / "d.txt"
    docs.write_text("x\n")
    out = run_cli("rerank", "-q", "q", "-d", str(docs), "-m", "not-a-model")
    assert out.returncode == 2 and "unknown model 'not-a-model'" in out.stderr and "Traceback" not in out.stderr
    out = run_cli("rerank", "-q", " ", "-d", str(docs), "-m", "bm25")
    assert out.returncode == 2 and "query is empty" in out.stderr
    out = run_cli("rerank", "-q", "q", "-d", str(docs), "-m", "bm25", "--top-k", "0")
    assert out.returncode == 2 and "--top-k/-k: must be an integer >= 1, got '0'" in out.stderr


def test_models_lists_presets_with_availability():
    out = run_cli("models", "--format", "json")
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["default"]["offline"] and rows["default"]["installed"]
    assert rows["cross-encoder/ms-marco-MiniLM-L-6-v2"]["offline"] is False
