"""Cascades (issue 13, item 4): each stage scores only what the previous one kept, every input comes back ranked,
the report counts what each stage did. Real re-rankers throughout: BM25, metadata scores, the tiny cross-encoder and
the bundled bi-encoder."""

from __future__ import annotations

import json
import pickle
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rankwise
from rankwise.cli import main
from rankwise.errors import InvalidInputError, UnknownModelError
from rankwise.evaluation.spec import build_reranker, parse_spec
from rankwise.registry import backend_factory
from rankwise.rerankers.base import Reranker
from rankwise.rerankers.cascade import Cascade, CascadeResult, parse_stage, parse_stages
from rankwise.rerankers.lexical import BM25Reranker
from rankwise.rerankers.metadata_score import MetadataScoreReranker
from rankwise.types import Document, rank_order

from .conftest import SEED_DOCS, SEED_QUERY
from .support.fuzzing import fuzz_settings
from .support.server import live_server

pytest_plugins = ("tests.support.server_fixtures",)  # tiny_ce: the sharp tiny cross-encoder, loaded once

QUERY = "lstm memory gates"
TEXTS = [
    "cnn filters see images",
    "lstm gates keep long memory",
    "memory of recurrent networks",
    "transformers use attention",
    "lstm cells",
    "gates and memory in lstm networks carry state",
    "a recipe for bread",
]


def docs_with(first: list[float]) -> list[dict]:
    return [{"text": t, "id": f"d{i}", "first_stage_score": s} for i, (t, s) in enumerate(zip(TEXTS, first))]


FIRST = [9.0, 1.0, 7.0, 8.0, 2.0, 6.0, 5.0]  # the first stage prefers documents BM25 dislikes


class Recording(Reranker):
    """A real re-ranker that also records which documents it was asked to score (for 'each stage sees only what
    the previous kept')."""

    def __init__(self, inner: Reranker) -> None:
        self.inner = inner
        self.name = f"recording:{inner.name}"
        self.seen: list[list[str]] = []

    def _score(self, query, documents, progress):
        self.seen.append([d.text for d in documents])
        return self.inner.score(query, documents)


def reference_order(query: str, docs: list, stages: list[tuple[Reranker, int | None]]) -> list[int]:
    """The cascade's order computed the plain way: per stage, sort what is alive; dropped documents go below."""
    alive = list(range(len(docs)))
    below: list[int] = []
    for s, (reranker, keep) in enumerate(stages):
        scores = reranker.score(query, [docs[i] for i in alive])
        ordered = [alive[p] for p in sorted(range(len(alive)), key=lambda p: (-scores[p], p))]
        k = len(ordered) if keep is None else min(keep, len(ordered))
        if s == len(stages) - 1:
            return ordered + below
        below = ordered[k:] + below
        alive = ordered[:k]
    raise AssertionError("unreachable")


def test_each_stage_scores_only_what_the_previous_kept_and_every_document_comes_back():
    first, second = Recording(MetadataScoreReranker()), Recording(BM25Reranker())
    cascade = Cascade([(first, 4), (second, None)])
    results, report = cascade.rank_with_report(QUERY, docs_with(FIRST))
    assert first.seen == [TEXTS]
    # the second stage receives the first stage's best 4, best first: 9.0, 8.0, 7.0, 6.0
    assert second.seen == [[TEXTS[0], TEXTS[3], TEXTS[2], TEXTS[5]]]
    assert sorted(r.index for r in results) == list(range(len(TEXTS)))
    bm25 = BM25Reranker().score(QUERY, [TEXTS[0], TEXTS[3], TEXTS[2], TEXTS[5]])
    top = [[0, 3, 2, 5][p] for p in rank_order(bm25)]
    # below the cut the first stage's order stays: 5.0 (d6), 2.0 (d4), 1.0 (d1), although BM25 loves d1 and d4
    assert [r.index for r in results] == [*top, 6, 4, 1]
    assert [r.stage for r in results] == [1, 1, 1, 1, 0, 0, 0]
    assert [s.scored for s in report.stages] == [7, 4] and [s.kept for s in report.stages] == [4, 4]
    assert report.documents_scored == 11 and report.remote_calls == 0
    assert all(s.remote_calls is None and s.cost is None and s.seconds >= 0 for s in report.stages)


