"""Fuzzing batch inputs (hypothesis, pinned seed): broken JSONL lines, Parquet rows and TREC run lines.

Invariant, for every input: ``rerank_dataset`` returns (never raises) and every input unit is accounted for exactly
once: a JSONL line is either one reject (the whole line) or a group whose every candidate is either a row of the
output or a reject naming its position; a Parquet row or a run line is either an output row or a reject naming its
row or line. Output rows are unique per (query_id, doc_id), ranks run 1..n per query, scores are finite, and the
report's counts equal the files'.

CI runs a small pinned sample (``derandomize=True``); ``RANKWISE_FUZZ_EXAMPLES=500`` runs a longer one.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rankwise
from rankwise.batch import rerank_dataset
from tests.support.fuzzing import fuzz_settings
from tests.test_batch import make_beir, rejects, shard_table, table_rows

FUZZ = fuzz_settings(30)
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)  # lone surrogates included
WORDS = st.sampled_from(["lstm", "memory", "gates", "the", "", " ", "\u2028", "Straße", "q1", "d1"])
SOME_TEXT = st.one_of(ANY_TEXT, st.lists(WORDS, max_size=4).map(" ".join))
IDS = st.one_of(st.sampled_from(["q1", "q2", "d1", "d2", "0", "1", "", " ", "a b"]), ANY_TEXT, st.integers(),
                st.none(), st.booleans(), st.just(["x"]))
JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), SOME_TEXT,
                        st.lists(st.integers(), max_size=2), st.dictionaries(SOME_TEXT, st.integers(), max_size=2))


@pytest.fixture(scope="module")
def bm25() -> rankwise.Reranker:
    return rankwise.load("bm25")


@st.composite
def candidates(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["str", "dict", "dict", "junk"]))
    if kind == "str":
        return draw(SOME_TEXT)
    if kind == "junk":
        return draw(JSON_VALUES)
    cand = {}
    for key, values in (("doc_id", IDS), ("id", IDS), ("text", JSON_VALUES), ("title", JSON_VALUES),
                        ("metadata", JSON_VALUES), ("extra", JSON_VALUES)):
        if draw(st.booleans()):
            cand[key] = draw(st.one_of(values, SOME_TEXT) if key in ("text", "title") else values)
    return cand


@st.composite
def jsonl_lines(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["group", "group", "group", "broken", "bytes", "json"]))
    if kind == "broken":
        return draw(st.sampled_from([b"{", b'{"query_id": "q1"', b"not json", b"[1, 2", b'{"a": 1}}']))
    if kind == "bytes":
        return draw(st.binary(min_size=1, max_size=30)).replace(b"\n", b" ")
    if kind == "json":
        return json.dumps(draw(JSON_VALUES)).encode()
    group: dict[str, Any] = {}
    if draw(st.integers(0, 5)):
        group["query_id"] = draw(IDS)
    if draw(st.integers(0, 5)):
        group["query"] = draw(st.one_of(SOME_TEXT, JSON_VALUES))
    if draw(st.integers(0, 7)):
        group["candidates"] = draw(st.one_of(st.lists(candidates(), max_size=5), JSON_VALUES))
    text = json.dumps(group, ensure_ascii=draw(st.booleans()))
    return text.encode("utf-8", "surrogatepass")  # a raw lone surrogate: the line is not UTF-8


def check_output(out: Path, report: Any) -> list[tuple]:
    rows = table_rows(shard_table(out))
    assert len({(q, d) for q, d, _, _ in rows}) == len(rows)
    ranks: dict[str, list[int]] = defaultdict(list)
    for q, _, s, r in rows:
        ranks[q].append(r)
        assert math.isfinite(s)
    assert all(r == list(range(1, len(r) + 1)) for r in ranks.values())
    assert (report.rows, report.rejects) == (len(rows), len(rejects(out)))
    assert all(set(r) >= {"where", "query_id", "reason"} and r["reason"] for r in rejects(out))
    return rows


@FUZZ
@given(lines=st.lists(jsonl_lines(), min_size=1, max_size=8), shard_pairs=st.integers(1, 6),
       crlf=st.booleans(), bom=st.booleans())
def test_jsonl_lines_are_each_scored_or_rejected(bm25, lines, shard_pairs, crlf, bom):
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "g.jsonl", Path(tmp) / "out"
        src.write_bytes((b"\xef\xbb\xbf" if bom else b"") + (b"\r\n" if crlf else b"\n").join(lines) + b"\n")
        report = rerank_dataset(src, out, bm25, shard_pairs=shard_pairs)
        rows = check_output(out, report)
        by_query = Counter(q for q, _, _, _ in rows)
        by_line: dict[str, list[dict]] = defaultdict(list)
        for r in rejects(out):
            by_line[r["where"]].append(r)
        scored_queries = set()
        for number, line in enumerate(lines, start=1):
            got = by_line.pop(f"g.jsonl:{number}", [])
            if not line.strip():
                assert not got
                continue
            whole = [r for r in got if "candidate" not in r]
            if whole:
                assert len(got) == 1  # one reject for the line, nothing else
                continue
            group = json.loads(line)  # a line rejected candidate by candidate was a readable group
            positions = [r["candidate"] for r in got]
            assert len(set(positions)) == len(positions)
            scored = len(group["candidates"]) - len(positions)
            assert by_query[group["query_id"]] == scored and group["query_id"] not in scored_queries
            if scored:
                scored_queries.add(group["query_id"])
        assert not by_line  # no reject points anywhere else
        assert set(by_query) == scored_queries


@st.composite
def parquet_rows(draw: st.DrawFn) -> dict[str, Any]:
    text = st.one_of(st.none(), st.text(max_size=12), st.lists(WORDS, max_size=4).map(" ".join))
    return {
        "query_id": draw(st.one_of(st.none(), st.sampled_from(["q1", "q2", "q3", "", " "]))),
        "query": draw(st.one_of(st.sampled_from(["lstm memory", "gates"]), text)),
        "doc_id": draw(st.one_of(st.none(), st.sampled_from(["d1", "d2", "d3", ""]))),
        "text": draw(text),
        "title": draw(text),
    }


@FUZZ
@given(rows=st.lists(parquet_rows(), min_size=1, max_size=12), shard_pairs=st.integers(1, 5),
       row_group=st.integers(1, 4))
def test_parquet_rows_are_each_scored_or_rejected(bm25, rows, shard_pairs, row_group):
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "p.parquet", Path(tmp) / "out"
        schema = pa.schema([(c, pa.string()) for c in ("query_id", "query", "doc_id", "text", "title")])
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), src, row_group_size=row_group)
        report = rerank_dataset(src, out, bm25, shard_pairs=shard_pairs)
        output = check_output(out, report)
        rejected = [int(r["where"].split(":")[1]) for r in rejects(out)]
        assert len(set(rejected)) == len(rejected) and len(output) + len(rejected) == len(rows)
        kept = Counter((rows[i]["query_id"], rows[i]["doc_id"]) for i in range(len(rows)) if i not in rejected)
        assert kept == Counter((q, d) for q, d, _, _ in output)


RUN_TOKENS = st.sampled_from(["q1", "q2", "q9", "Q0", "d0", "d1", "d2", "d7", "nodoc", "1", "2", "0.5", "-3", "x",
                              "tag", "\u00e9"])


@FUZZ
@given(lines=st.lists(st.lists(RUN_TOKENS, min_size=0, max_size=7).map(" ".join), min_size=1, max_size=10),
       shard_pairs=st.integers(1, 4))
def test_run_lines_are_each_scored_or_rejected(bm25, lines, shard_pairs):
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_beir(Path(tmp) / "beir")
        (folder / "bm25.run").write_text("\n".join(lines) + "\n", encoding="utf-8")
        report = rerank_dataset(folder, Path(tmp) / "out", bm25, shard_pairs=shard_pairs)
        output = check_output(Path(tmp) / "out", report)
        rejected = [r["where"] for r in rejects(Path(tmp) / "out") if r["where"].startswith("bm25.run:")]
        assert len(set(rejected)) == len(rejected)
        assert len(output) + len(rejected) == sum(1 for line in lines if line.strip())
        for q, d, _, _ in output:
            assert any(line.split()[:3] == [q, "Q0", d] for line in lines if line.strip())
