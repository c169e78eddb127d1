"""BEIR folders, TREC runs and qrels: what is loaded, what is skipped (and counted), and errors with
file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from rankwise.evaluation import DataFormatError, load_dataset, read_qrels, read_run, write_run
from tests.support.evaluation import make_beir


def test_collection_loads_judged_queries_and_counts_what_it_skips(tmp_path: Path) -> None:
    data = load_dataset(make_beir(tmp_path / "tiny"))
    assert data.kind == "collection" and data.pool is None
    assert list(data.queries) == ["q1", "q2"]
    assert data.qrels["q1"] == {"d1": 2, "d3": 0}
    assert data.corpus["d4"].metadata == {"year": 1986} and data.corpus["d1"].title == "LSTM"
    assert data.corpus["d3"].title is None  # empty title -> None
    counts = data.counts
    assert (counts.queries_in_file, counts.unjudged_queries, counts.qrels_unknown_queries) == (3, 1, 1)
    assert counts.judged_docs_not_in_corpus == 1  # q2 -> d9
    assert data.relevance_threshold == 1
    assert data.describe()["skipped"]["unjudged_queries"] == 1


def test_pool_run_is_detected_and_its_default_threshold_is_two(tmp_path: Path) -> None:
    run = "q1 Q0 d3 1 9.5 bm25\nq1 Q0 d1 2 8.0 bm25\nq2 Q0 d2 1 3.0 bm25\n"
    data = load_dataset(make_beir(tmp_path / "pool", run=run))
    assert data.kind == "pool" and data.pool_file.name == "pool.run"
    assert data.pool == {"q1": [("d3", 9.5), ("d1", 8.0)], "q2": [("d2", 3.0)]}
    assert data.relevance_threshold == 2
    as_collection = load_dataset(tmp_path / "pool", candidates="bm25")
    assert as_collection.kind == "collection"


def test_pool_candidate_outside_the_corpus_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="not in corpus.jsonl.*'zz'"):
        load_dataset(make_beir(tmp_path / "p", run="q1 Q0 zz 1 1.0 x\n"))


def test_missing_folder_split_and_files(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")
    root = make_beir(tmp_path / "t")
    with pytest.raises(DataFormatError, match="no qrels for split 'dev'; available splits: test"):
        load_dataset(root, split="dev")
    (root / "queries.jsonl").unlink()
    with pytest.raises(DataFormatError, match="queries file .*queries.jsonl"):
        load_dataset(root)


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("corpus.jsonl", '{"_id": "a", "text": "x"}\nnot json\n', r"corpus.jsonl:2: not a JSON line"),
        (
            "corpus.jsonl",
            '{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n',
            r"corpus.jsonl:2: duplicate",
        ),
        ("corpus.jsonl", '{"text": "x"}\n', r'corpus.jsonl:1: missing "_id"'),
        ("corpus.jsonl", '["a"]\n', r"corpus.jsonl:1: expected a JSON object"),
        ("queries.jsonl", '{"_id": "q1", "text": ""}\n', r'queries.jsonl:1: query .q1. has no "text"'),
        (
            "qrels/test.tsv",
            "query-id\tcorpus-id\tscore\nq1\td1\n",
            r"test.tsv:2: expected 'query-id corpus-id score'",
        ),
        ("qrels/test.tsv", "q1\td1\thigh\n", r"test.tsv:1: relevance 'high' is not an integer"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path: Path, file: str, content: str, message: str) -> None:
    root = make_beir(tmp_path / "bad")
    (root / file).write_text(content)
    with pytest.raises(DataFormatError, match=message):
        load_dataset(root)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("q1 Q0 d1 1 2.0\n", r"x.run:1: a TREC run line has 6 columns"),
        ("q1 Q0 d1 1 2.0 t\nq1 Q0 d2 first 1.0 t\n", r"x.run:2: rank 'first' must be an integer"),
        ("q1 Q0 d1 1 2.0 t\nq1 Q0 d1 2 1.0 t\n", r"x.run:2: document 'd1' is listed twice"),
    ],
)
def test_malformed_run_lines(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "x.run"
    path.write_text(content)
    with pytest.raises(DataFormatError, match=message):
        read_run(path)


def test_run_round_trip_and_order(tmp_path: Path) -> None:
    path = tmp_path / "r.run"
    path.write_text("q Q0 a 2 1.0 t\nq Q0 b 1 3.0 t\nq Q0 c 3 1.0 t\n\n")
    run = read_run(path)
    assert run == {"q": [("b", 3.0), ("a", 1.0), ("c", 1.0)]}  # score, then the file's rank
    write_run(run, tmp_path / "out.run", tag="my system")
    assert (tmp_path / "out.run").read_text().splitlines()[0] == "q Q0 b 1 3.000000 mysystem"
    assert read_run(tmp_path / "out.run") == run


def test_trec_qrels_format_is_read(tmp_path: Path) -> None:
    path = tmp_path / "q.txt"
    path.write_text("19335 0 1017759 0\n19335 0 1082489 3\n")
    assert read_qrels(path) == {"19335": {"1017759": 0, "1082489": 3}}


def test_several_run_files_must_be_disambiguated(tmp_path: Path) -> None:
    root = make_beir(tmp_path / "two", run="q1 Q0 d1 1 1.0 x\n")
    (root / "other.run").write_text("q1 Q0 d2 1 1.0 x\n")
    with pytest.raises(DataFormatError, match="several run files"):
        load_dataset(root)
    assert load_dataset(root, candidates=root / "other.run").pool["q1"] == [("d2", 1.0)]
