"""Batch re-ranking (rankwise.batch, ``rankwise batch``): the three input formats, rejects, outputs, resume rules,
progress and the CLI. The SIGKILL tests are in test_batch_resume.py, the fuzz tests in test_batch_fuzz.py.

Scores are checked against the re-ranker itself (``reranker.score(query, docs)`` of each group), never against
hard-coded numbers.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import rankwise
from rankwise.batch import BatchProgress, SettingsMismatchError, open_input, plan_shards, rerank_dataset
from rankwise.batch._files import lock_file
from rankwise.cli import main
from rankwise.errors import InvalidInputError
from rankwise.rerankers.base import Reranker
from rankwise.types import Document

WORDS = ["lstm", "memory", "gates", "cell", "state", "vanishing", "gradient", "attention", "token", "image", "filter",
         "edge", "network"]


# -- builders shared with test_batch_resume.py and test_batch_fuzz.py ----------------------------------------------
def make_groups(n: int, size: int = 4, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` JSONL groups of ``size`` BM25-scorable candidates, deterministic."""
    groups = []
    for g in range(n):
        query = " ".join(WORDS[(g + k) % len(WORDS)] for k in range(2))
        cands = [
            {"doc_id": f"d{g}-{c}", "title": WORDS[(g * 3 + c) % len(WORDS)],
             "text": " ".join(WORDS[(g * 7 + c * 5 + k + seed) % len(WORDS)] for k in range(6))}
            for c in range(size)
        ]
        groups.append({"query_id": f"q{g}", "query": query, "candidates": cands})
    return groups


