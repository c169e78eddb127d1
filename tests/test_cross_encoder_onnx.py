"""The ONNX cross-encoder (rankwise.rerankers.cross_encoder.onnx) with its export (.export, .graph) and cache (.cache):
torch agreement, int8, torch-free inference, errors. One file: the three share the expensive exported fixtures.

Models are built on the spot (random tiny BERTs, seconds); the MiniLM-shaped agreement test is ``slow``.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("torch")

import rankwise
from rankwise.errors import InvalidInputError
from rankwise.rerankers.cross_encoder.cache import cached_onnx_folder, publish
from rankwise.rerankers.cross_encoder.export import FP32_FILE, INT8_FILE, MANIFEST, export_onnx, read_manifest
from rankwise.rerankers.cross_encoder.onnx import OnnxReranker
from rankwise.testing import make_tiny_cross_encoder

DATA = Path(os.environ.get("RANKWISE_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
QUERIES = [
    "how do lstm networks keep long-term memory?",
    "what causes the seasons on earth",
    "python list comprehension syntax",
]
LONG_DOC = " ".join(f"sentence {i} about gradient flow through recurrent gates and memory cells." for i in range(300))
DOCS = [
    "Long short-term memory networks use gates to keep information over many time steps.",
    "The tilt of the Earth's axis causes the seasons.",
    "A list comprehension builds a list: [x * 2 for x in items].",
    "Bananas are rich in potassium.",
    {"title": "Recurrent networks", "text": "Vanishing gradients make plain RNNs forget."},
    LONG_DOC,
    "short",
]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random BERT cross-encoder, re-initialised with larger weights (std 0.3 instead of 0.02).

    At the default init its scores hardly depend on the input (they spread over ~1e-5), so "agrees within 1e-3"
    would hold for any graph; with std 0.3 they spread over ~1, and the agreement tests mean something.
    """
    return make_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-ce") / "model", initializer_range=0.3)


