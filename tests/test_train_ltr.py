"""rankwise.train.ltr and the ltr backend: real LightGBM training on tiny data, the saved folder, the CLI, errors."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rankwise
import rankwise.train
from rankwise.errors import InvalidInputError, RankwiseError, UnknownModelError
from rankwise.evaluation import DataFormatError
from tests.support.evaluation import ndcg10

pytest.importorskip("lightgbm")

ADI = Path("/work/shared/data/adi")
FAST = ["first-stage-score", "bm25"]  # no bi-encoder: keeps this file fast


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ltr-cache")


@pytest.fixture(scope="module")
def adi_model(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> tuple[Path, dict]:
    if not ADI.is_dir():
        pytest.skip("shared adi collection not present")
    out = tmp_path_factory.mktemp("adi") / "model"
    report = rankwise.train.ltr(ADI, out, split="test", members=FAST, depth=30, cache_dir=cache, seed=1)
    return out, report


def test_adi_training_report(adi_model: tuple[Path, dict]) -> None:
    out, report = adi_model
    assert (out / "ltr.json").is_file() and (out / "model.txt").is_file()
    assert report["counts"]["judged_queries"] == 35
    assert report["counts"]["queries"] + report["counts"]["dropped_queries_without_relevant"] == 35
    assert report["train_queries"] + report["valid_queries"] == report["counts"]["queries"]
    assert report["valid_queries"] == round(0.2 * report["counts"]["queries"])
    assert 1 <= report["best_iteration"] <= report["rounds_trained"]
    gains = report["feature_importance_gain"]
    assert set(gains) == set(report["feature_names"]) and math.isclose(sum(gains.values()), 1.0, abs_tol=1e-3)
    assert report["feature_names"][:4] == ["score:first-stage-score", "zscore:first-stage-score", "score:bm25",
                                           "zscore:bm25"]
    manifest = json.loads((out / "ltr.json").read_text())
    assert manifest["format"] == "rankwise-ltr" and manifest["version"] == 3 and manifest["history"] is None
    assert [m["name"] for m in manifest["members"]] == FAST


def test_load_scores_like_the_trained_booster(adi_model: tuple[Path, dict], cache: Path) -> None:
    """The served model computes the training features and the saved trees: the same scores as training's."""
    from rankwise.train.lambdamart.data import beir_groups

    out, _ = adi_model
    model = rankwise.load(out)
    assert model.name == "ltr:model" and [m.name for m in model.members()] == ["metadata:first_stage_score", "bm25"]
    group = beir_groups(ADI, "test", depth=30, cache_dir=cache).groups[0]
    scores = model.score(group.query, list(group.documents))
    again = rankwise.load(str(out), backend="ltr").score(group.query, list(group.documents))
    assert scores == again
    import lightgbm

    booster = lightgbm.Booster(model_file=str(out / "model.txt"))
    rows = model.features(group.query, list(group.documents))
    manifest = json.loads((out / "ltr.json").read_text())
    names = model.extractor.names
    trees = booster.predict(rows) if manifest["trees"] else 0.0
    expected = trees + sum(w * rows[:, names.index(n)] for n, w in manifest["prior"].items())
    np.testing.assert_allclose(np.asarray(scores), expected, rtol=0, atol=1e-12)
    ranked = model.rank(group.query, list(group.documents), top_k=3)
    assert [r.score for r in ranked] == sorted(scores, reverse=True)[:3]


def test_ltr_is_picklable(adi_model: tuple[Path, dict]) -> None:
    import pickle

    out, _ = adi_model
    model = rankwise.load(out)
    docs = [{"text": "computer retrieval systems", "first_stage_score": 5.0}, {"text": "birds", "first_stage_score": 1.0}]
    assert pickle.loads(pickle.dumps(model)).score("computer retrieval", docs) == model.score("computer retrieval", docs)


def _synthetic_sessions(rng: random.Random, n_queries: int) -> list[dict]:
    """Relevant = the item names the query's word in its title AND has quality > 0.5: neither feature alone
    decides, the model has to combine them."""
    words = ["boots", "tents", "stoves", "ropes", "maps", "lamps", "packs", "socks"]
    sessions = []
    for q in range(n_queries):
        word = words[q % len(words)]
        shown, clicked = [], []
        for i in range(20):
            match = rng.random() < 0.5
            quality = round(rng.random(), 3)
            title = f"{word} model {i}" if match else f"{rng.choice(words)} other {i}"
            doc = {"id": f"q{q}-d{i}", "title": title, "text": f"item {i} {rng.choice(words)}", "quality": quality}
            shown.append(doc)
            if match and word in title and quality > 0.5:
                clicked.append(doc["id"])
        sessions.append({"query": f"{word} {q}", "shown": shown, "clicked": clicked})
    return sessions


