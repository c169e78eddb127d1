"""Judgment-history features of LTR models: the arithmetic, leave-one-out at training, the saved folder, serving."""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rankwise
import rankwise.train
from rankwise.errors import InvalidInputError
from rankwise.train.lambdamart.history import HISTORY_FEATURES, JudgmentHistory

pytest.importorskip("lightgbm")

ADI = Path("/work/shared/data/adi")
MEMBERS = ["first-stage-score", "bm25", "minilm-bi-encoder"]


def _history(neighbours: int = 20) -> JudgmentHistory:
    # three training queries on two axes; "a" and "b" point the same way
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    judged = [{"d1": 2, "d2": 0}, {"d1": 1, "d3": 1}, {"d4": 3}]
    return JudgmentHistory.build(["a", "b", "c"], vectors, judged, neighbours)


def test_neighbours_weigh_grades_by_squared_cosine() -> None:
    h = _history()
    query = np.array([math.sqrt(0.75), 0.5])  # cosine 0.866 with a and b, 0.5 with c
    rows = h.features(query, ["d1", "d3", "d4", "d2", "d9"])
    np.testing.assert_allclose(rows[:, 0], [0.75 * 3, 0.75 * 1, 0.25 * 3, 0.0, 0.0])
    # popularity: log(1 + total grade); d2 was judged 0 (not relevant), d9 never judged
    np.testing.assert_allclose(rows[:, 1], np.log1p([3.0, 1.0, 3.0, 0.0, 0.0]))


def test_only_the_nearest_neighbours_count_and_negative_cosines_add_nothing() -> None:
    h = _history(neighbours=1)
    rows = h.features(np.array([0.0, 1.0]), ["d1", "d4"])
    assert rows[:, 0].tolist() == [0.0, 3.0]  # only "c" is read
    rows = _history().features(np.array([-1.0, 0.0]), ["d1", "d4"])
    assert rows[:, 0].tolist() == [0.0, 0.0]  # cosine -1 and 0


def test_leave_out_hides_a_training_querys_own_judgments() -> None:
    h = _history()
    as_a = h.features(np.array([1.0, 0.0]), ["d1", "d3"], leave_out="a")
    np.testing.assert_allclose(as_a, [[1.0, math.log1p(1.0)], [1.0, math.log1p(1.0)]])  # b alone, and a's 2 gone
    seen = h.features(np.array([1.0, 0.0]), ["d1", "d3"])
    np.testing.assert_allclose(seen, [[3.0, math.log1p(3.0)], [1.0, math.log1p(1.0)]])
    # an id that is no training query leaves nothing out
    np.testing.assert_array_equal(h.features(np.array([1.0, 0.0]), ["d1"], leave_out="zz"), seen[:1])


def test_candidates_without_an_id_are_missing_not_zero() -> None:
    rows = _history().features(np.array([1.0, 0.0]), [None, "d1", 7])
    assert np.isnan(rows[0]).all() and not np.isnan(rows[1:]).any()
    assert _history().features(np.array([1.0, 0.0]), []).shape == (0, len(HISTORY_FEATURES))


def test_history_round_trips_through_its_file(tmp_path: Path) -> None:
    h = _history(neighbours=2)
    h.save(tmp_path)
    again = JudgmentHistory.load(tmp_path)
    query = np.array([0.6, 0.8])
    np.testing.assert_array_equal(again.features(query, ["d1", "d4", "x"], "b"), h.features(query, ["d1", "d4", "x"], "b"))
    assert again.summary() == {"queries": 3, "judgments": 4, "documents": 3, "neighbours": 2}


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_neighbour_counts_are_refused(bad: object) -> None:
    with pytest.raises(InvalidInputError, match=f"neighbours must be an integer >= 1, got {bad!r}"):
        JudgmentHistory.build(["a"], np.ones((1, 2)), [{"d": 1}], bad)  # type: ignore[arg-type]


def test_missing_history_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="has no history.npz; copy the whole model folder"):
        JudgmentHistory.load(tmp_path)


@pytest.fixture(scope="module")
def history_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    if not ADI.is_dir():
        pytest.skip("shared adi collection not present")
    out = tmp_path_factory.mktemp("adi-history") / "model"
    cache = tmp_path_factory.mktemp("cache")
    report = rankwise.train.ltr(ADI, out, split="test", members=MEMBERS, depth=30, cache_dir=cache, seed=1,
                                history=True, history_neighbours=5)
    return out, report


