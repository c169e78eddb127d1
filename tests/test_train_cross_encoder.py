"""Cross-encoder fine-tuning (`rankwise train cross-encoder`): real training of a tiny random BERT on a small
synthetic BEIR folder, through sentence-transformers' trainer; the folder it writes loads with rankwise's backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rankwise.errors import InvalidInputError

pytest.importorskip("sentence_transformers")
pytest.importorskip("accelerate")
pytest.importorskip("datasets")

from rankwise.evaluation import load_dataset
from rankwise.evaluation.first_stage import first_stage_run
from rankwise.train.finetune import NegativeMining, TrainingSettings, train_cross_encoder
from rankwise.train.finetune.examples import build_examples, dev_samples, split_queries

COLOURS = ["red", "green", "blue", "amber", "violet", "cyan", "olive", "coral", "ivory", "slate"]
ANIMALS = ["otter", "heron", "lynx", "bison", "gecko", "koala"]


def _write_beir(folder: Path) -> Path:
    """60 queries "<colour> <animal> habitat"; the relevant document names both, three distractors name one."""
    corpus, queries, qrels = [], [], []
    n = 0
    for colour in COLOURS:
        for animal in ANIMALS:
            q = f"q{n}"
            queries.append({"_id": q, "text": f"{colour} {animal} habitat"})
            corpus.append({"_id": f"d{n}", "title": f"The {colour} {animal}",
                           "text": f"The {colour} {animal} lives in a quiet habitat near water."})
            qrels.append((q, f"d{n}", 1))
            n += 1
    for i, colour in enumerate(COLOURS):
        for j, animal in enumerate(ANIMALS):
            other = ANIMALS[(j + 1) % len(ANIMALS)]
            corpus.append({"_id": f"x{i}-{j}", "title": f"{colour} paint",
                           "text": f"A {colour} {other} drawing; the {animal} is not in this habitat."})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (folder / "qrels").mkdir(exist_ok=True)
    (folder / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels)
    )
    return folder


@pytest.fixture(scope="module")
def beir(tmp_path_factory) -> Path:
    return _write_beir(tmp_path_factory.mktemp("beir") / "colours")


def test_examples_take_positives_and_unjudged_hard_negatives(beir, tmp_path):
    dataset = load_dataset(beir, "train")
    run = first_stage_run(dataset, 30, cache_dir=tmp_path)
    mining = NegativeMining(random_negatives=0, positives=1, bm25_negatives=3, bi_encoder_negatives=0)
    examples = build_examples(dataset, run, mining, seed=3)
    assert examples.queries_used == 60
    assert examples.counts()["by_source"] == {"positive": 60, "bm25": 180}
    for pair in examples.pairs:
        judged = dataset.qrels[pair.query_id].get(pair.doc_id, 0)
        assert (pair.label == 1.0) == (judged >= 1) == (pair.source == "positive")
        assert pair.query == dataset.queries[pair.query_id]
    # the BM25 negatives are the best-ranked unjudged candidates, in order
    first = next(p for p in examples.pairs if p.source == "bm25")
    ranked_unjudged = [d for d, _ in run[first.query_id] if d not in dataset.qrels[first.query_id]]
    negatives = [p.doc_id for p in examples.pairs if p.query_id == first.query_id and p.source == "bm25"]
    assert sorted(negatives) == sorted(ranked_unjudged[:3])
    # same seed, same pairs in the same order; a budget keeps whole queries only
    again = build_examples(dataset, run, mining, seed=3)
    assert [(p.query_id, p.doc_id) for p in again.pairs] == [(p.query_id, p.doc_id) for p in examples.pairs]
    small = build_examples(dataset, run, mining, seed=3, max_pairs=42)
    assert len(small.pairs) == 40 and small.queries_used == 10 and small.skipped["budget"] == 50


def test_examples_need_a_bi_encoder_scorer_when_asked_for_its_negatives(beir, tmp_path):
    dataset = load_dataset(beir, "train")
    run = first_stage_run(dataset, 30, cache_dir=tmp_path)
    with pytest.raises(InvalidInputError, match="bi_encoder"):
        build_examples(dataset, run, NegativeMining(random_negatives=0, bi_encoder_negatives=1), seed=0)
    # a scorer that prefers longer texts: its choice is taken, and never a judged or already-taken document
    mining = NegativeMining(random_negatives=0, bm25_negatives=1, bi_encoder_negatives=1)
    examples = build_examples(dataset, run, mining, seed=0,
                              bi_encoder=lambda q, texts: [float(len(t)) for t in texts])
    assert examples.counts()["by_source"] == {"positive": 60, "bm25": 60, "bi-encoder": 60}
    keys = [(p.query_id, p.doc_id) for p in examples.pairs]
    assert len(keys) == len(set(keys))


def test_dev_split_is_query_grouped_and_seeded():
    ids = [f"q{i}" for i in range(100)]
    train, dev = split_queries(ids, 0.1, seed=1)
    assert len(dev) == 10 and not train & dev and train | dev == set(ids)
    assert split_queries(ids, 0.1, seed=1) == (train, dev)
    assert len(split_queries(ids, 0.5, seed=1, cap=7)[1]) == 7
    with pytest.raises(InvalidInputError, match="dev_fraction"):
        split_queries(ids, 1.5, seed=1)


def test_dev_samples_list_candidates_in_first_stage_order(beir, tmp_path):
    dataset = load_dataset(beir, "train")
    run = first_stage_run(dataset, 30, cache_dir=tmp_path)
    samples = dev_samples(dataset, run, ["q0", "q1"], depth=5)
    assert [s["query"] for s in samples] == ["red otter habitat", "red heron habitat"]
    assert all(len(s["documents"]) == 5 and set(s["positive"]) <= set(s["documents"]) for s in samples)


def test_dev_samples_leave_out_a_query_with_one_candidate(beir, tmp_path):
    # sentence-transformers' evaluator raises on a one-document list (nfcorpus/dev has such queries)
    dataset = load_dataset(beir, "train")
    run = first_stage_run(dataset, 30, cache_dir=tmp_path)
    relevant = [(d, score) for d, score in run["q0"] if dataset.qrels["q0"].get(d, 0) > 0]
    lone = {**run, "q0": relevant[:1]}  # one candidate, and it is relevant
    assert len(lone["q0"]) == 1
    samples = dev_samples(dataset, lone, ["q0", "q1"], depth=5)
    assert [s["query"] for s in samples] == ["red heron habitat"]


def _settings(**kw) -> TrainingSettings:
    return TrainingSettings(**{"batch_size": 8, "max_length": 64, "learning_rate": 5e-4, "evaluations": 2, **kw})


@pytest.fixture(scope="module")
def trained(beir, tmp_path_factory, tiny_cross_encoder):
    """One real training run (2 epochs of 162 pairs), its plan, its progress calls and its report."""
    out = tmp_path_factory.mktemp("trained") / "model"
    plans, steps = [], []
    report = train_cross_encoder(
        beir, out, base_model=str(tiny_cross_encoder), dev_queries=6,
        mining=NegativeMining(random_negatives=0, bm25_negatives=2, bi_encoder_negatives=0), settings=_settings(epochs=2),
        cache_dir=out.parent / "cache", on_plan=plans.append, progress=lambda d, t: steps.append((d, t)),
    )
    return out, report, plans, steps


def test_training_reports_its_plan_progress_and_dev_metrics(trained):
    out, report, plans, steps = trained
    assert report.examples["pairs"] == 54 * 3 and report.plan["steps"] == 2 * 21
    assert plans and plans[0].steps == 42 and plans[0].estimated_seconds > 0
    assert steps[-1] == (42, 42) and [d for d, _ in steps] == sorted(d for d, _ in steps)
    assert not (out / "checkpoints").exists()  # removed after success
    saved = json.loads((out / "training.json").read_text())
    assert saved == json.loads(json.dumps(report.to_dict()))
    assert saved["examples"]["skipped_queries"]["no_relevant"] == 0
    assert [e["step"] for e in saved["dev"]][:2] == [21.0, 42.0] and saved["best_dev_ndcg_at_10"] is not None
    assert saved["loss"] and all(e["loss"] > 0 for e in saved["loss"])


def test_the_trained_folder_loads_with_the_torch_and_onnx_backends(trained):
    import rankwise

    out = trained[0]
    docs = ["The red otter lives in a quiet habitat near water.", "A red heron drawing; the otter is not here."]
    torch_scores = rankwise.load(str(out)).score("red otter habitat", docs)  # found as a cross-encoder folder
    onnx_scores = rankwise.load(str(out), backend="onnx").score("red otter habitat", docs)
    assert onnx_scores == pytest.approx(torch_scores, abs=1e-4)


def test_the_cli_prints_the_report_json_alone_on_stdout(beir, tmp_path, tiny_cross_encoder, capsys):
    from rankwise.cli import main

    status = main(["train", "cross-encoder", str(beir), str(tmp_path / "out"), "--base-model",
                   str(tiny_cross_encoder), "--bi-encoder-negatives", "0", "--max-length", "32", "--max-pairs",
                   "30", "--dev-queries", "2", "--no-progress", "--cache-dir", str(tmp_path / "cache")])
    captured = capsys.readouterr()
    assert status == 0
    assert json.loads(captured.out)["examples"]["pairs"] == 28  # nothing but the report on standard output
    assert "28 pairs from 7 queries" in captured.err  # 1 positive, 1 BM25 and 2 random negatives each


@pytest.mark.slow  # two training runs
def test_an_interrupted_run_resumes_from_its_checkpoint(beir, tmp_path, tiny_cross_encoder):
    class Stop(Exception):
        pass

    def stop_after(step: int):
        def progress(done: int, total: int) -> None:
            if done == step:
                raise Stop

        return progress

    common = {"base_model": str(tiny_cross_encoder), "dev_queries": 4, "cache_dir": tmp_path / "cache",
              "mining": NegativeMining(random_negatives=0, bm25_negatives=2, bi_encoder_negatives=0),
              "settings": _settings(epochs=2, max_length=32)}
    with pytest.raises(Stop):  # dies after step 25; checkpoints are written every 21 steps
        train_cross_encoder(beir, tmp_path / "run", progress=stop_after(25), **common)
    assert (tmp_path / "run" / "checkpoints" / "checkpoint-21").is_dir()
    with pytest.raises(InvalidInputError, match="not empty.*resume"):
        train_cross_encoder(beir, tmp_path / "run", **common)
    report = train_cross_encoder(beir, tmp_path / "run", resume=True, **common)
    assert report.resumed_from == "checkpoint-21"
    assert (tmp_path / "run" / "config.json").is_file()


def test_bad_arguments_name_the_value_and_the_fix(beir, tmp_path, tiny_cross_encoder):
    with pytest.raises(InvalidInputError, match="nothing to resume"):
        train_cross_encoder(beir, tmp_path / "none", resume=True, base_model=str(tiny_cross_encoder))
    with pytest.raises(InvalidInputError, match="max_pairs must be"):
        train_cross_encoder(beir, tmp_path / "a", max_pairs=0, base_model=str(tiny_cross_encoder))
    with pytest.raises(InvalidInputError, match="batch_size must be an int >= 1, got 0"):
        TrainingSettings(batch_size=0)
    with pytest.raises(InvalidInputError, match="at least|>= 1"):
        NegativeMining(bm25_negatives=0, bi_encoder_negatives=0, random_negatives=0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInputError, match="is a file"):
        train_cross_encoder(beir, tmp_path / "file", base_model=str(tiny_cross_encoder))


def test_cli_prints_the_plan_and_stops_on_dry_run(beir, tmp_path, tiny_cross_encoder, capsys):
    from rankwise.cli import main

    status = main(["train", "cross-encoder", str(beir), str(tmp_path / "out"), "--base-model",
                   str(tiny_cross_encoder), "--bi-encoder-negatives", "0", "--max-length", "64", "--dry-run",
                   "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert status == 0 and "216 pairs from 54 queries: 42 steps on cpu" in err and "about" in err
    assert not (tmp_path / "out" / "config.json").exists()


def test_cli_mistakes_are_one_line(beir, tmp_path, capsys):
    from rankwise.cli import main

    status = main(["train", "cross-encoder", str(tmp_path / "missing"), str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "rankwise train: error:" in err and "missing" in err
    status = main(["train", "cross-encoder", str(beir), str(tmp_path / "o2"), "--split", "test"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "test" in err


def test_random_negatives_are_unjudged_seeded_per_query_and_distinct(beir, tmp_path):
    dataset = load_dataset(beir, "train")
    run = first_stage_run(dataset, 30, cache_dir=tmp_path)
    mining = NegativeMining(bm25_negatives=1, bi_encoder_negatives=0, random_negatives=3)
    examples = build_examples(dataset, run, mining, seed=0)
    assert examples.counts()["by_source"] == {"positive": 60, "bm25": 60, "random": 180}
    keys = [(p.query_id, p.doc_id) for p in examples.pairs]
    assert len(keys) == len(set(keys))
    assert all(dataset.qrels[p.query_id].get(p.doc_id, 0) < 1 for p in examples.pairs if p.source == "random")
    # a query's draw does not depend on the seed that orders the queries, nor on the other queries in the run
    other = build_examples(dataset, run, mining, seed=5, max_pairs=50)
    drawn = lambda ex: {(p.query_id, p.doc_id) for p in ex.pairs if p.source == "random"}
    assert drawn(other) <= drawn(examples)