def test_metadata_feature_is_learnt(tmp_path: Path) -> None:
    rng = random.Random(7)
    log = tmp_path / "clicks.jsonl"
    log.write_text("\n".join(json.dumps(s) for s in _synthetic_sessions(rng, 120)) + "\n")
    out = tmp_path / "model"
    report = rankwise.train.ltr(log, out, members=["bm25"], metadata_fields=["quality"], position_bias="none",
                                num_boost_round=200)
    assert report["counts"]["position_bias"] == "none"
    top = list(report["feature_importance_gain"])[:3]
    assert "meta:quality" in top
    model = rankwise.load(out)
    bm25 = rankwise.load("bm25")
    held_out = _synthetic_sessions(random.Random(99), 30)
    ltr_n, bm25_n, quality_n, title_n = [], [], [], []
    for s in held_out:
        labels = [int(d["id"] in s["clicked"]) for d in s["shown"]]
        if not any(labels):
            continue
        ltr_n.append(ndcg10(labels, model.score(s["query"], s["shown"])))
        bm25_n.append(ndcg10(labels, bm25.score(s["query"], s["shown"])))
        quality_n.append(ndcg10(labels, [d["quality"] for d in s["shown"]]))
        title_n.append(ndcg10(labels, [float(s["query"].split()[0] in d["title"]) for d in s["shown"]]))
    ltr_mean = float(np.mean(ltr_n))
    assert ltr_mean > 0.9
    for single in (bm25_n, quality_n, title_n):
        assert ltr_mean > float(np.mean(single)) + 0.05


def test_click_labels_skip_above(tmp_path: Path) -> None:
    from rankwise.train.lambdamart.clicks import click_groups, parse_session

    sessions = [
        parse_session({"query": "q", "shown": ["a", "b", "c", "d"], "clicked": ["c"]}, "x:1",
                      {k: rankwise.Document(text=k, id=k) for k in "abcd"}),
        parse_session({"query": "q", "shown": [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}], "clicked": []}, "x:2"),
    ]
    result = click_groups(sessions)
    (group,) = result.groups
    assert [d.id for d in group.documents] == ["a", "b", "c"]  # d: below the lowest click, never examined
    assert group.labels.tolist() == [0, 0, 2]
    assert result.counts["impressions_not_examined"] == 1 + 2 and result.counts["sessions_without_clicks"] == 1
    assert click_groups(sessions, "none").groups[0].labels.tolist() == [0, 0, 2, 0]