def test_scores_order_the_list_and_raw_scores_come_with_each_result():
    cascade = Cascade([(MetadataScoreReranker(), 3), (BM25Reranker(), None)])
    docs = docs_with(FIRST)
    results = cascade.rank(QUERY, docs)
    assert all(isinstance(r, CascadeResult) for r in results)
    assert results.scores == sorted(results.scores, reverse=True)
    assert [r.rank for r in results] == list(range(1, 8))
    for r in results:  # a document that stopped at stage s scores inside (s, s + 1)
        assert r.stage < r.score < r.stage + 1
        assert r.stage_scores[0] == FIRST[r.index] and len(r.stage_scores) == r.stage + 1
        assert r.document.metadata == {"first_stage_score": FIRST[r.index]} and r.document.id == f"d{r.index}"
    # the three documents that passed: fractions (m - p) / (m + 1) with m = 3
    assert results.scores[:3] == pytest.approx([1.75, 1.5, 1.25])
    assert cascade.score(QUERY, docs) == [results.scores[[r.index for r in results].index(i)] for i in range(7)]
    row = results[0].to_dict()
    assert row["stage"] == 1 and row["stage_scores"] == list(results[0].stage_scores)
    assert row["id"] == results[0].document.id
    assert pickle.loads(pickle.dumps(results)) == results


def test_top_k_keeps_the_best_of_the_full_ranking():
    cascade = Cascade([(MetadataScoreReranker(), 3), (BM25Reranker(), None)])
    full = cascade.rank(QUERY, docs_with(FIRST))
    assert cascade.rank(QUERY, docs_with(FIRST), top_k=4).results == full.results[:4]


def test_one_stage_is_its_re_ranker_and_a_wide_keep_is_the_next_stage_alone():
    bm25 = BM25Reranker()
    docs = docs_with(FIRST)
    assert [r.index for r in Cascade([(bm25, None)]).rank(QUERY, docs)] == [r.index for r in bm25.rank(QUERY, docs)]
    scores = bm25.score(QUERY, docs)
    # every document passes the first stage; BM25 orders them, its ties (documents without a query word) in the
    # first stage's order (test_ties_in_a_later_stage_keep_the_earlier_stage_order tests that rule on its own)
    expected = sorted(range(len(docs)), key=lambda i: (-scores[i], -FIRST[i]))
    assert [r.index for r in Cascade([(MetadataScoreReranker(), 100), (bm25, None)]).rank(QUERY, docs)] == expected


def test_the_last_stage_keep_only_marks_what_passed():
    docs = docs_with(FIRST)
    all_kept = Cascade([(MetadataScoreReranker(), 5), (BM25Reranker(), None)]).rank_with_report(QUERY, docs)
    two_kept = Cascade([(MetadataScoreReranker(), 5), (BM25Reranker(), 2)]).rank_with_report(QUERY, docs)
    assert [r.index for r in all_kept[0]] == [r.index for r in two_kept[0]]
    assert [s.kept for s in two_kept[1].stages] == [5, 2] and [s.kept for s in all_kept[1].stages] == [5, 5]


def test_ties_in_a_later_stage_keep_the_earlier_stage_order():
    docs = [{"text": "same words", "first_stage_score": s} for s in (1.0, 3.0, 2.0)]
    results = Cascade([(MetadataScoreReranker(), None)]).rank("same words", docs)
    assert [r.index for r in results] == [1, 2, 0]
    results = Cascade([(MetadataScoreReranker(), 3), (BM25Reranker(), None)]).rank("same words", docs)
    assert [r.index for r in results] == [1, 2, 0]  # BM25 ties all three: the first stage's order stays


def test_names_resolve_through_rankwise_load_and_members_are_the_stages(tiny_cross_encoder):
    cascade = rankwise.Cascade([("bm25", 3), (str(tiny_cross_encoder), None)])
    bm25, ce = cascade.members()
    assert isinstance(bm25, BM25Reranker) and type(ce).__name__ == "CrossEncoderReranker"
    assert cascade.independent_scores is False
    assert cascade.name == f"cascade(bm25:3>{ce.name}:all)"
    results, report = cascade.rank_with_report(SEED_QUERY, SEED_DOCS + TEXTS)
    passed = [r for r in results if r.stage == 1]
    assert len(passed) == 3 and [s.scored for s in report.stages] == [10, 3]
    expected = ce.score(SEED_QUERY, [r.document for r in passed])  # the cross-encoder's own scores, unchanged
    assert [r.stage_scores[1] for r in passed] == pytest.approx(expected, abs=1e-5)
    assert [r.stage_scores[1] for r in passed] == sorted((r.stage_scores[1] for r in passed), reverse=True)


