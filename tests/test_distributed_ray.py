"""The Ray batch engine and ``Scorer``: the same files as the local engine, byte for byte; Scorer in a Ray Data
pipeline gives the batch job's scores; errors come back as the library's own.

One local Ray (``num_cpus=2``) for the module, started and stopped here. Scorer's row rules and columns are tested
without Ray (they are plain pyarrow), with a hypothesis fuzz test of its invariants.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("ray.data")

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given
from hypothesis import strategies as st

import rankwise
from rankwise.batch import rerank_dataset
from rankwise.distributed.ray import Scorer
from rankwise.errors import InvalidInputError
from tests.support.fuzzing import fuzz_settings

WORDS = ["lstm", "memory", "gates", "cell", "state", "image", "filters", "edges", "attention", "tokens", "sequence"]


def _text(i: int, j: int) -> str:
    return " ".join(WORDS[(i * 3 + j * k) % len(WORDS)] for k in range(1, 4 + (i + j) % 5))


def write_groups(path: Path, queries: int = 30, per_query: int = 12) -> Path:
    """JSONL groups, with a broken line, a query with no candidate and a candidate without text (rejects)."""
    lines = []
    for i in range(queries):
        cands = [{"doc_id": f"d{j}", "title": f"T{j}", "text": _text(i, j)} for j in range(per_query)]
        lines.append(json.dumps({"query_id": f"q{i}", "query": _text(i, 0), "candidates": cands}))
    lines[3] = "{not json"
    lines[5] = json.dumps({"query_id": "q5", "query": "memory", "candidates": []})
    lines[7] = json.dumps({"query_id": "q7", "query": "cell", "candidates": [{"doc_id": "x", "text": ""}, "lstm"]})
    path.write_text("\n".join(lines) + "\n")
    return path


def write_pairs(path: Path, queries: int = 12, per_query: int = 9) -> Path:
    rows = [
        {"query_id": f"q{i}", "query": _text(i, 1), "doc_id": f"d{j}", "text": _text(i, j), "title": f"T{j}",
         "lang": "en"}
        for i in range(queries)
        for j in range(per_query)
    ]
    rows[4]["text"] = rows[4]["title"] = ""  # no text: a reject
    rows[20]["doc_id"] = rows[19]["doc_id"]  # a duplicate doc id: a reject
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=25)
    return path


@pytest.fixture(scope="module")
def ray_local():  # noqa: ANN201
    """A local Ray for this module (address='local': never someone else's cluster)."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for sub in ("shards", "rejects")
        for p in sorted((folder / sub).glob("*"))
        if p.is_file()
    }


def test_ray_engine_writes_the_local_engines_files_byte_for_byte(ray_local, tiny_cross_encoder, tmp_path):  # noqa: ANN001
    source = write_groups(tmp_path / "groups.jsonl")
    common = {"backend": "cross-encoder", "shard_pairs": 50, "top_k": 7}
    local = rerank_dataset(source, tmp_path / "local", str(tiny_cross_encoder), trec=tmp_path / "l.trec", **common)
    on_ray = rerank_dataset(source, tmp_path / "ray", str(tiny_cross_encoder), trec=tmp_path / "r.trec",
                            engine="ray", actors=2, **common)
    assert local.shards == on_ray.shards > 4  # several shards, spread over the two actors
    assert (local.groups, local.pairs, local.rejects, local.rows) == (on_ray.groups, on_ray.pairs, on_ray.rejects,
                                                                      on_ray.rows)
    assert local.rejects == 3  # the broken line, the empty group, the candidate without text
    assert _files(tmp_path / "local") == _files(tmp_path / "ray")
    assert (tmp_path / "l.trec").read_bytes() == (tmp_path / "r.trec").read_bytes()
    table = pq.read_table(tmp_path / "ray" / "shards")
    assert Counter(table.column("query_id").to_pylist()) == {f"q{i}": 7 for i in range(30) if i not in (3, 5, 7)} | {
        "q7": 1}


