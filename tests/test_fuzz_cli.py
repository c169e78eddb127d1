"""Fuzzing ``rankwise rerank`` with random files (hypothesis, pinned seed).

Files: JSONL, a JSON list, plain text (LF or CRLF, optional BOM), broken JSON lines, empty or blank files, binary
junk, huge lines, any Unicode (lone surrogates through JSON escapes, or raw in a file that is then not UTF-8).
Invariants, for ``bm25`` and ``default``: the command exits 0 and its ``--format jsonl`` output holds every input item
exactly once, unchanged (text, id, title, metadata), ranks 1..n, finite scores; or it exits 2 with exactly one line on
standard error. Never a traceback, never status 1 (a bug). A well-formed file of valid documents must exit 0.

CI runs a small pinned sample (``derandomize=True``); ``RANKWISE_FUZZ_EXAMPLES=2000`` runs a longer one. The CLI runs
in process (``main([...])``), so models load once; one subprocess test checks the real process's stderr.
"""

from __future__ import annotations

import functools
import json
import math
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

import rankwise
from rankwise.cli import main
from tests.support.fuzzing import fuzz_settings

FUZZ = fuzz_settings(40)
DOCUMENT_KEYS = {"text", "id", "title", "metadata"}

# any code point, lone surrogates included (JSON carries them as \ud800 escapes)
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=40)
WORDS = st.sampled_from(["lstm", "memory", "gates", "the", "of", "7", "👍", "Straße", "", " ", "\u2028", "\x0c"])
SOME_TEXT = st.one_of(ANY_TEXT, st.lists(WORDS, max_size=8).map(" ".join))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | SOME_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SOME_TEXT, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def dict_documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if draw(st.booleans()):
        doc["text"] = draw(SOME_TEXT)
    if draw(st.booleans()):
        doc["id"] = draw(st.one_of(st.integers(), SOME_TEXT, JSON_VALUES))
    if draw(st.booleans()):
        doc["title"] = draw(st.one_of(st.none(), SOME_TEXT))
    if draw(st.booleans()):
        doc["metadata"] = draw(st.one_of(st.none(), st.dictionaries(SOME_TEXT, JSON_VALUES, max_size=3)))
    extras = draw(st.dictionaries(SOME_TEXT.filter(lambda k: k not in DOCUMENT_KEYS), JSON_VALUES, max_size=2))
    return {**doc, **extras}


VALID_DOCS = st.one_of(SOME_TEXT, dict_documents())
JUNK_DOCS = st.one_of(st.integers(), st.none(), st.lists(st.integers(), max_size=2), st.just({"text": 5}),
                      st.just({"title": 3}), st.just({"metadata": [1]}))


@dataclass
class Case:
    """One random input file and what must come back."""

    data: bytes
    fmt: str  # --docs-format
    items: list[Any] | None  # the documents the file holds; None when the file is not well-formed
    valid: bool  # well-formed and every item a valid document: the command must succeed


def _line_text(text: str) -> str:
    """A plain-text line: no newline inside, no trailing CR (that would be CRLF), not blank."""
    text = text.replace("\n", " ").rstrip("\r")
    return text if text.strip() else f"{text}x"


@st.composite
def cases(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(["jsonl", "json", "lines", "broken", "empty", "junk", "huge"]))
    docs = draw(st.lists(st.one_of(VALID_DOCS, VALID_DOCS, JUNK_DOCS) if kind != "huge" else VALID_DOCS,
                         min_size=1, max_size=8))
    valid = all(_is_valid(d) for d in docs)
    bom = "\ufeff" if draw(st.booleans()) else ""
    ascii_only = draw(st.booleans())
    if kind == "huge":
        docs.append("lstm " + "x" * draw(st.integers(50_000, 200_000)))
        kind = draw(st.sampled_from(["jsonl", "json", "lines"]))
    if kind in ("jsonl", "broken"):
        lines = [json.dumps(d, ensure_ascii=ascii_only) for d in docs]
        if kind == "broken":
            at = draw(st.integers(0, len(lines)))
            lines.insert(at, draw(st.sampled_from(['{"text": ', "not json", "[1, 2", '{"a": 1}}'])))
        text = bom + "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n"]))
        ok = kind == "jsonl"
        return _case(text, "jsonl", docs if ok else None, ok and valid)
    if kind == "json":
        text = bom + json.dumps(docs, ensure_ascii=ascii_only, indent=draw(st.sampled_from([None, 2])))
        return _case(text, "json", docs, valid)
    if kind == "lines":
        lines = [_line_text(d) for d in draw(st.lists(ANY_TEXT, min_size=1, max_size=8))]
        lines[0] = lines[0].lstrip("\ufeff") or "x"  # a leading U+FEFF *is* a byte-order mark; it is dropped
        text = bom + draw(st.sampled_from(["\n", "\r\n"])).join(lines)
        return _case(text, "lines", lines, True)
    if kind == "empty":
        return _case(bom + draw(st.sampled_from(["", "\n", "  \n\t\n", "\r\n"])), "auto", [], False)
    return Case(draw(st.binary(max_size=200)), draw(st.sampled_from(["auto", "lines"])), None, False)