def test_a_bi_encoder_stage_after_bm25(bi_encoder):
    cascade = Cascade([(BM25Reranker(), 2), (bi_encoder, None)])
    results = cascade.rank(SEED_QUERY, SEED_DOCS + TEXTS)
    assert results[0].index == 0 and results[0].stage == 1 and results[1].stage == 1
    assert [r.stage for r in results[2:]] == [0] * (len(SEED_DOCS + TEXTS) - 2)


def test_a_remote_stage_reports_its_calls_and_scores_as_the_model_in_process(tiny_ce):
    with live_server({"tiny": tiny_ce}) as server:
        remote = rankwise.load(server.url, backend="rankwise", model="tiny", max_documents_per_call=2)
        cascade = Cascade([(BM25Reranker(), 5), (remote, None)])
        results, report = cascade.rank_with_report(QUERY, TEXTS)
        remote.close()
    first, second = report.stages
    assert first.remote_calls is None and first.cost is None
    assert second.scored == 5 and second.remote_calls == 3 and second.cost.documents == 5  # 5 documents, 2 a call
    assert report.remote_calls == 3 and report.to_dict()["stages"][1]["cost"]["calls"] == 3
    passed = [r for r in results if r.stage == 1]
    expected = tiny_ce.score(QUERY, [r.document for r in passed])
    # The server scored 2 documents a call: each call's batch pads differently from one batch of 5, so the scores
    # agree to float32 rounding, not bit for bit (the remote backend's own tests check each call bit for bit).
    assert [r.stage_scores[1] for r in passed] == pytest.approx(expected, rel=1e-5)
    json.dumps(report.to_dict())  # plain JSON


def test_empty_input_and_bad_input():
    cascade = Cascade([(BM25Reranker(), 2), (MetadataScoreReranker(missing=0.0), None)])
    results, report = cascade.rank_with_report(QUERY, [])
    assert len(results) == 0 and report.documents_scored == 0 and [s.scored for s in report.stages] == [0, 0]
    with pytest.raises(InvalidInputError, match="query is empty"):
        cascade.rank(" ", ["a"])
    with pytest.raises(InvalidInputError, match="top_k must be >= 1"):
        cascade.rank(QUERY, ["a"], top_k=0)
    with pytest.raises(InvalidInputError, match="no metadata\\['first_stage_score'\\]"):
        Cascade([(BM25Reranker(), 2), (MetadataScoreReranker(), None)]).rank(QUERY, TEXTS)


@pytest.mark.parametrize(
    ("stages", "message"),
    [
        ([], "non-empty list"),
        ("", "must look like NAME:KEEP"),
        ({"bm25": 3}, "non-empty list"),
        ([("bm25", 0)], "keep 0 must be an int >= 1"),
        ([("bm25", -3)], "keep -3 must be an int >= 1"),
        ([("bm25", True)], "keep True must be an int >= 1"),
        ([("bm25", 2.5)], "keep 2.5 must be an int >= 1"),
        ([("bm25", "10")], "keep '10' must be an int >= 1"),
        ([("bm25", 5, 3)], "must be \\(reranker_or_name, keep\\)"),
        ([(3, 5)], "must be \\(reranker_or_name, keep\\)"),
        (["bm25:0"], "keep '0' must be a whole number >= 1"),
        (["bm25:ten"], "keep 'ten' must be a whole number >= 1"),
        (["bm25:1.5"], "keep '1.5'"),
        (["bm25:"], "keep ''"),
        ([":10"], "names no re-ranker before ':'"),
        ("bm25,default:30", "stage 1 of 2 keeps all documents"),
        ("bm25:30,default:100", "must not grow: a stage keeps 100 after one that kept 30"),
        ([("bm25", None), ("bm25", 5)], "Only the last stage may keep all"),
    ],
)
def test_bad_stages_are_refused_naming_the_value(stages, message):
    with pytest.raises(InvalidInputError, match=message):
        Cascade(stages)