@pytest.fixture(scope="session")
def exported(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fp32 + int8 export of the tiny model (the folder a user would ship to a machine without torch)."""
    return export_onnx(tiny_model, tmp_path_factory.mktemp("onnx") / "tiny-onnx", quantize="int8")


@pytest.fixture(scope="session")
def torch_ce(tiny_model: Path) -> rankwise.Reranker:
    return rankwise.load(str(tiny_model), backend="cross-encoder", device="cpu", max_length=128)


def test_export_writes_a_complete_folder(exported: Path) -> None:
    names = {p.name for p in exported.iterdir()}
    assert {FP32_FILE, INT8_FILE, MANIFEST, "tokenizer.json", "config.json"} <= names
    manifest = read_manifest(exported)
    assert manifest["files"] == {"fp32": FP32_FILE, "int8": INT8_FILE}
    assert manifest["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert manifest["optimization"]["kept"] is True
    assert manifest["graph"]["first_token_last_layer"] is True
    assert manifest["optimization"]["fused"]["Attention"] >= 1  # the last layer's attention is pruned, not fused
    assert manifest["check"]["max_abs_diff_fp32"] < 1e-4
    assert not any(n.startswith(("raw", ".tmp")) for n in names)


def test_fp32_matches_torch_including_chunked_long_document(exported: Path, torch_ce: rankwise.Reranker) -> None:
    onnx_ce = OnnxReranker(exported, max_length=128)
    assert onnx_ce.encoder.encode(QUERIES[0], [LONG_DOC]).owners.size > 1  # the long document really is chunked
    for query in QUERIES:
        expected = np.array(torch_ce.score(query, DOCS))
        got = np.array(onnx_ce.score(query, DOCS))
        assert np.abs(expected - got).max() < 1e-3, (query, expected, got)


def test_fp32_matches_torch_when_truncating(exported: Path, tiny_model: Path) -> None:
    torch_ce = rankwise.load(str(tiny_model), backend="cross-encoder", device="cpu", overflow="truncate")
    onnx_ce = OnnxReranker(exported, overflow="truncate")
    assert onnx_ce.max_length == 512
    np.testing.assert_allclose(onnx_ce.score(QUERIES[0], DOCS), torch_ce.score(QUERIES[0], DOCS), atol=1e-3)


def test_fp32_scores_spread_far_beyond_the_tolerance(exported: Path) -> None:
    scores = np.array(OnnxReranker(exported).score(QUERIES[0], DOCS))
    assert scores.max() - scores.min() > 0.1  # so the 1e-3 agreement above is a real check


def test_int8_ranks_like_fp32(exported: Path) -> None:
    """int8 keeps the ranking of 40 varied documents on the tiny model (Spearman; measured 0.93 at export time).

    A random 2-layer model has no semantically "clear" winners, so the check is rank correlation, with margin; the
    MiniLM-shaped check is the slow test below.
    """
    from scipy.stats import spearmanr

    docs = [f"document {i}: " + " ".join(str(DOCS[i % 4]).split()[: 3 + i % 9]) + f" extra words {i * 7}"
            for i in range(40)]
    fp32 = np.array(OnnxReranker(exported).score(QUERIES[0], docs))
    int8 = np.array(OnnxReranker(exported, quantize="int8").score(QUERIES[0], docs))
    assert spearmanr(fp32, int8).statistic > 0.8
    assert fp32.argmax() in np.argsort(-int8)[:3]


@pytest.mark.slow
def test_int8_agrees_with_torch_on_minilm_shaped_model(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The real MiniLM-L6 shape (trained encoder, untrained head) on 60 SciFact abstracts: fp32 equals torch,
    int8 keeps the ranking (Spearman; ~0.97 measured). The untrained head makes this harder than a trained one:
    its scores spread little, so int8 noise weighs more."""
    from scipy.stats import spearmanr

    from rankwise.testing import make_minilm_shaped_cross_encoder

    corpus = DATA / "scifact" / "corpus.jsonl"
    if not corpus.is_file():
        pytest.skip(f"no SciFact data at {corpus}")
    with corpus.open() as f:
        docs = [{"title": d["title"], "text": d["text"]} for d in map(json.loads, itertools.islice(f, 60))]
    query = "Microstructural development of the white matter in newborn brains"
    folder = make_minilm_shaped_cross_encoder(tmp_path_factory.mktemp("minilm") / "model")
    torch_scores = rankwise.load(str(folder), backend="cross-encoder", device="cpu").score(query, docs)
    cache = tmp_path_factory.mktemp("minilm-cache")
    fp32 = OnnxReranker(folder, cache_dir=cache).score(query, docs)
    int8 = OnnxReranker(folder, quantize="int8", cache_dir=cache).score(query, docs)
    assert np.abs(np.array(fp32) - np.array(torch_scores)).max() < 1e-3
    assert spearmanr(torch_scores, int8).statistic > 0.9


def test_load_through_registry(exported: Path) -> None:
    reranker = rankwise.load(str(exported), backend="onnx", quantize="int8")
    assert isinstance(reranker, OnnxReranker)
    assert reranker.model_path.name == INT8_FILE
    results = reranker.rank(QUERIES[0], DOCS, top_k=3)
    assert len(results.top_k(3)) == 3 and results.model == str(exported)


def test_cache_hit_does_not_reexport(tiny_model: Path, tmp_path: Path) -> None:
    first = OnnxReranker(tiny_model, cache_dir=tmp_path)
    entry = first.folder
    assert entry.parent == tmp_path and (entry / MANIFEST).is_file()
    stamps = {p.name: p.stat().st_mtime_ns for p in entry.iterdir()}
    second = OnnxReranker(tiny_model, cache_dir=tmp_path)
    assert second.folder == entry
    assert {p.name: p.stat().st_mtime_ns for p in entry.iterdir()} == stamps
    assert [p.name for p in tmp_path.iterdir()] == [entry.name]  # no temporary folders left behind
    assert first.score(QUERIES[1], DOCS) == second.score(QUERIES[1], DOCS)


def test_cache_key_follows_source_and_options(tiny_model: Path, tmp_path: Path) -> None:
    fp32 = cached_onnx_folder(tiny_model, cache_dir=tmp_path, optimize=False)
    assert read_manifest(fp32)["optimization"] is None
    assert cached_onnx_folder(tiny_model, cache_dir=tmp_path, optimize=True) != fp32
    config = tiny_model / "config.json"
    stat = config.stat()
    try:
        os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the model changed on disk
        assert cached_onnx_folder(tiny_model, cache_dir=tmp_path, optimize=False) != fp32
    finally:
        os.utime(config, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_default_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from rankwise.rerankers.cross_encoder.cache import default_cache_dir

    monkeypatch.setenv("RANKWISE_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "onnx"
    monkeypatch.delenv("RANKWISE_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "rankwise" / "onnx"


def test_publish_keeps_the_first_of_two_racing_writers(tmp_path: Path) -> None:
    final = tmp_path / "entry"
    for i in (1, 2):
        tmp = tmp_path / f".tmp-{i}"
        tmp.mkdir()
        (tmp / MANIFEST).write_text(json.dumps({"writer": i}))
        (tmp / FP32_FILE).write_text(f"graph {i}")
        publish(tmp, final)
    assert json.loads((final / MANIFEST).read_text()) == {"writer": 1}
    assert (final / FP32_FILE).read_text() == "graph 1"


@pytest.mark.slow
def test_concurrent_processes_share_one_cache_entry(tiny_model: Path, tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        from rankwise.rerankers.cross_encoder.cache import cached_onnx_folder
        print(cached_onnx_folder({str(tiny_model)!r}, cache_dir={str(tmp_path)!r}, quantize="int8"))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1]
    assert [p.name for p in tmp_path.iterdir()] == [Path(outs[0]).name]


def test_int8_from_an_fp32_only_folder_is_quantized_once_into_the_cache(tiny_model: Path, tmp_path: Path) -> None:
    folder = export_onnx(tiny_model, tmp_path / "fp32-only")
    assert not (folder / INT8_FILE).exists()
    cache = tmp_path / "cache"
    first = OnnxReranker(folder, quantize="int8", cache_dir=cache)
    assert first.model_path.name == INT8_FILE and first.model_path.parent.parent == cache
    stamp = first.model_path.stat().st_mtime_ns
    assert OnnxReranker(folder, quantize="int8", cache_dir=cache).model_path.stat().st_mtime_ns == stamp
    assert len(first.score(QUERIES[0], DOCS)) == len(DOCS)


def test_runs_without_torch(exported: Path) -> None:
    code = textwrap.dedent(f"""
        import sys
        from rankwise.rerankers.cross_encoder.onnx import OnnxReranker
        for quantize in (None, "int8"):
            reranker = OnnxReranker({str(exported)!r}, quantize=quantize, threads=1)
            scores = reranker.score("what is an lstm?", ["LSTMs remember.", "Bananas are yellow.", {LONG_DOC!r}])
            assert len(scores) == 3
        heavy = sorted(m for m in ("torch", "transformers", "onnx") if m in sys.modules)
        assert not heavy, heavy
        print("ok")
    """)
    env = {**os.environ, "RANKWISE_CACHE": str(exported.parent / "no-cache-needed")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert not (exported.parent / "no-cache-needed").exists()


def test_model_without_token_type_ids(tmp_path: Path) -> None:
    """A graph without a token_type_ids input is fed only what it declares, and still matches torch."""
    import shutil

    import torch
    import transformers

    torch.manual_seed(1)
    src = make_tiny_cross_encoder(tmp_path / "tmp-tok")
    folder = tmp_path / "no-types"
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                     intermediate_size=64, num_labels=1, type_vocab_size=1)
    transformers.BertForSequenceClassification(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(src / name, folder / name)
    onnx_ce = OnnxReranker(folder, cache_dir=tmp_path / "cache")
    assert onnx_ce.input_names == ["input_ids", "attention_mask"]
    torch_ce = rankwise.load(str(folder), backend="cross-encoder", device="cpu")
    np.testing.assert_allclose(onnx_ce.score(QUERIES[0], DOCS), torch_ce.score(QUERIES[0], DOCS), atol=1e-3)


def test_two_label_heads_score_the_relevant_logit(tmp_path: Path) -> None:
    import shutil

    import transformers

    src = make_tiny_cross_encoder(tmp_path / "tmp-tok")
    folder = tmp_path / "two-labels"
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                     intermediate_size=64, num_labels=2)
    transformers.BertForSequenceClassification(config).save_pretrained(folder)
    shutil.copy(src / "tokenizer.json", folder / "tokenizer.json")
    onnx_ce = OnnxReranker(folder, cache_dir=tmp_path / "cache", normalize=True)
    torch_ce = rankwise.load(str(folder), backend="cross-encoder", device="cpu", normalize=True)
    scores = onnx_ce.score(QUERIES[2], DOCS[:4])
    assert all(0.0 < s < 1.0 for s in scores)
    np.testing.assert_allclose(scores, torch_ce.score(QUERIES[2], DOCS[:4]), atol=1e-3)


def test_threads_and_session_options(exported: Path) -> None:
    reranker = OnnxReranker(exported, threads=1, spin=False)
    assert reranker.threads == 1 and reranker.workers == 1
    assert reranker.session.get_session_options().intra_op_num_threads == 1


def test_parallel_workers_give_the_same_scores_in_input_order(exported: Path) -> None:
    docs = [f"document {i}: " + " ".join(["gates"] * (i % 13 + 1)) for i in range(70)] + DOCS
    serial = OnnxReranker(exported, threads=2, workers=1, batch_size=4)
    parallel = OnnxReranker(exported, threads=2, workers=2, batch_size=4)  # ~20 batches: many in flight at once
    assert parallel.session.get_session_options().intra_op_num_threads == 1
    query = QUERIES[0]
    np.testing.assert_allclose(parallel.score(query, docs), serial.score(query, docs), rtol=1e-5, atol=1e-6)
    assert OnnxReranker(exported, threads=1, workers=4).workers == 1  # never more workers than threads
    assert OnnxReranker(exported, threads=2).workers == 2  # CPU default: one single-threaded batch per thread


# --- errors ----------------------------------------------------------------------------------------------------


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no such folder"):
        OnnxReranker(tmp_path / "does-not-exist")
    with pytest.raises(InvalidInputError, match="no such folder"):
        rankwise.load("./nowhere/model", backend="onnx")


def test_folder_without_a_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="neither an ONNX model"):
        OnnxReranker(tmp_path)


@pytest.mark.parametrize("bad", ["fp16", "INT8", 8, "int4"])
def test_bad_quantize_value(exported: Path, bad: object) -> None:
    with pytest.raises(InvalidInputError, match="quantize must be None or 'int8'"):
        OnnxReranker(exported, quantize=bad)  # type: ignore[arg-type]


def test_bad_threads_value(exported: Path) -> None:
    with pytest.raises(InvalidInputError, match="threads must be a positive integer"):
        OnnxReranker(exported, threads=0)
    with pytest.raises(InvalidInputError, match="workers must be a positive integer or None, got 0"):
        OnnxReranker(exported, workers=0)


def test_int8_only_folder_needs_quantize(exported: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "int8-only"
    shutil.copytree(exported, folder)
    (folder / FP32_FILE).unlink()
    with pytest.raises(InvalidInputError, match="holds only an int8 graph"):
        OnnxReranker(folder)
    assert OnnxReranker(folder, quantize="int8").model_path.name == INT8_FILE


def test_unknown_file_name(exported: Path) -> None:
    with pytest.raises(InvalidInputError, match="is not in"):
        OnnxReranker(exported, file_name="model_fp16.onnx")


def test_export_refuses_a_non_empty_folder(tiny_model: Path, exported: Path) -> None:
    with pytest.raises(InvalidInputError, match="not empty"):
        export_onnx(tiny_model, exported)


def test_unknown_int8_option(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="unknown int8 option"):
        export_onnx(tiny_model, tmp_path / "x", quantize="int8", int8={"symmetric": True})
    with pytest.raises(InvalidInputError, match="takes a list of strings"):
        export_onnx(tiny_model, tmp_path / "x", quantize="int8", int8={"keep_fp32": "output"})


def test_int8_can_keep_chosen_nodes_in_fp32(tiny_model: Path, tmp_path: Path) -> None:
    folder = export_onnx(tiny_model, tmp_path / "mixed", quantize="int8", int8={"keep_fp32": [r"output/dense/MatMul$"]})
    quantization = read_manifest(folder)["quantization"]
    assert quantization["keep_fp32"] == [r"output/dense/MatMul$"]
    assert quantization["kept_fp32_nodes"] >= 2  # attention-output and feed-forward-output projections
    scores = OnnxReranker(folder, quantize="int8").score(QUERIES[0], DOCS)
    assert len(scores) == len(DOCS)


def test_max_length_follows_the_one_rule_on_every_path(tiny_model: Path, tmp_path: Path) -> None:
    """A tokenizer limit of 256 gives 256 through torch, through an export's manifest, and through a folder whose
    manifest does not say (config.json + tokenizer_config.json); a length the model cannot read is refused."""
    import shutil

    folder = shutil.copytree(tiny_model, tmp_path / "capped")
    tok_config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**tok_config, "model_max_length": 256}))
    exported = export_onnx(folder, tmp_path / "capped-onnx", optimize=False)
    assert read_manifest(exported)["max_length"] == 256
    unrecorded = shutil.copytree(exported, tmp_path / "no-manifest")
    (unrecorded / MANIFEST).unlink()
    torch_ce = rankwise.load(str(folder), backend="cross-encoder", device="cpu")
    assert torch_ce.max_length == OnnxReranker(exported).max_length == OnnxReranker(unrecorded).max_length == 256
    assert OnnxReranker(exported, max_length=512).max_length == 512  # the position table allows it
    with pytest.raises(InvalidInputError, match="max_length=1024 is above what this model can read"):
        OnnxReranker(exported, max_length=1024)
