"""The LTR prior: fitted z-score fusion weights that LambdaMART boosts from, saved in the manifest, added at serving."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

import rankwise
import rankwise.train
from rankwise.errors import InvalidInputError
from rankwise.train.lambdamart.prior import check_prior, fit_prior, ndcg_at_10, prior_scores
from tests.support.evaluation import ndcg10

pytest.importorskip("lightgbm")

ADI = Path("/work/shared/data/adi")
FAST = ["first-stage-score", "bm25"]
NAMES = ["score:a", "zscore:a", "zscore:b", "text:query_tokens"]


def test_ndcg_at_10_matches_the_definition() -> None:
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(1, 30))
        labels = rng.integers(0, 3, n)
        scores = rng.integers(0, 5, n).astype(float)  # ties: broken by input order
        assert ndcg_at_10(scores, labels) == pytest.approx(ndcg10(labels.tolist(), scores.tolist()))
    assert ndcg_at_10(np.array([1.0, 2.0]), np.array([0, 0])) == 0.0


def test_fit_prior_weighs_the_member_that_ranks_well() -> None:
    rng = np.random.default_rng(0)
    blocks = []
    for _ in range(30):
        labels = (rng.random(20) < 0.2).astype(int)
        good = labels + 0.3 * rng.standard_normal(20)  # member b tracks relevance, member a is noise
        noise = rng.standard_normal(20)
        x = np.column_stack([noise * 10, noise, good, np.full(20, 3.0)])
        blocks.append((x, labels))
    weights = fit_prior(blocks, NAMES)
    assert set(weights) == {"zscore:a", "zscore:b"}  # only per-query z-scores are weighed
    assert math.isclose(sum(weights.values()), 1.0, abs_tol=1e-6)
    assert weights["zscore:b"] > 0.75


def test_prior_scores_and_an_empty_prior() -> None:
    x = np.array([[5.0, 1.0, -1.0, 2.0], [3.0, -1.0, 1.0, 2.0]])
    assert prior_scores(x, NAMES, {"zscore:a": 0.25, "zscore:b": 0.75}).tolist() == [-0.5, 0.5]
    assert prior_scores(x, NAMES, {}).tolist() == [0.0, 0.0]
    with pytest.raises(InvalidInputError, match="'zscore:c'"):
        prior_scores(x, NAMES, {"zscore:c": 1.0})


@pytest.mark.parametrize(
    ("prior", "words"),
    [
        ("fitted", ["'fitted'", "'auto', 'fit', None"]),
        ({}, ["mapping"]),
        ({"c": 1.0}, ["'c'", "no member", "'a'", "'b'"]),
        ({"a": "1"}, ["'a'", "finite number"]),
        ({"a": float("nan")}, ["finite number"]),
        ({"a": True}, ["finite number"]),
    ],
)
def test_bad_priors_are_named(prior: object, words: list[str]) -> None:
    with pytest.raises(InvalidInputError) as info:
        check_prior(prior, NAMES)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_member_labels_become_their_zscore_feature() -> None:
    assert check_prior({"a": 1, "zscore:b": 2.5}, NAMES) == {"zscore:a": 1.0, "zscore:b": 2.5}
    assert check_prior("fit", NAMES) == "fit" and check_prior(None, NAMES) is None
    assert check_prior("auto", NAMES) == "auto"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not ADI.is_dir():
        pytest.skip("shared adi collection not present")
    return tmp_path_factory.mktemp("prior-cache")


def _group(cache: Path):
    from rankwise.train.lambdamart.data import beir_groups

    return beir_groups(ADI, "test", depth=30, cache_dir=cache).groups[0]


def test_trained_prior_is_saved_and_served(tmp_path: Path, cache: Path) -> None:
    out = tmp_path / "m"
    report = rankwise.train.ltr(ADI, out, split="test", members=FAST, depth=30, cache_dir=cache, seed=1)
    manifest = json.loads((out / "ltr.json").read_text())
    assert manifest["prior"] == report["prior"]
    assert set(report["prior"]) == {"zscore:first-stage-score", "zscore:bm25"}
    assert math.isclose(sum(report["prior"].values()), 1.0, abs_tol=1e-5)
    model = rankwise.load(out)
    group = _group(cache)
    rows = model.features(group.query, list(group.documents))
    import lightgbm

    trees = lightgbm.Booster(model_file=str(out / "model.txt")).predict(rows)
    expected = trees + prior_scores(rows, model.extractor.names, manifest["prior"])
    np.testing.assert_allclose(model.score(group.query, list(group.documents)), expected, rtol=0, atol=1e-12)


def test_trees_that_learn_nothing_rank_like_the_prior(tmp_path: Path, cache: Path) -> None:
    """With a vanishing learning rate the trees add ~0: the model's order is the fixed prior's order."""
    out = tmp_path / "m"
    rankwise.train.ltr(ADI, out, split="test", members=FAST, depth=30, cache_dir=cache, num_boost_round=3,
                       early_stopping=0, params={"learning_rate": 1e-12}, prior={"bm25": 1.0, "first-stage-score": 3})
    model = rankwise.load(out)
    group = _group(cache)
    docs = list(group.documents)
    rows = model.features(group.query, docs)
    fused = 3 * rows[:, model.extractor.names.index("zscore:first-stage-score")] + rows[
        :, model.extractor.names.index("zscore:bm25")]
    scores = np.asarray(model.score(group.query, docs))
    assert np.argsort(-scores, kind="stable").tolist() == np.argsort(-fused, kind="stable").tolist()


def test_no_prior_is_plain_lambdamart(tmp_path: Path, cache: Path) -> None:
    out = tmp_path / "m"
    report = rankwise.train.ltr(ADI, out, split="test", members=FAST, depth=30, cache_dir=cache, prior=None)
    assert report["prior"] == {} and json.loads((out / "ltr.json").read_text())["prior"] == {}
    model = rankwise.load(out)
    group = _group(cache)
    import lightgbm

    rows = model.features(group.query, list(group.documents))
    expected = lightgbm.Booster(model_file=str(out / "model.txt")).predict(rows)
    np.testing.assert_array_equal(np.asarray(model.score(group.query, list(group.documents))), expected)


def test_version_1_models_load_without_a_prior(tmp_path: Path, cache: Path) -> None:
    """A model saved before the prior existed (format version 1) still loads and scores with its trees alone."""
    out = tmp_path / "m"
    rankwise.train.ltr(ADI, out, split="test", members=FAST, depth=30, cache_dir=cache, prior=None)
    old = tmp_path / "old"
    shutil.copytree(out, old)
    manifest = json.loads((old / "ltr.json").read_text())
    del manifest["prior"]
    manifest["version"] = 1
    (old / "ltr.json").write_text(json.dumps(manifest))
    group = _group(cache)
    docs = list(group.documents)
    assert rankwise.load(old).score(group.query, docs) == rankwise.load(out).score(group.query, docs)


def test_a_manifest_whose_prior_names_no_feature_is_refused(tmp_path: Path, cache: Path) -> None:
    out = tmp_path / "m"
    rankwise.train.ltr(ADI, out, split="test", members=FAST, depth=30, cache_dir=cache)
    manifest = json.loads((out / "ltr.json").read_text())
    manifest["prior"] = {"zscore:minilm-bi-encoder": 1.0}
    (out / "ltr.json").write_text(json.dumps(manifest))
    with pytest.raises(InvalidInputError, match="zscore:minilm-bi-encoder"):
        rankwise.load(out)


def test_cli_prior_option(tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rankwise.cli import main

    args = ["train", "ltr", str(ADI), str(tmp_path / "m"), "--split", "test", "--depth", "30", "-m", "bm25",
            "-m", "first-stage-score", "--cache-dir", str(cache), "--format", "json"]
    assert main([*args, "--prior", "bm25=2,first-stage-score=1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["prior"] == {"zscore:bm25": 2.0, "zscore:first-stage-score": 1.0}
    assert main([*args, "--prior", "none"]) == 0
    assert json.loads(capsys.readouterr().out)["prior"] == {}
    for bad, word in (("bm25=x", "MEMBER=WEIGHT"), ("nope=1", "'nope'")):
        assert main([*args, "--prior", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and word in err, err


def test_auto_fits_a_prior_only_with_constant_leaves() -> None:
    """prior="auto": constant leaves (small training sets) boost from a fitted prior, linear leaves from zero."""
    from rankwise.train.lambdamart.fit import Matrix, train_booster

    rng = np.random.default_rng(1)
    names = ["score:a", "zscore:a", "zscore:b"]
    blocks = []
    for _ in range(12):
        labels = (rng.random(25) < 0.3).astype(int)
        a = labels + rng.standard_normal(25)
        blocks.append((np.column_stack([a, (a - a.mean()) / a.std(), rng.standard_normal(25)]), labels))
    train, valid = Matrix.stack(blocks[:9], 3), Matrix.stack(blocks[9:], 3)
    small = train_booster(train, valid, names, num_boost_round=5)
    assert not small.params["linear_tree"] and set(small.prior) == {"zscore:a", "zscore:b"}
    assert small.prior["zscore:a"] > small.prior["zscore:b"]
    linear = train_booster(train, valid, names, num_boost_round=5, params={"linear_tree": True})
    assert linear.prior == {} and linear.report["prior"] == {}
    forced = train_booster(train, valid, names, num_boost_round=5, params={"linear_tree": True}, prior="fit")
    assert set(forced.prior) == {"zscore:a", "zscore:b"}
    rows = valid.features
    trees = small.booster.predict(rows, num_iteration=small.best_iteration) if small.trees else 0.0
    np.testing.assert_allclose(small.predict(rows),
                               trees + rows[:, 1] * small.prior["zscore:a"] + rows[:, 2] * small.prior["zscore:b"])


def test_trees_that_lose_to_the_prior_on_validation_are_dropped(tmp_path: Path) -> None:
    """Validation is ranked perfectly by the prior; trees learnt on noise can only match or spoil it: dropped,
    and the saved model serves the prior alone."""
    from rankwise.train.lambdamart.fit import Matrix, train_booster
    from rankwise.train.lambdamart.model import Manifest, save_model

    rng = np.random.default_rng(5)
    names = ["score:a", "zscore:a", "zscore:b"]

    def block(labels: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z = (a - a.mean()) / a.std()
        return np.column_stack([a, z, rng.standard_normal(len(a))]), labels

    train = Matrix.stack([block((rng.random(30) < 0.3).astype(int), rng.standard_normal(30)) for _ in range(20)], 3)
    valid_blocks = []
    for _ in range(6):
        labels = (rng.random(30) < 0.3).astype(int)
        valid_blocks.append(block(labels, labels * 5.0 + rng.random(30)))  # a ranks every relevant one first
    valid = Matrix.stack(valid_blocks, 3)
    result = train_booster(train, valid, names, num_boost_round=30, prior={"a": 1.0})
    assert result.trees is False and result.report["trees_kept"] is False
    assert result.report["valid_ndcg@10_prior_alone"] == 1.0
    np.testing.assert_array_equal(result.predict(valid.features), valid.features[:, 1])
    manifest = Manifest((), (), False, tuple(names), result.params, result.best_iteration, {}, result.prior,
                        result.trees)
    save_model(tmp_path, manifest, result.booster)
    assert json.loads((tmp_path / "ltr.json").read_text())["trees"] is False


def test_served_model_without_trees_scores_the_prior(tmp_path: Path, cache: Path) -> None:
    out = tmp_path / "m"
    rankwise.train.ltr(ADI, out, split="test", members=FAST, depth=30, cache_dir=cache, prior={"bm25": 1.0})
    manifest = json.loads((out / "ltr.json").read_text())
    manifest["trees"] = False
    (out / "ltr.json").write_text(json.dumps(manifest))
    model = rankwise.load(out)
    group = _group(cache)
    rows = model.features(group.query, list(group.documents))
    expected = rows[:, model.extractor.names.index("zscore:bm25")]
    np.testing.assert_array_equal(model.score(group.query, list(group.documents)), expected)


def test_cli_table_shows_the_prior_and_dropped_trees(tmp_path: Path, cache: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from rankwise.cli import main
    from rankwise.cli._train_ltr import _table

    args = ["train", "ltr", str(ADI), str(tmp_path / "m"), "--split", "test", "--depth", "30", "-m", "bm25",
            "-m", "first-stage-score", "--cache-dir", str(cache), "--format", "table", "--prior", "bm25=2,first-stage-score=1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "prior (boosting starts from): 2.000 zscore:bm25, 1.000 zscore:first-stage-score" in out
    report = json.loads((tmp_path / "m" / "ltr.json").read_text())["report"]
    assert "trees dropped" not in _table({**report, "model": "m", "trees_kept": True})
    assert "trees dropped" in _table({**report, "model": "m", "trees_kept": False})