def test_cli_trains_and_prints_json(tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rankwise.cli import COMMANDS, main

    out = tmp_path / "cli-model"
    argv = [str(ADI), str(out), "--split", "test", "-m", "bm25", "--depth", "20", "--no-text-features",
            "--num-boost-round", "20", "--cache-dir", str(cache), "--format", "json", "--max-queries", "20"]
    if "train" in COMMANDS:
        assert main(["train", "ltr", *argv]) == 0
    else:  # before cli/train.py is integrated: the module's own parser
        import argparse

        from rankwise.cli import _train_ltr

        parser = argparse.ArgumentParser()
        _train_ltr.add_arguments(parser)
        assert _train_ltr.run(parser.parse_args(argv)) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == str(out) and report["feature_names"] == ["score:bm25", "zscore:bm25"]
    assert report["rounds_trained"] <= 20 and report["counts"]["judged_queries"] == 20
    assert rankwise.load(out).score("computer", ["computer systems", "birds"])


@pytest.mark.skipif("train" not in __import__("rankwise.cli").cli.COMMANDS, reason="cli/train.py not integrated yet")
def test_cli_mistake_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rankwise.cli import main

    status = main(["train", "ltr", str(ADI), str(tmp_path / "m"), "--split", "nope"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and "\n" not in err and "'nope'" in err and "test" in err


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"split": "nope"}, DataFormatError, ["'nope'", "available splits: test"]),
        ({"split": "test", "members": ["no-such-model"]}, UnknownModelError, ["no-such-model"]),
        ({"split": "test", "members": ["fusion:members=bm25,bm25"]}, InvalidInputError, ["fusion"]),
        ({"split": "test", "members": ["bm25", "bm25"]}, InvalidInputError, ["distinct"]),
        ({"split": "test", "members": FAST, "metadata_fields": [""]}, InvalidInputError, ["metadata fields"]),
        ({"split": "test", "members": FAST, "valid_fraction": 1.5}, InvalidInputError, ["valid_fraction", "1.5"]),
        ({"split": "test", "members": FAST, "num_boost_round": 0}, InvalidInputError, ["num_boost_round", "0"]),
    ],
)
def test_bad_training_input(tmp_path: Path, cache: Path, kwargs: dict, error: type, words: list[str]) -> None:
    with pytest.raises(error) as info:
        rankwise.train.ltr(ADI, tmp_path / "m", depth=10, cache_dir=cache, **kwargs)
    assert all(w in str(info.value) for w in words), str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ({"query": "q", "shown": ["a"], "clicked": ["z"]}, ["'z'", "not among the shown"]),
        ({"query": "", "shown": ["a"], "clicked": []}, ["query"]),
        ({"query": "q", "shown": [], "clicked": []}, ["shown", "non-empty"]),
        ({"query": "q", "shown": ["a", "a"], "clicked": []}, ["'a'", "more than once"]),
        ({"query": "q", "shown": ["nope"], "clicked": []}, ["'nope'", "not in the corpus"]),
        ({"query": "q", "shown": [{"text": "no id"}], "clicked": []}, ["needs an \"id\""]),
    ],
)
def test_bad_click_lines(tmp_path: Path, line: dict, words: list[str]) -> None:
    log = tmp_path / "clicks.jsonl"
    log.write_text('{"query": "q", "shown": ["a", "b"], "clicked": ["a"]}\n' + json.dumps(line) + "\n")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "a", "text": "alpha"}\n{"_id": "b", "text": "beta"}\n')
    with pytest.raises(InvalidInputError) as info:
        rankwise.train.ltr(log, tmp_path / "m", corpus=corpus, members=["bm25"])
    assert f"{log}:2" in str(info.value) and all(w in str(info.value) for w in words), str(info.value)


def test_clicks_without_any_click_are_refused(tmp_path: Path) -> None:
    log = tmp_path / "clicks.jsonl"
    log.write_text(json.dumps({"query": "q", "shown": [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}],
                               "clicked": []}) + "\n")
    with pytest.raises(InvalidInputError, match="no query has a clicked item"):
        rankwise.train.ltr(log, tmp_path / "m", members=["bm25"])


def test_bad_model_folders(tmp_path: Path, adi_model: tuple[Path, dict]) -> None:
    with pytest.raises(UnknownModelError):
        rankwise.load(tmp_path)  # no ltr.json: not routed to ltr
    with pytest.raises(RankwiseError, match="no ltr.json"):
        rankwise.load(tmp_path, backend="ltr")
    out, _ = adi_model
    with pytest.raises(InvalidInputError, match="'nope'.*members: 'first-stage-score', 'bm25'"):
        rankwise.load(out, member_options={"nope": {}})
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "ltr.json").write_text(json.dumps({"format": "rankwise-ltr", "version": 99}))
    with pytest.raises(InvalidInputError, match="version 99"):
        rankwise.load(broken)
    docs = [{"text": "computer"}]  # no first_stage_score: the member names what is missing
    with pytest.raises(InvalidInputError, match="first_stage_score"):
        rankwise.load(out).score("computer", docs)


def test_import_rankwise_stays_light() -> None:
    code = "import rankwise, rankwise.train, sys; print('lightgbm' in sys.modules, 'torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


@pytest.fixture(scope="module")
def bm25_model(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> Path:
    """A model whose only member is BM25 (no metadata needed): what a server or batch job gets as plain text."""
    out = tmp_path_factory.mktemp("bm25-ltr") / "model"
    rankwise.train.ltr(ADI, out, split="test", members=["bm25"], depth=20, cache_dir=cache, num_boost_round=30)
    return out


DOCS = ["computer systems for information retrieval", "birds of the northern coast", "retrieval of documents"]


def test_served_by_cli_rerank(bm25_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rankwise.cli import main

    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCS) + "\n")
    assert main(["rerank", "-q", "information retrieval", "-d", str(docs), "-m", str(bm25_model)]) == 0
    printed = capsys.readouterr().out
    expected = rankwise.load(bm25_model).rank("information retrieval", DOCS)
    assert printed.index(DOCS[expected[0].index]) < printed.index(DOCS[expected[2].index])