def _case(text: str, fmt: str, items: list[Any] | None, valid: bool) -> Case:
    """The file's bytes; a raw lone surrogate (possible with ensure_ascii=False) makes it invalid UTF-8."""
    if any("\ud800" <= c <= "\udfff" for c in text):
        return Case(text.encode("utf-8", "surrogatepass"), fmt, None, False)
    return Case(text.encode("utf-8"), fmt, items, valid)


def _is_valid(doc: Any) -> bool:
    if isinstance(doc, str):
        return True
    if not isinstance(doc, dict):
        return False
    return (isinstance(doc.get("text", ""), str) and isinstance(doc.get("title"), (str, type(None)))
            and isinstance(doc.get("metadata"), (dict, type(None))))


def expected_row(doc: Any) -> dict[str, Any]:
    """How ``doc`` comes back in a jsonl row: its text, id, title, and metadata (unknown keys kept there)."""
    if isinstance(doc, str):
        return {"text": doc}
    out: dict[str, Any] = {"text": doc.get("text", "")}
    for key in ("id", "title"):
        if doc.get(key) is not None:
            out[key] = doc[key]
    metadata = {**(doc.get("metadata") or {}), **{k: v for k, v in doc.items() if k not in DOCUMENT_KEYS}}
    if metadata:
        out["metadata"] = metadata
    return out


@pytest.fixture(scope="module", autouse=True)
def models_load_once():
    """Each example runs the real CLI on the real model; loading it once per test module keeps the fuzz fast."""
    real = rankwise.load
    cached = functools.lru_cache(maxsize=8)(lambda name, backend=None: real(name, backend=backend))

    def load(name: str, backend: str | None = None, **options: Any) -> Any:
        return real(name, backend=backend, **options) if options else cached(name, backend)

    rankwise.load = load
    yield
    rankwise.load = real


@pytest.mark.parametrize("model", ["bm25", "default"])
@FUZZ
@given(case=cases(), query=st.one_of(st.just("lstm memory gates"), ANY_TEXT))
def test_rerank_any_file(model, case, query, tmp_path_factory, capsys):
    path = tmp_path_factory.mktemp("fuzz") / "docs"
    path.write_bytes(case.data)
    status = main(["rerank", f"--query={query}", "-d", str(path), "--docs-format", case.fmt, "-m", model,
                   "-f", "jsonl", "--no-progress"])
    out, err = capsys.readouterr()
    # what ran, for --hypothesis-show-statistics
    event(f"--docs-format {case.fmt}, {'valid' if case.valid else 'not valid'}: exit {status}")
    assert "Traceback" not in err and status in (0, 2), (status, err)
    if status == 2:
        assert out == "" and len(err.splitlines()) == 1 and err.startswith("rankwise rerank: error: "), err
        assert not (case.valid and query.strip()), f"a valid file and query were refused: {err}"
        return
    assert err == ""
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    assert sorted(r["index"] for r in rows) == list(range(len(rows)))  # every item exactly once
    assert all(isinstance(r["score"], float) and math.isfinite(r["score"]) for r in rows)
    assert all(r["model"] == rows[0]["model"] for r in rows)
    if case.items is not None:
        assert len(rows) == len(case.items)
        for row in rows:
            got = {k: v for k, v in row.items() if k not in ("rank", "index", "score", "model")}
            assert got == expected_row(case.items[row["index"]])


def test_a_user_mistake_in_a_real_process_is_one_line_and_status_2(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b'{"text": "fine"}\n{"text": \n\xff\xfe junk')
    for argv in (["-d", str(path)], ["-d", str(path), "--docs-format", "json"], ["-d", str(tmp_path / "none")]):
        out = subprocess.run([sys.executable, "-m", "rankwise.cli", "rerank", "-q", "q", "-m", "bm25", *argv],
                             capture_output=True, text=True, check=False)
        assert out.returncode == 2 and out.stdout == "" and "Traceback" not in out.stderr
        assert len(out.stderr.splitlines()) == 1 and out.stderr.startswith("rankwise rerank: error: ")