def write_jsonl(path: Path, records: Sequence[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def write_parquet(path: Path, groups: Sequence[dict[str, Any]], row_group_size: int = 5) -> Path:
    rows = [
        {"query_id": g["query_id"], "query": g["query"], "doc_id": c["doc_id"], "title": c.get("title"),
         "text": c.get("text")}
        for g in groups for c in g["candidates"]
    ]
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
    return path


def shard_table(out: Path) -> pa.Table:
    return ds.dataset(out / "shards").to_table()


def rejects(out: Path) -> list[dict[str, Any]]:
    lines = []
    for path in sorted((out / "rejects").glob("*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines


def expected_rows(groups: Sequence[dict[str, Any]], reranker: Reranker, top_k: int | None = None) -> list[tuple]:
    """The rows a job must write: each group scored alone, ranked by the library's rule."""
    rows = []
    for g in groups:
        docs = [Document(c["text"], id=c["doc_id"], title=c.get("title")) for c in g["candidates"]]
        results = reranker.rank(g["query"], docs, top_k=top_k)
        rows += [(g["query_id"], r.document.id, r.score, r.rank) for r in results]
    return rows


def table_rows(table: pa.Table) -> list[tuple]:
    d = table.to_pydict()
    return list(zip(d["query_id"], d["doc_id"], d["score"], d["rank"]))


@pytest.fixture(scope="module")
def bm25() -> Reranker:
    return rankwise.load("bm25")


# -- JSONL ----------------------------------------------------------------------------------------------------------
def test_jsonl_groups_are_scored_alone_ranked_and_readable_as_one_dataset(tmp_path, bm25):
    groups = make_groups(9)
    src = write_jsonl(tmp_path / "g.jsonl", groups)
    report = rerank_dataset(src, tmp_path / "out", "bm25", shard_pairs=10)
    table = shard_table(tmp_path / "out")
    assert table.schema.names == ["query_id", "doc_id", "score", "rank"]
    assert [str(t) for t in table.schema.types] == ["string", "string", "double", "int32"]
    assert table_rows(table) == expected_rows(groups, bm25)  # input group order, then rank 1..n
    assert (report.groups, report.pairs, report.rows, report.rejects, report.shards) == (9, 36, 36, 0, 3)
    names = sorted(p.name for p in (tmp_path / "out" / "shards").iterdir())
    assert names == [f"part-0000{i}.parquet" for i in range(3)]


def test_shard_size_never_changes_the_output(tmp_path):
    src = write_jsonl(tmp_path / "g.jsonl", make_groups(7))
    rerank_dataset(src, tmp_path / "a", "bm25", shard_pairs=1)
    rerank_dataset(src, tmp_path / "b", "bm25", shard_pairs=1000)
    assert shard_table(tmp_path / "a").equals(shard_table(tmp_path / "b"))
    assert len(list((tmp_path / "a" / "shards").iterdir())) == 7  # one group per shard: groups never split


def test_top_k_keeps_each_querys_best(tmp_path, bm25):
    groups = make_groups(5, size=6)
    src = write_jsonl(tmp_path / "g.jsonl", groups)
    report = rerank_dataset(src, tmp_path / "out", "bm25", top_k=2)
    assert table_rows(shard_table(tmp_path / "out")) == expected_rows(groups, bm25, top_k=2)
    assert (report.pairs, report.rows) == (30, 10)


def test_plan_counts_groups_and_pairs_and_cuts_at_group_boundaries(tmp_path):
    src = write_jsonl(tmp_path / "g.jsonl", make_groups(5, size=3))
    specs = list(plan_shards(open_input(src), shard_pairs=4))
    assert [(s.index, s.groups, s.pairs) for s in specs] == [(0, 2, 6), (1, 2, 6), (2, 1, 3)]
    assert specs[0].start == 0 and specs[1].start == specs[0].stop + 1 and specs[1].line == 3


JSONL_BAD = [
    ("{broken", "not a JSON line"),
    ('["a", "list"]', "expected a JSON object"),
    ({"query": "x", "candidates": ["a"]}, "query_id is missing"),
    ({"query_id": 7, "query": "x", "candidates": ["a"]}, 'query_id must be a string, got int 7 (write "7")'),
    ({"query_id": "qa", "candidates": ["a"]}, "missing query text"),
    ({"query_id": "qb", "query": "  ", "candidates": ["a"]}, "query text is empty"),
    ({"query_id": "qc", "query": "x", "candidates": []}, "no candidates"),
    ({"query_id": "qd", "query": "x"}, '"candidates" is missing'),
    ({"query_id": "qe", "query": "x", "candidates": "abc"}, '"candidates" is a str'),
]


@pytest.mark.parametrize(("record", "reason"), JSONL_BAD)
def test_a_bad_jsonl_line_is_one_reject_and_the_job_goes_on(tmp_path, record, reason):
    good = make_groups(2)
    src = write_jsonl(tmp_path / "g.jsonl", [good[0], record, good[1]])
    report = rerank_dataset(src, tmp_path / "out", "bm25")
    [reject] = rejects(tmp_path / "out")
    assert reject["where"] == "g.jsonl:2" and reason in reject["reason"]
    assert (report.groups, report.rejects) == (2, 1)
    assert set(shard_table(tmp_path / "out")["query_id"].to_pylist()) == {"q0", "q1"}


def test_a_line_that_is_not_utf8_is_a_reject(tmp_path):
    src = tmp_path / "g.jsonl"
    src.write_bytes(json.dumps(make_groups(1)[0]).encode() + b"\n{\"query_id\": \"\xff\"}\n")
    report = rerank_dataset(src, tmp_path / "out", "bm25")
    assert report.groups == 1 and "not UTF-8" in rejects(tmp_path / "out")[0]["reason"]


def test_bad_candidates_are_rejected_one_by_one_and_the_rest_is_scored(tmp_path, bm25):
    cands = ["plain lstm text", {"doc_id": "0", "text": "duplicate of the first id"}, {"doc_id": "e", "text": ""},
             {"doc_id": 5, "text": "int id"}, {"doc_id": "t", "title": "lstm title only"}, 42,
             {"doc_id": "m", "text": "x", "metadata": "not a dict"}, {"doc_id": "\ud800", "text": "surrogate id"}]
    src = write_jsonl(tmp_path / "g.jsonl", [{"query_id": "q", "query": "lstm", "candidates": cands}])
    report = rerank_dataset(src, tmp_path / "out", "bm25")
    assert {r["candidate"] for r in rejects(tmp_path / "out")} == {1, 2, 3, 5, 6, 7}
    assert any("duplicate doc_id '0'" in r["reason"] and "first at candidate 0" in r["reason"]
               for r in rejects(tmp_path / "out"))
    # a string's id is its position; a title alone is text to read
    scored = bm25.rank("lstm", [Document("plain lstm text", id="0"), Document("", id="t", title="lstm title only")])
    assert table_rows(shard_table(tmp_path / "out")) == [("q", r.document.id, r.score, r.rank) for r in scored]
    assert (report.groups, report.pairs, report.rejects) == (1, 2, 6)


def test_fields_pick_what_the_model_reads(tmp_path, bm25):
    group = {"query_id": "q", "query": "boots", "candidates": [
        {"doc_id": "a", "text": "irrelevant", "name": "leather boots"}, {"doc_id": "b", "text": "boots boots"}]}
    src = write_jsonl(tmp_path / "g.jsonl", [group])
    rerank_dataset(src, tmp_path / "out", "bm25", fields=["name"])
    table = shard_table(tmp_path / "out")
    # "b" has no name: nothing to read, rejected; "a" is scored on its name alone
    assert table["doc_id"].to_pylist() == ["a"]
    assert table["score"].to_pylist() == bm25.score("boots", ["leather boots"])
    assert "fields name are missing" in rejects(tmp_path / "out")[0]["reason"]


class _NaNOnQuery(Reranker):
    """Returns NaN for queries holding "nan": the re-ranker refuses the group, the job goes on."""

    name = "nan-on-query"

    def _score(self, query, documents, progress):  # noqa: ANN001, ANN202
        return [math.nan if "nan" in query else float(len(d.text)) for d in documents]


def test_a_group_the_reranker_refuses_becomes_rejects_with_its_message(tmp_path):
    groups = [{"query_id": "ok", "query": "fine", "candidates": ["a", "bb"]},
              {"query_id": "bad", "query": "nan please", "candidates": ["a", "bb"]}]
    src = write_jsonl(tmp_path / "g.jsonl", groups)
    report = rerank_dataset(src, tmp_path / "out", _NaNOnQuery())
    [reject] = rejects(tmp_path / "out")
    assert reject["query_id"] == "bad" and "re-ranker refused" in reject["reason"] and "nan" in reject["reason"]
    assert table_rows(shard_table(tmp_path / "out")) == [("ok", "1", 2.0, 1), ("ok", "0", 1.0, 2)]
    assert report.groups == 1


# -- BEIR -----------------------------------------------------------------------------------------------------------
def make_beir(folder: Path) -> Path:
    folder.mkdir()
    corpus = [{"_id": f"d{i}", "title": WORDS[i % len(WORDS)], "text": " ".join(WORDS[i % 5: i % 5 + 4]),
               "year": 2000 + i} for i in range(8)]
    write_jsonl(folder / "corpus.jsonl", [*corpus, "not json", corpus[0]])
    write_jsonl(folder / "queries.jsonl", [{"_id": "q1", "text": "lstm memory"}, {"_id": "q2", "text": "image"}])
    run = ["q1 Q0 d0 1 9.5 bm25", "q1 Q0 d1 2 9.0 bm25", "q1 Q0 d2 3 9.7 bm25", "q1 Q0 nodoc 4 1 bm25",
           "q2 Q0 d3 1 5 bm25", "q2 Q0 d4 2 x bm25", "q2 Q0 d5 too few", "q9 Q0 d1 1 1 bm25", "q1 Q0 d6 1 1 bm25"]
    (folder / "bm25.run").write_text("\n".join(run) + "\n")
    return folder


def test_beir_folder_with_a_run_scores_candidates_with_their_run_scores(tmp_path):
    folder = make_beir(tmp_path / "beir")
    report = rerank_dataset(folder, tmp_path / "out", "first-stage-score")  # the score IS the run's score
    assert table_rows(shard_table(tmp_path / "out")) == [
        ("q1", "d2", 9.7, 1), ("q1", "d0", 9.5, 2), ("q1", "d1", 9.0, 3), ("q2", "d3", 5.0, 1)]
    got = {(r["where"], r["reason"].split(" ")[0]) for r in rejects(tmp_path / "out")}
    assert got == {
        ("corpus.jsonl:9", "not"), ("corpus.jsonl:10", "duplicate"),   # index: bad line, repeated id
        ("bm25.run:4", "doc"), ("bm25.run:6", "rank"), ("bm25.run:7", "a"),  # unknown doc, bad numbers, columns
        ("bm25.run:8", "query"), ("bm25.run:9", "query"),                  # unknown query; q1 again (not contiguous)
    }
    stray = next(r for r in rejects(tmp_path / "out") if r["where"] == "bm25.run:9")
    assert "from line 1" in stray["reason"] and "sort" in stray["reason"] and stray["doc_id"] == "d6"
    assert (report.groups, report.pairs, report.rejects) == (2, 4, 7)
    assert (tmp_path / "out" / "index" / "corpus.sqlite").is_file()  # texts are looked up on disk, by offset


def test_beir_run_file_as_input_and_bm25_scores_the_corpus_text(tmp_path, bm25):
    folder = make_beir(tmp_path / "beir")
    (folder / "other.run").write_text("q2 Q0 d7 1 1 x\n")
    with pytest.raises(InvalidInputError, match="exactly one run file"):
        open_input(folder)
    rerank_dataset(folder / "other.run", tmp_path / "out", "bm25")
    corpus = {json.loads(line)["_id"]: json.loads(line) for line in (folder / "corpus.jsonl").read_text().splitlines()
              if line.startswith("{")}
    doc = corpus["d7"]
    assert table_rows(shard_table(tmp_path / "out")) == [
        ("q2", "d7", bm25.score("image", [Document(doc["text"], title=doc["title"])])[0], 1)]


# -- Parquet --------------------------------------------------------------------------------------------------------
def test_parquet_pairs_read_across_row_groups_match_jsonl(tmp_path):
    groups = make_groups(6, size=4)
    rerank_dataset(write_jsonl(tmp_path / "g.jsonl", groups), tmp_path / "j", "bm25", shard_pairs=7)
    rerank_dataset(write_parquet(tmp_path / "p.parquet", groups, row_group_size=3), tmp_path / "p", "bm25",
                   shard_pairs=7)
    assert shard_table(tmp_path / "p").equals(shard_table(tmp_path / "j"))


def test_parquet_query_rows_that_are_not_contiguous_are_rejected_with_the_fix(tmp_path):
    groups = make_groups(3, size=2)
    path = write_parquet(tmp_path / "p.parquet", [groups[0], groups[1], groups[0] | {"candidates": [
        {"doc_id": "late", "title": "lstm", "text": "late row"}]}, groups[2]])
    report = rerank_dataset(path, tmp_path / "out", "bm25", shard_pairs=2)
    [reject] = rejects(tmp_path / "out")
    assert reject["where"] == "p.parquet:4" and reject["doc_id"] == "late"
    assert "from row 0" in reject["reason"] and "sort the file by query_id" in reject["reason"]
    assert shard_table(tmp_path / "out")["query_id"].to_pylist() == ["q0"] * 2 + ["q1"] * 2 + ["q2"] * 2
    assert report.rejects == 1


def test_parquet_null_text_other_columns_and_changed_query(tmp_path, bm25):
    table = pa.table({"query_id": ["q", "q", "q", "q"], "query": ["boots", "boots", "boots", "shoes"],
                      "doc_id": ["a", "b", "c", "d"], "text": [None, "boots", None, "x"],
                      "color": ["red boots", None, None, "y"]})
    pq.write_table(table, tmp_path / "p.parquet")
    rerank_dataset(tmp_path / "p.parquet", tmp_path / "out", "bm25", fields=["text", "color"])
    assert shard_table(tmp_path / "out")["doc_id"].to_pylist() == sorted(
        ["a", "b"], key=lambda d: -bm25.score("boots", ["red boots", "boots"])[0 if d == "a" else 1])
    reasons = {r["where"]: r["reason"] for r in rejects(tmp_path / "out")}
    assert set(reasons) == {"p.parquet:2", "p.parquet:3"}
    assert "no text" in reasons["p.parquet:2"] and "query text differs" in reasons["p.parquet:3"]


@pytest.mark.parametrize(("columns", "message"), [
    ({"query_id": ["q"], "query": ["x"], "doc_id": ["d"]}, "no column text"),
    ({"query_id": [1], "query": ["x"], "doc_id": ["d"], "text": ["t"]}, "column 'query_id' is int64, not a string"),
])
def test_a_parquet_file_without_the_pair_columns_is_refused_before_any_work(tmp_path, columns, message):
    pq.write_table(pa.table(columns), tmp_path / "p.parquet")
    with pytest.raises(InvalidInputError, match=message):
        rerank_dataset(tmp_path / "p.parquet", tmp_path / "out", "bm25")
    assert not (tmp_path / "out").exists()


# -- outputs --------------------------------------------------------------------------------------------------------
def test_trec_and_jsonl_exports_hold_the_shard_rows(tmp_path):
    src = write_jsonl(tmp_path / "g.jsonl", make_groups(4))
    report = rerank_dataset(src, tmp_path / "out", "bm25", shard_pairs=5, top_k=3,
                            trec=tmp_path / "run.trec", jsonl=tmp_path / "res.jsonl")
    rows = table_rows(shard_table(tmp_path / "out"))
    trec = [line.split() for line in report.trec.read_text().splitlines()]
    assert [(q, d, float(s), int(r)) for q, _, d, r, s, _ in trec] == rows
    assert {t[1] for t in trec} == {"Q0"} and {t[5] for t in trec} == {"bm25"}
    from rankwise.evaluation import read_run

    assert list(read_run(report.trec)) == ["q0", "q1", "q2", "q3"]  # the library's own reader takes it
    lines = [json.loads(line) for line in report.jsonl.read_text().splitlines()]
    assert [(g["query_id"], r["doc_id"], r["score"], r["rank"]) for g in lines for r in g["results"]] == rows


def test_a_trec_export_refuses_ids_with_spaces_but_keeps_the_shards(tmp_path):
    src = write_jsonl(tmp_path / "g.jsonl", [{"query_id": "q 1", "query": "lstm", "candidates": ["lstm"]}])
    with pytest.raises(InvalidInputError, match="holds whitespace"):
        rerank_dataset(src, tmp_path / "out", "bm25", trec=tmp_path / "run.trec")
    assert not (tmp_path / "run.trec").exists() and shard_table(tmp_path / "out").num_rows == 1


# -- resume and the output folder -----------------------------------------------------------------------------------
def test_resume_redoes_only_missing_shards_and_gives_the_same_output(tmp_path):
    src = write_jsonl(tmp_path / "g.jsonl", [*make_groups(6), "{broken"])
    first = rerank_dataset(src, tmp_path / "out", "bm25", shard_pairs=4)
    before = {p.name: p.read_bytes() for p in (tmp_path / "out" / "shards").iterdir()}
    (tmp_path / "out" / "shards" / "part-00002.parquet").unlink()
    (tmp_path / "out" / "rejects" / "part-00006.jsonl").unlink()  # the broken line's shard
    (tmp_path / "out" / "shards" / "part-00006.parquet").unlink()
    seen: list[BatchProgress] = []
    again = rerank_dataset(src, tmp_path / "out", "bm25", shard_pairs=4, resume=True, progress=seen.append)
    assert {p.name: p.read_bytes() for p in (tmp_path / "out" / "shards").iterdir()} == before  # byte for byte
    assert (again.groups, again.pairs, again.rejects, again.shards_resumed) == (first.groups, first.pairs, 1, 5)
    assert seen[0].pairs_resumed == 20 and seen[-1].pairs_done == seen[-1].pairs_total == 24
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["status"] == "complete"


@pytest.mark.parametrize(("change", "setting"), [
    ({"top_k": 2}, "top_k"), ({"shard_pairs": 3}, "shard_pairs"), ({"model": "first-stage-score"}, "model"),
    ({"options": {"k1": 1.2}}, "options"), ({"fields": ["text"]}, "fields"),
])
def test_resume_with_another_setting_is_refused_naming_it(tmp_path, change, setting):
    src = write_jsonl(tmp_path / "g.jsonl", make_groups(2))
    rerank_dataset(src, tmp_path / "out", "bm25", shard_pairs=4)
    kwargs = {"model": "bm25", "shard_pairs": 4, **change}
    with pytest.raises(SettingsMismatchError, match=f"{setting} was") as info:
        rerank_dataset(src, tmp_path / "out", resume=True, **kwargs)
    assert info.value.setting == setting


def test_resume_after_the_input_changed_is_refused_naming_the_file(tmp_path):
    src = write_jsonl(tmp_path / "g.jsonl", make_groups(2))
    rerank_dataset(src, tmp_path / "out", "bm25")
    write_jsonl(src, make_groups(3))
    with pytest.raises(SettingsMismatchError, match="g.jsonl' changed since the job started"):
        rerank_dataset(src, tmp_path / "out", "bm25", resume=True)


def test_an_output_folder_with_a_job_or_other_files_is_refused(tmp_path):
    src = write_jsonl(tmp_path / "g.jsonl", make_groups(2))
    rerank_dataset(src, tmp_path / "out", "bm25")
    with pytest.raises(InvalidInputError, match="already holds a batch job.*resume=True"):
        rerank_dataset(src, tmp_path / "out", "bm25")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="not empty"):
        rerank_dataset(src, tmp_path / "other", "bm25")
    assert [p.name for p in (tmp_path / "other").iterdir()] == ["notes.txt"]  # untouched: not even a lock file


def test_a_folder_in_use_by_another_job_is_refused(tmp_path):
    src = write_jsonl(tmp_path / "g.jsonl", make_groups(2))
    (tmp_path / "out").mkdir()
    with lock_file(tmp_path / "out" / ".lock"), pytest.raises(InvalidInputError, match="in use by another"):
        rerank_dataset(src, tmp_path / "out", "bm25")


def test_a_wrong_model_leaves_no_job_behind(tmp_path):
    src = write_jsonl(tmp_path / "g.jsonl", make_groups(2))
    with pytest.raises(rankwise.RankwiseError):
        rerank_dataset(src, tmp_path / "out", "bm25", options={"no_such_option": 1})
    assert not (tmp_path / "out").exists()
    rerank_dataset(src, tmp_path / "out", "bm25")  # the fixed call starts cleanly


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"top_k": 0}, "top_k"), ({"shard_pairs": 0}, "shard_pairs"), ({"engine": "spark"}, "engine"),
    ({"actors": 0}, "actors"), ({"input_format": "csv"}, "input_format"),
])
def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, kwargs, message):
    src = write_jsonl(tmp_path / "g.jsonl", make_groups(1))
    with pytest.raises(InvalidInputError, match=message):
        rerank_dataset(src, tmp_path / "out", "bm25", **kwargs)
    assert not (tmp_path / "out").exists()