def test_served_by_the_server(bm25_model: Path) -> None:
    from fastapi.testclient import TestClient

    from rankwise.server.app import create_app

    model = rankwise.load(bm25_model)
    with TestClient(create_app({"ltr": model})) as client:
        reply = client.post("/v2/rerank", json={"model": "ltr", "query": "information retrieval", "documents": DOCS})
    assert reply.status_code == 200
    got = {r["index"]: r["relevance_score"] for r in reply.json()["results"]}
    want = model.score("information retrieval", DOCS)
    assert [got[i] for i in range(3)] == pytest.approx(want)


def test_served_by_batch(bm25_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    from rankwise.batch import rerank_dataset

    groups = tmp_path / "groups.jsonl"
    groups.write_text(json.dumps({"query_id": "q1", "query": "information retrieval", "candidates": DOCS}) + "\n")
    report = rerank_dataset(groups, tmp_path / "out", str(bm25_model), jsonl=tmp_path / "results.jsonl")
    assert report.pairs == 3 and report.rejects == 0
    (line,) = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    want = rankwise.load(bm25_model).score("information retrieval", DOCS)
    assert {r["doc_id"]: r["score"] for r in line["results"]} == pytest.approx({str(i): s for i, s in enumerate(want)})


def test_dev_split_is_used_for_early_stopping(tmp_path: Path, cache: Path) -> None:
    report = rankwise.train.ltr(ADI, tmp_path / "m", split="test", valid_split="test", members=["bm25"], depth=10,
                                cache_dir=cache, num_boost_round=20)
    assert report["valid"] == "adi/test" and report["valid_queries"] == report["train_queries"]
    log = tmp_path / "clicks.jsonl"
    log.write_text(json.dumps({"query": "q", "shown": [{"id": "a", "text": "x"}], "clicked": ["a"]}) + "\n")
    with pytest.raises(InvalidInputError, match="'dev'.*click log"):
        rankwise.train.ltr(log, tmp_path / "m2", valid_split="dev")


def test_a_model_moved_with_its_member_folder_still_loads(tmp_path: Path, tiny_cross_encoder: Path) -> None:
    import shutil

    models = tmp_path / "models"
    shutil.copytree(tiny_cross_encoder, models / "ce")
    log = tmp_path / "clicks.jsonl"
    log.write_text("\n".join(json.dumps(s) for s in _synthetic_sessions(random.Random(3), 40)) + "\n")
    rankwise.train.ltr(log, models / "ltr", members=["bm25", str(models / "ce")], num_boost_round=20)
    stored = json.loads((models / "ltr" / "ltr.json").read_text())["members"][1]
    assert stored["name"] == str((models / "ce").resolve()) and stored["relative"] == "../ce"
    query, docs = "otter 1", ["otter model 1", "heron other 2", "item 3 otter"]
    before = rankwise.load(models / "ltr").score(query, docs)
    moved = tmp_path / "elsewhere" / "models"
    shutil.move(str(models), str(moved))  # the absolute path stored in ltr.json no longer exists
    assert rankwise.load(moved / "ltr").score(query, docs) == pytest.approx(before, abs=1e-9)


def test_leaf_model_follows_the_training_set_size() -> None:
    from rankwise.train.lambdamart.fit import LINEAR_LEAVES_FROM, leaf_params

    names = ["score:bm25", "zscore:bm25", "text:query_tokens"]
    assert leaf_params(names, LINEAR_LEAVES_FROM) == {"linear_tree": True}
    small = leaf_params(names, LINEAR_LEAVES_FROM - 1)
    assert small == {"linear_tree": False, "monotone_constraints": [1, 1, 0]}


def test_adi_model_is_small_so_constant_leaves(adi_model: tuple[Path, dict]) -> None:
    folder, _ = adi_model
    params = json.loads((folder / "ltr.json").read_text())["params"]
    assert params["linear_tree"] is False and params["monotone_constraints"][:2] == [1, 1]