@pytest.mark.slow
def test_a_local_job_cut_short_is_finished_by_the_ray_engine(ray_local, tiny_cross_encoder, tmp_path):  # noqa: ANN001
    import shutil

    source = write_groups(tmp_path / "groups.jsonl")
    job = {"backend": "cross-encoder", "shard_pairs": 50}
    whole = rerank_dataset(source, tmp_path / "whole", str(tiny_cross_encoder), **job)
    shutil.copytree(tmp_path / "whole", tmp_path / "cut")
    shards = sorted((tmp_path / "cut" / "shards").glob("*.parquet"))
    for path in shards[len(shards) // 2:]:  # as a killed run leaves it: the later shards never written
        path.unlink()
    report = rerank_dataset(source, tmp_path / "cut", str(tiny_cross_encoder), resume=True, engine="ray",
                            actors=2, **job)
    assert report.shards_resumed == len(shards) // 2 and report.groups == whole.groups
    assert _files(tmp_path / "cut") == _files(tmp_path / "whole")


def test_ray_engine_raises_the_librarys_error_for_a_model_that_does_not_load(ray_local, tmp_path):  # noqa: ANN001
    source = write_groups(tmp_path / "groups.jsonl", queries=8)
    with pytest.raises(InvalidInputError, match="no-such-model"):
        rerank_dataset(source, tmp_path / "out", str(tmp_path / "no-such-model"), backend="cross-encoder",
                       engine="ray")
    assert not list((tmp_path / "out" / "shards").glob("*.parquet"))


def test_ray_engine_refuses_a_pool_bigger_than_the_local_ray(ray_local, tmp_path):  # noqa: ANN001
    source = write_groups(tmp_path / "groups.jsonl", queries=8)
    with pytest.raises(InvalidInputError, match="does not fit: 3 x 1 CPU = 3 CPU, the cluster has 2"):
        rerank_dataset(source, tmp_path / "out", "bm25", engine="ray", actors=3)


@pytest.mark.slow
def test_scorer_in_map_groups_gives_the_batch_jobs_scores(ray_local, tmp_path):  # noqa: ANN001
    path = write_pairs(tmp_path / "pairs.parquet")
    rerank_dataset(path, tmp_path / "batch", "bm25", fields=("title", "text"))
    expected = {(r["query_id"], r["doc_id"]): (r["score"], r["rank"]) for r in pq.read_table(
        tmp_path / "batch" / "shards").to_pylist()}
    ds = ray_local.data.read_parquet(str(path))
    ranked = ds.groupby("query_id").map_groups(
        Scorer, fn_constructor_args=("bm25",), fn_constructor_kwargs={"fields": ["title", "text"]},
        # 2 x 0.5 CPU: the groupby's shuffle tasks need a CPU too; actors holding all of them would wait forever
        batch_format="pyarrow", concurrency=2, num_cpus=0.5,
    )
    rows = ranked.take_all()
    assert len(rows) == 12 * 9  # every row back: scored or rejected
    scored = {(r["query_id"], r["doc_id"]): (r["score"], r["rank"]) for r in rows if r["reject_reason"] is None}
    assert scored == expected  # exact: same rules, same scores, same ranks
    rejected = [r for r in rows if r["reject_reason"] is not None]
    assert len(rejected) == 2 and all(r["lang"] == "en" and r["score"] is None for r in rejected)


# ---- Scorer without Ray: its rules on one batch -----------------------------------------------------------------
@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer("bm25")


def _batch(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows)


ROWS = [
    {"query_id": "q1", "query": "lstm memory", "doc_id": "a", "text": "image filters", "extra": 1},
    {"query_id": "q1", "query": "lstm memory", "doc_id": "b", "text": "lstm memory gates", "extra": 2},
    {"query_id": "q2", "query": "edges", "doc_id": "c", "text": "filters find edges", "extra": 3},
    {"query_id": "q1", "query": "lstm memory", "doc_id": "d", "text": "memory cell", "extra": 4},
    {"query_id": "q1", "query": "lstm memory", "doc_id": "e", "text": None, "extra": 5},
]


def test_scorer_ranks_each_query_and_keeps_every_row(scorer):  # noqa: ANN001
    out = scorer(_batch(ROWS)).to_pylist()
    assert [(r["query_id"], r["doc_id"], r["rank"]) for r in out] == [
        ("q1", "b", 1), ("q1", "d", 2), ("q1", "a", 3), ("q1", "e", None), ("q2", "c", 1)]
    direct = rankwise.load("bm25").score("lstm memory", ["image filters", "lstm memory gates", "memory cell"])
    assert [r["score"] for r in out[:3]] == [direct[1], direct[2], direct[0]]
    assert out[3]["reject_reason"].startswith("no text") and out[3]["extra"] == 5


def test_scorer_top_k_keeps_rejects_and_keep_columns_false():
    out = Scorer("bm25", top_k=1, keep_columns=False)(_batch(ROWS))
    assert out.column_names == ["query_id", "doc_id", "score", "rank", "reject_reason"]
    assert [(r["doc_id"], r["rank"]) for r in out.to_pylist()] == [("b", 1), ("e", None), ("c", 1)]


@pytest.mark.parametrize("kind", ["pandas", "dict"])
def test_scorer_takes_pandas_and_numpy_batches(scorer, kind):  # noqa: ANN001
    table = _batch(ROWS)
    batch = table.to_pandas() if kind == "pandas" else {k: v.to_numpy(zero_copy_only=False) for k, v in zip(
        table.column_names, table.columns)}
    columns = ["doc_id", "score", "rank", "reject_reason"]
    assert scorer(batch).select(columns).to_pylist() == scorer(table).select(columns).to_pylist()


def test_scorer_errors_name_the_columns(scorer):  # noqa: ANN001
    with pytest.raises(InvalidInputError, match="no text.*rename_columns"):
        scorer(_batch([{"query_id": "q", "query": "x", "doc_id": "d", "body": "y"}]))
    with pytest.raises(InvalidInputError, match="already has column.*score"):
        scorer(_batch([{**ROWS[0], "score": 1.0}]))
    with pytest.raises(InvalidInputError, match="batch_format='pyarrow'"):
        scorer([ROWS[0]])
    with pytest.raises(InvalidInputError, match="top_k"):
        Scorer("bm25", top_k=0)


@functools.cache
def _scorer(top_k: int | None) -> Scorer:
    return Scorer("bm25", top_k=top_k)


IDS = st.one_of(st.sampled_from(["q1", "q2", "d1", "d2", "", " "]), st.integers(0, 3), st.none())
TEXTS = st.one_of(st.sampled_from(["lstm memory", "edges", "", "  ", "Straße"]), st.none(), st.text(max_size=8))


@fuzz_settings(40)
@given(st.lists(st.fixed_dictionaries({"query_id": IDS, "query": TEXTS, "doc_id": IDS, "text": TEXTS}), max_size=12),
       st.one_of(st.none(), st.integers(1, 3)))
def test_fuzz_scorer_accounts_for_every_row(rows, top_k):  # noqa: ANN001
    """Every row is either scored (finite score, ranks 1..n per query, at most top_k) or rejected with a reason;
    no row appears twice; nothing else raises."""
    batch = pa.Table.from_pylist(
        [{k: (None if v is None else str(v)) for k, v in r.items()} for r in rows] if rows else [],
        schema=pa.schema([(c, pa.string()) for c in ("query_id", "query", "doc_id", "text")]),
    ).append_column("row", pa.array(range(len(rows)), pa.int64()))
    out = _scorer(top_k)(batch).to_pylist()
    seen = Counter(r["row"] for r in out)
    assert all(n == 1 for n in seen.values())
    ranks: dict[str, list[int]] = {}
    for r in out:
        if r["reject_reason"] is None:
            assert math.isfinite(r["score"])
            ranks.setdefault(r["query_id"], []).append(r["rank"])
        else:
            assert r["score"] is None and r["rank"] is None and r["reject_reason"]
    for got in ranks.values():
        assert got == list(range(1, len(got) + 1)) and (top_k is None or len(got) <= top_k)
    rejected = sum(r["reject_reason"] is not None for r in out)
    assert len(out) == len(rows) if top_k is None else len(out) >= rejected