def test_training_with_history_saves_it_and_reports_it(history_model: tuple[Path, dict]) -> None:
    out, report = history_model
    assert report["feature_names"][-2:] == list(HISTORY_FEATURES)
    assert report["history"]["queries"] == report["train_queries"] and report["history"]["neighbours"] == 5
    manifest = json.loads((out / "ltr.json").read_text())
    assert manifest["version"] == 3 and manifest["history"]["encoder"]["label"] == "minilm-bi-encoder"
    assert (out / "history.npz").is_file()
    # every relevant judgment of the training queries (in their top 30 or not), and nothing else
    stored = JudgmentHistory.load(out)
    assert len(stored.query_ids) == report["train_queries"] and (stored.grades > 0).all()
    rows = [line.split("\t") for line in (ADI / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    qrels = {(q, d): int(g) for q, d, g in rows if int(g) > 0}
    held = {(q, d): g for (q, d), g in qrels.items() if q in set(stored.query_ids)}
    assert {(q, d): g for i, q in enumerate(stored.query_ids) for d, g in stored.judged(i).items()} == held


def test_served_model_computes_the_history_features(history_model: tuple[Path, dict]) -> None:
    from rankwise.train.lambdamart.data import beir_groups

    out, _ = history_model
    model = rankwise.load(out)
    stored = JudgmentHistory.load(out)
    groups = beir_groups(ADI, "test", depth=30).groups
    unseen = next(g for g in groups if g.query_id not in set(stored.query_ids))
    docs = list(unseen.documents)
    rows = model.features(unseen.query, docs)
    encoder = model.members()[2]  # the bi-encoder member embeds the queries (reused, not loaded twice)
    expected = stored.features(encoder.embed_query(unseen.query), [d.id for d in docs])
    np.testing.assert_array_equal(rows[:, -2:], expected)
    assert np.nanmax(rows[:, -2]) > 0  # adi's queries share relevant documents
    scores = model.score(unseen.query, docs)
    # without ids the history is missing (NaN), and the model still ranks every candidate
    anonymous = [{"text": d.text, "title": d.title, **d.metadata} for d in docs]
    assert np.isnan(model.features(unseen.query, anonymous)[:, -2:]).all()
    assert len(model.score(unseen.query, anonymous)) == len(docs)
    # pickling (process pools, Ray) rebuilds from the folder: same scores
    assert pickle.loads(pickle.dumps(model)).score(unseen.query, docs) == scores


def test_history_encoder_must_embed_queries(tmp_path: Path) -> None:
    if not ADI.is_dir():
        pytest.skip("shared adi collection not present")
    with pytest.raises(InvalidInputError, match="history encoder must be a bi-encoder"):
        rankwise.train.ltr(ADI, tmp_path / "m", split="test", members=["bm25"], depth=10, cache_dir=tmp_path,
                           history=True, history_encoder="bm25")


def test_cli_history_flag(tmp_path: Path) -> None:
    if not ADI.is_dir():
        pytest.skip("shared adi collection not present")
    out = tmp_path / "m"
    done = subprocess.run(
        [sys.executable, "-m", "rankwise", "train", "ltr", str(ADI), str(out), "--split", "test", "--depth", "10",
         "-m", "bm25", "--history", "--history-neighbours", "3", "--cache-dir", str(tmp_path / "c"), "-f", "json"],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["history"]["neighbours"] == 3 and "history:neighbours" in report["feature_names"]
    manifest = json.loads((out / "ltr.json").read_text())
    assert manifest["history"]["encoder"]["name"] == "minilm-bi-encoder"  # loaded, not a member here
    assert rankwise.load(out).score("computer", [{"id": "1", "text": "computer programs"}])


def test_click_log_history_holds_the_clicked_items(tmp_path: Path) -> None:
    """From a click log the history is what was clicked (with skip-above labels), keyed by the shown items' ids."""
    words = ["boots", "jacket", "scarf", "gloves"]
    sessions = []
    for q in range(24):
        word = words[q % 4]
        shown = [{"id": f"{w}-{i}", "text": f"{w} number {i}"} for w in words for i in range(3)]
        sessions.append({"query": f"warm {word} {q}", "shown": shown, "clicked": [f"{word}-{q % 3}"]})
    log = tmp_path / "clicks.jsonl"
    log.write_text("\n".join(json.dumps(s) for s in sessions) + "\n")
    report = rankwise.train.ltr(log, tmp_path / "m", members=["bm25"], history=True, position_bias="none",
                                num_boost_round=20)
    stored = JudgmentHistory.load(tmp_path / "m")
    assert report["history"]["queries"] == report["train_queries"] == len(stored.query_ids)
    expected = {f"clicks-{q}": {s["clicked"][0]: 2} for q, s in enumerate(sessions)}  # groups in log order
    for i, query in enumerate(stored.query_ids):
        assert stored.judged(i) == expected[query]  # clicked in its only session: click rate 1 -> label 2


def test_history_flag_must_be_a_bool(tmp_path: Path) -> None:
    if not ADI.is_dir():
        pytest.skip("shared adi collection not present")
    with pytest.raises(InvalidInputError, match="history must be True or False, got 'yes'"):
        rankwise.train.ltr(ADI, tmp_path / "m", split="test", members=["bm25"], depth=10, cache_dir=tmp_path,
                           history="yes")  # type: ignore[arg-type]
