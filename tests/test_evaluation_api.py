"""evaluate(), the report, the embedding cache, `rankwise eval`, and the sanity anchors on the real
collections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rankwise.cli import main
from rankwise.evaluation import evaluate, first_stage_run, format_table, load_dataset
from rankwise.evaluation.embeddings import EmbeddingStore, bi_encoders
from tests.support.evaluation import make_beir


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_beir(tmp_path_factory.mktemp("data") / "tiny")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_evaluate_base_and_rerankers(tiny: Path, cache: Path) -> None:
    report = evaluate(
        tiny,
        ["bm25", "metadata-score", "fusion:members=bm25,metadata-score;method=rrf"],
        cache_dir=cache,
        trials=200,
    )
    assert report.base.label == "BM25 (first stage)"
    assert [s.label for s in report.systems] == [
        "bm25",
        "metadata-score",
        "fusion:members=bm25,metadata-score;method=rrf",
    ]
    same = report.system("metadata-score")
    assert same.means == report.base.means  # re-ranking by the first-stage score changes nothing
    assert report.comparisons["metadata-score"]["ndcg@10"].ties == 2
    assert set(report.base.per_query["ndcg@10"]) == {"q1", "q2"}
    cost = report.system("bm25").cost
    assert cost["documents_scored"] == sum(len(r) for r in report.base.run.values())
    assert cost["seconds_per_query"] > 0
    assert report.settings["relevance_threshold"] == 1
    assert "default for a collection" in report.settings["relevance_threshold_source"]


def test_report_files_json_and_table(tiny: Path, cache: Path, tmp_path: Path) -> None:
    report = evaluate(tiny, {"lexical": "bm25"}, cache_dir=cache, relevance_threshold=2, trials=100)
    written = report.save(tmp_path / "out")
    data = json.loads(written["report"].read_text())
    assert (
        data["settings"]["relevance_threshold"] == 2
        and data["settings"]["relevance_threshold_source"] == "given"
    )
    assert data["systems"][0]["label"] == "lexical" and "per_query" in data["systems"][0]
    assert data["dataset"]["skipped"]["unjudged_queries"] == 1
    assert (tmp_path / "out" / "runs" / "lexical.run").read_text().startswith("q1 Q0 d1 1 ")
    assert written["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = format_table(report)
    assert "grade >= 2" in table and "| lexical |" in table and "unjudged queries 1" in table


def test_duplicate_labels_and_max_queries(tiny: Path, cache: Path) -> None:
    report = evaluate(tiny, ["bm25", "bm25"], cache_dir=cache, max_queries=1, trials=50)
    assert [s.label for s in report.systems] == ["bm25", "bm25 #2"]
    assert report.settings["queries_evaluated"] == 1 and list(report.base.per_query["ndcg@10"]) == ["q1"]


def test_bad_spec_fails_before_any_work(tiny: Path, tmp_path: Path) -> None:
    from rankwise.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="bm25 does not take nope; valid options are: k1"):
        evaluate(tiny, ["bm25:nope=1"], cache_dir=tmp_path)
    assert not (tmp_path / "runs").exists()


def test_first_stage_cache_gives_identical_runs(tiny: Path, tmp_path: Path) -> None:
    data = load_dataset(tiny)
    fresh = first_stage_run(data, depth=3, cache_dir=tmp_path)
    assert len(list((tmp_path / "runs").glob("*.run"))) == 1
    assert first_stage_run(data, depth=3, cache_dir=tmp_path) == fresh
    assert fresh["q1"][0][0] == "d1" and all(s > 0 for r in fresh.values() for _, s in r)


def test_embedding_store_reuses_vectors_across_instances(tiny_cross_encoder: Path, tmp_path: Path) -> None:
    from rankwise import BiEncoderReranker, FusionReranker, load

    first = BiEncoderReranker(tiny_cross_encoder, device="cpu")
    fused = FusionReranker([load("bm25"), first])
    assert list(bi_encoders(fused)) == [first]
    texts = ["alpha beta", "gamma", "alpha beta"]
    assert EmbeddingStore(tmp_path).prepare(first, texts, "tiny") == {"computed": 2, "from_disk": 0}
    second = BiEncoderReranker(tiny_cross_encoder, device="cpu")
    assert EmbeddingStore(tmp_path).prepare(second, texts, "tiny") == {"computed": 0, "from_disk": 2}
    assert second.score("query", texts[:2]) == pytest.approx(first.score("query", texts[:2]), abs=1e-6)


def test_embedding_store_keeps_keys_whose_digest_ends_in_nul(
    tiny_cross_encoder: Path, tmp_path: Path
) -> None:
    import hashlib

    from rankwise import BiEncoderReranker

    text = next(f"doc {i}" for i in range(100_000) if hashlib.sha1(f"doc {i}".encode()).digest()[-1] == 0)
    bi = BiEncoderReranker(tiny_cross_encoder, device="cpu")
    EmbeddingStore(tmp_path).prepare(bi, [text], "nul")
    assert EmbeddingStore(tmp_path).prepare(bi, [text], "nul") == {"computed": 0, "from_disk": 1}


def test_cli_eval_prints_table_and_writes_report(
    tiny: Path, cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = (
        f"eval --data {tiny} -r bm25 --cache-dir {cache} --output {tmp_path / 'o'} --trials 100 --no-progress"
    )
    rc = main([*args.split(), "--metrics", "ndcg@10,p@1"])
    out = capsys.readouterr()
    assert rc == 0 and "| system | ndcg@10 | p@1 |" in out.out and "wrote" in out.err
    assert (tmp_path / "o" / "report.json").is_file() and (tmp_path / "o" / "delta.png").is_file()
    rc = main(["eval", "--data", str(tiny), "-r", "bm25:bogus=1", "--cache-dir", str(cache)])
    assert rc == 2 and "bm25:bogus=1" in capsys.readouterr().err


# --- sanity anchors on the real collections (../shared/data) ---------------------------------------------


def test_anchor_scifact_bm25(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    report = evaluate(data_dir / "scifact", [], cache_dir=tmp_path_factory.mktemp("scifact"))
    assert report.settings["queries_evaluated"] == 300
    assert report.base.means["ndcg@10"] == pytest.approx(0.676, abs=0.005)


def test_anchor_dl19_given_run(data_dir: Path, tmp_path: Path) -> None:
    report = evaluate(data_dir / "trec-dl-2019-passage", ["metadata-score"], cache_dir=tmp_path, trials=100)
    assert report.dataset["kind"] == "pool" and report.settings["relevance_threshold"] == 2
    assert round(report.base.means["ndcg@10"], 4) == 0.5058
    assert round(report.base.means["mrr@10"], 4) == 0.7024  # relevance >= 2, TREC DL convention
    assert report.system("metadata-score").means == report.base.means
    at_one = evaluate(data_dir / "trec-dl-2019-passage", [], cache_dir=tmp_path, relevance_threshold=1)
    assert round(at_one.base.means["recall@100"], 4) == 0.4531  # anserini's published R@100


@pytest.mark.slow
def test_bi_encoder_on_adi_with_and_without_embedding_cache(data_dir: Path, tmp_path: Path) -> None:
    cold = evaluate(data_dir / "adi", ["minilm-bi-encoder"], cache_dir=tmp_path, trials=100)
    warm = evaluate(data_dir / "adi", ["minilm-bi-encoder"], cache_dir=tmp_path, trials=100)
    uncached = evaluate(data_dir / "adi", ["minilm-bi-encoder"], use_cache=False, trials=100)
    c, w = cold.systems[0].cost, warm.systems[0].cost
    assert c["embeddings_computed"] > 0 and w["embeddings_computed"] == 0
    assert w["embeddings_from_disk"] == c["embeddings_computed"]
    for other in (warm, uncached):
        assert other.systems[0].means["ndcg@10"] == pytest.approx(cold.systems[0].means["ndcg@10"], abs=1e-6)