def test_progress_reports_groups_pairs_rate_and_eta(tmp_path):
    src = write_jsonl(tmp_path / "g.jsonl", make_groups(5))
    seen: list[BatchProgress] = []
    rerank_dataset(src, tmp_path / "out", "bm25", shard_pairs=8, progress=seen.append)
    assert [p.pairs_done for p in seen] == sorted(p.pairs_done for p in seen)
    last = seen[-1]
    assert (last.groups_done, last.groups_total, last.pairs_done, last.pairs_total) == (5, 5, 20, 20)
    assert (last.shards_done, last.shards_total, last.eta_s) == (3, 3, 0.0) and last.pairs_per_s > 0


# -- CLI ------------------------------------------------------------------------------------------------------------
def test_cli_runs_resumes_and_prints_a_summary(tmp_path, capsys):
    src = write_jsonl(tmp_path / "g.jsonl", [*make_groups(3), "{broken"])
    out = tmp_path / "out"
    argv = ["batch", str(src), str(out), "-m", "bm25", "--shard-pairs", "4", "-k", "2", "--no-progress"]
    assert main([*argv, "--trec", str(tmp_path / "r.trec")]) == 0
    printed = capsys.readouterr().out
    assert "3 groups, 12 pairs scored, 1 rejects" in printed and "TREC run" in printed
    assert main(argv) == 2
    assert "pass --resume to continue" in capsys.readouterr().err
    assert main([*argv[:-3], "-k", "3", "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--top-k was 2, now 3" in err
    assert main([*argv, "--resume"]) == 0
    assert "(4 finished earlier)" in capsys.readouterr().out


def test_cli_progress_lines_show_groups_pairs_and_eta(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RANKWISE_PROGRESS_INTERVAL", "0")
    src = write_jsonl(tmp_path / "g.jsonl", make_groups(3))
    assert main(["batch", str(src), str(tmp_path / "out"), "-m", "bm25", "--shard-pairs", "4"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert "rankwise batch: 1/3 groups, 0 rejects: 4/12 pairs (33%)" in err[0] and "ETA" in err[0]
    assert err[-1].endswith("done in 0s") or "done in" in err[-1]


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    assert main(["batch", str(tmp_path / "nope.jsonl"), str(tmp_path / "out"), "-m", "bm25"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err


def test_importing_the_batch_package_does_not_import_pyarrow():
    code = "import rankwise.batch, rankwise.batch.run, sys; print('pyarrow' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"


def test_cli_model_errors_speak_flags_and_leave_no_folder(tmp_path, capsys):
    src = write_jsonl(tmp_path / "g.jsonl", make_groups(1))
    assert main(["batch", str(src), str(tmp_path / "out"), "-m", "nosuchmodel"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--backend" in err and "backend=" not in err
    assert not (tmp_path / "out").exists()