def test_parse_stage_spellings():
    assert parse_stage("bm25:100") == ("bm25", 100)
    assert parse_stage(" default : all ") == ("default", None)
    assert parse_stage("default") == ("default", None)
    assert parse_stage("cross-encoder/ms-marco-MiniLM-L-6-v2:10") == ("cross-encoder/ms-marco-MiniLM-L-6-v2", 10)
    assert parse_stage("my/model:onnx:10") == ("my/model:onnx", 10)
    assert parse_stages("first-stage-score:30, hybrid") == [("first-stage-score", 30), ("hybrid", None)]
    with pytest.raises(UnknownModelError, match="unknown model 'nope'"):
        Cascade("bm25:5,nope")


def test_one_instance_serves_concurrent_callers():
    cascade = Cascade([(MetadataScoreReranker(), 3), (BM25Reranker(), None)])
    state = dict(vars(cascade))
    expected = {q: cascade.rank(q, docs_with(FIRST)) for q in ("lstm", "memory gates", "attention", "bread")}
    out: dict[str, list] = {q: [] for q in expected}

    def work(q: str) -> None:
        for _ in range(5):
            out[q].append(cascade.rank(q, docs_with(FIRST)))

    threads = [threading.Thread(target=work, args=(q,)) for q in expected for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r == expected[q] for q, rs in out.items() for r in rs) and all(len(rs) == 10 for rs in out.values())
    assert vars(cascade) == state


def test_progress_counts_every_stage_and_stops_the_call():
    cascade = Cascade([(BM25Reranker(), 3), (MetadataScoreReranker(), None)])
    calls: list[tuple[int, int]] = []
    cascade.rank(QUERY, docs_with(FIRST), progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (10, 10) and all(t == 10 for _, t in calls)
    assert [d for d, _ in calls] == sorted({d for d, _ in calls})  # never repeated, never backwards
    second = Recording(MetadataScoreReranker())

    def stop(done: int, total: int) -> None:
        if done >= 7:  # the first stage's 7 documents are done
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Cascade([(BM25Reranker(), 3), (second, None)]).rank(QUERY, docs_with(FIRST), progress=stop)
    assert second.seen == []  # stopped after the first stage: the second never ran


def test_the_registry_row_routes_options_to_the_stages_that_take_them():
    build = backend_factory("cascade")
    cascade = build("bm25:3,first-stage-score", fields=["title"], name="mine")
    bm25, meta = cascade.members()
    assert cascade.name == "mine" and bm25.fields == ("title",) and isinstance(meta, MetadataScoreReranker)
    with pytest.raises(InvalidInputError, match="does not take batch_size; valid options are: stages, name, k1"):
        build("bm25:3,first-stage-score", batch_size=4)
    assert "cascade" in rankwise.backends()


def test_evaluation_specs_build_cascades():
    spec = parse_spec("cascade:bm25:100,first-stage-score")
    assert spec.name == "cascade" and spec.options == {"stages": "bm25:100,first-stage-score"}
    built = build_reranker("cascade:bm25:100,first-stage-score")
    assert isinstance(built, Cascade) and [k for _, k in built.stages] == [100, None]
    built = build_reranker("cascade:stages=bm25:7,first-stage-score;name=c")
    assert built.name == "c" and [k for _, k in built.stages] == [7, None]
    built = build_reranker(
        json.dumps({"backend": "cascade", "stages": [["first-stage-score", 10], [{"name": "bm25", "k1": 1.2}, None]]})
    )
    assert built.members()[1].k1 == 1.2 and [k for _, k in built.stages] == [10, None]
    with pytest.raises(InvalidInputError, match="keep 'x'"):
        build_reranker("cascade:bm25:x,first-stage-score")


def test_cli_rerank_takes_a_cascade(tmp_path, capsys):
    docs = tmp_path / "docs.jsonl"
    docs.write_text("\n".join(json.dumps({"id": f"d{i}", "text": t}) for i, t in enumerate(TEXTS)))
    args = ["rerank", "-q", QUERY, "-d", str(docs), "--cascade", "bm25:3,bm25", "-f", "json", "--no-progress"]
    assert main(args) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["model"] == "cascade(bm25:3>bm25:all)" and len(payload["results"]) == len(TEXTS)
    assert [r["stage"] for r in payload["results"]] == [1, 1, 1, 0, 0, 0, 0]
    assert main(["rerank", "-q", QUERY, "-d", str(docs), "--cascade", "bm25:0,bm25"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "keep '0' must be a whole number >= 1" in err
    assert main(["rerank", "-q", QUERY, "-d", str(docs), "--cascade", "bm25:3,bm25", "-m", "bm25"]) == 2
    assert "either --cascade or --model" in capsys.readouterr().err


def test_cli_eval_takes_a_cascade(data_dir, tmp_path, capsys):
    args = ["eval", "--data", str(data_dir / "adi"), "--cascade", "first-stage-score:10,bm25", "-r", "bm25",
            "-f", "json", "--no-progress", "--trials", "10", "--cache-dir", str(tmp_path)]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    labels = [s["label"] for s in report["systems"]]
    assert labels == ["bm25", "cascade:first-stage-score:10,bm25"]  # the base is reported apart


# -- fuzz: any keeps, any documents ------------------------------------------------------------------------------
_WORDS = st.sampled_from(["lstm", "memory", "gates", "cnn", "image", "attention", "bread", "state"])
_DOCS = st.lists(
    st.tuples(st.lists(_WORDS, min_size=1, max_size=6).map(" ".join), st.integers(0, 4), st.integers(-3, 3)),
    min_size=0, max_size=25,
)
_KEEPS = st.lists(st.integers(1, 30), min_size=0, max_size=3).map(lambda ks: sorted(ks, reverse=True))


@fuzz_settings(60)
@given(rows=_DOCS, keeps=_KEEPS, last_keep=st.one_of(st.none(), st.integers(1, 30)), query=st.sampled_from(
    ["lstm memory", "image", "bread state gates"]))
def test_fuzz_any_keeps_rank_every_document_as_the_plain_algorithm_does(rows, keeps, last_keep, query):
    docs = [Document(text, id=i, metadata={"a": a, "b": b}) for i, (text, a, b) in enumerate(rows)]
    pool = [MetadataScoreReranker(field="a"), BM25Reranker(), MetadataScoreReranker(field="b")]
    if last_keep is not None and keeps:
        last_keep = min(last_keep, keeps[-1])
    stages = [(pool[i % 3], k) for i, k in enumerate(keeps)] + [(pool[len(keeps) % 3], last_keep)]
    cascade = Cascade(stages)
    results, report = cascade.rank_with_report(query, docs)
    order = [r.index for r in results]
    assert sorted(order) == list(range(len(docs)))
    assert order == (reference_order(query, docs, stages) if docs else [])
    assert [r.document for r in results] == [docs[i] for i in order]
    scores = cascade.score(query, docs)
    assert rank_order(scores) == order and all(np.isfinite(scores))
    expected_sizes, n = [], len(docs)
    for _, keep in stages:
        expected_sizes.append(n)
        n = n if keep is None else min(n, keep)
    assert [s.scored for s in report.stages] == expected_sizes
    assert report.documents_scored == sum(expected_sizes)
    for r in results:
        assert r.stage < r.score < r.stage + 1 and len(r.stage_scores) == r.stage + 1


@fuzz_settings(200)
@given(text=st.text(alphabet=st.sampled_from(list("bm25:,0123456789 all-x/\u00e9\ud800")), max_size=30))
def test_fuzz_stage_texts_parse_or_fail_clearly(text):
    """Whatever text a user types for --cascade / cascade:... parses into valid stages or is an InvalidInputError."""
    try:
        stages = parse_stages(text)
    except InvalidInputError as exc:
        assert str(exc)
        return
    keeps = [k for _, k in stages]
    assert stages and all(isinstance(n, str) and n for n, _ in stages)
    assert all(k is None or (isinstance(k, int) and k >= 1) for k in keeps)
    assert None not in keeps[:-1]
    given_keeps = [k for k in keeps if k is not None]
    assert given_keeps == sorted(given_keeps, reverse=True)
