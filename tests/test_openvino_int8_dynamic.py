"""OpenVINO ``quantize="int8-dynamic"`` (rankwise.rerankers.cross_encoder.openvino_weights): int8 weights with the
run-time activation group size stored in the IR, no calibration; it ranks like fp32, is cached like static int8, runs
without torch, and its options and misuse fail with errors that name the value.

The model is the random tiny BERT with sharp weights (std 0.3) of conftest, built once per session.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")
pytest.importorskip("torch")

from rankwise.errors import InvalidInputError
from rankwise.rerankers.cross_encoder.openvino import OpenVinoReranker
from rankwise.rerankers.cross_encoder.openvino_cache import cached_openvino_folder
from rankwise.rerankers.cross_encoder.openvino_export import FP32_XML, export_openvino, read_ov_manifest
from rankwise.rerankers.cross_encoder.openvino_weights import DYNAMIC_INT8_XML, ir_group_size
from tests.support.isolated import run_python

QUERY = "how do lstm networks keep long-term memory?"
DOCS = [f"document {i}: long short-term memory gates keep information over {i} steps, " + "word " * (i % 13)
        for i in range(40)]


@pytest.fixture(scope="module")
def tiny_model(sharp_tiny_cross_encoder: Path) -> Path:
    return sharp_tiny_cross_encoder


@pytest.fixture(scope="module")
def exported(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_openvino(tiny_model, tmp_path_factory.mktemp("ov-dyn") / "tiny-ov", quantize="int8-dynamic")


@pytest.fixture(scope="module")
def fp32_scores(exported: Path) -> np.ndarray:
    return np.array(OpenVinoReranker(exported, max_length=128, threads=1).score(QUERY, DOCS))


def _read_ir(path: Path):
    import openvino as ov

    return ov.Core().read_model(str(path))


def test_export_writes_int8_weights_and_the_group_size_into_the_ir(exported: Path) -> None:
    manifest = read_ov_manifest(exported)
    assert manifest["files"] == {"fp32": FP32_XML, "int8-dynamic": DYNAMIC_INT8_XML}
    quantization = manifest["quantization"]
    assert quantization["weights"] == "asymmetric" and quantization["group_size"] == 32
    assert quantization["keep_fp32"] == [] and "calibration_pairs" not in quantization
    assert quantization["int8_weight_matrices"] >= 2 * 6  # 2 layers x (Q, K, V, output, FFN in, FFN out) at least
    assert ir_group_size(_read_ir(exported / DYNAMIC_INT8_XML)) == 32
    assert ir_group_size(_read_ir(exported / FP32_XML)) is None
    assert 0 < manifest["check"]["max_abs_diff_int8_dynamic"] < 0.25  # logits of the sample pairs span ~1


def test_int8_dynamic_ranks_like_fp32(exported: Path, fp32_scores: np.ndarray) -> None:
    from scipy.stats import spearmanr

    reranker = OpenVinoReranker(exported, quantize="int8-dynamic", max_length=128, threads=1)
    assert reranker.model_path.name == DYNAMIC_INT8_XML and reranker.quantize == "int8-dynamic"
    scores = np.array(reranker.score(QUERY, DOCS))
    assert np.ptp(fp32_scores) > 0.5  # the scores spread, so the agreement below means something
    assert spearmanr(fp32_scores, scores).statistic > 0.95
    assert np.abs(scores - fp32_scores).max() < 0.2 * np.ptp(fp32_scores)
    assert set(np.argsort(-scores)[:5]) & set(np.argsort(-fp32_scores)[:5])


def test_an_fp32_folder_is_compressed_once_into_the_cache_and_the_options_key_it(
        tiny_model: Path, fp32_scores: np.ndarray, tmp_path: Path) -> None:
    folder = export_openvino(tiny_model, tmp_path / "fp32-only")
    cache = tmp_path / "cache"
    first = OpenVinoReranker(folder, quantize="int8-dynamic", cache_dir=cache, max_length=128, threads=1)
    assert first.model_path.name == DYNAMIC_INT8_XML and first.model_path.parent.parent == cache
    stamp = first.model_path.stat().st_mtime_ns
    again = OpenVinoReranker(folder, quantize="int8-dynamic", cache_dir=cache, threads=1)
    assert again.model_path == first.model_path and again.model_path.stat().st_mtime_ns == stamp
    # group_size 0: int8 weights, fp32 arithmetic -- a separate entry, and closer to fp32 than nothing at all
    off = OpenVinoReranker(folder, quantize="int8-dynamic", int8={"group_size": 0}, cache_dir=cache,
                           max_length=128, threads=1)
    assert off.model_path.parent != first.model_path.parent
    assert ir_group_size(_read_ir(off.model_path)) == 0
    assert np.abs(np.array(off.score(QUERY, DOCS)) - fp32_scores).max() < 0.1
    # a Hugging Face folder is exported with both IRs in one cache entry
    entry = cached_openvino_folder(tiny_model, quantize="int8-dynamic", cache_dir=cache)
    assert (entry / FP32_XML).is_file() and (entry / DYNAMIC_INT8_XML).is_file()


def test_runs_without_torch_or_nncf(exported: Path) -> None:
    out = run_python(f"""
        import sys
        from rankwise.rerankers.cross_encoder.openvino import OpenVinoReranker
        reranker = OpenVinoReranker({str(exported)!r}, quantize="int8-dynamic", threads=1)
        assert len(reranker.score("what is an lstm?", ["LSTMs remember.", "Bananas."])) == 2
        print(sorted(m for m in ("torch", "transformers", "nncf") if m in sys.modules))
    """)
    assert out.strip() == "[]"


def test_an_avx2_isa_mask_keeps_activations_fp32_instead_of_failing(exported: Path, fp32_scores: np.ndarray) -> None:
    """Under ONEDNN_MAX_CPU_ISA=AVX2 OpenVINO still plans run-time activation quantization (it checks the CPU, not
    the mask) and fails to create the layer; rankwise compiles such IRs with group size 0 there. A subprocess, since
    oneDNN reads the mask once per process."""
    out = run_python(f"""
        import json
        from rankwise.rerankers.cross_encoder.openvino import OpenVinoReranker
        reranker = OpenVinoReranker({str(exported)!r}, quantize="int8-dynamic", max_length=128, threads=1)
        scores = reranker.score({QUERY!r}, {DOCS!r})
        print(json.dumps([int(reranker.compiled.get_property("DYNAMIC_QUANTIZATION_GROUP_SIZE")), scores]))
    """, env={"ONEDNN_MAX_CPU_ISA": "AVX2"})
    group_size, scores = json.loads(out.strip().splitlines()[-1])
    assert group_size == 0
    assert np.abs(np.array(scores) - fp32_scores).max() < 0.2 * np.ptp(fp32_scores)


def test_an_ir_folder_without_fp32_names_what_to_pass(exported: Path, tmp_path: Path) -> None:
    import shutil

    folder = shutil.copytree(exported, tmp_path / "dynamic-only")
    (folder / FP32_XML).unlink()
    with pytest.raises(InvalidInputError, match=r"holds only an int8 IR \(openvino_model_int8_dynamic.xml\); pass "
                                                r"quantize='int8-dynamic'"):
        OpenVinoReranker(folder)
    with pytest.raises(InvalidInputError, match="has no openvino_model.xml to quantize"):
        OpenVinoReranker(folder, quantize="int8")
    # an IR under a name rankwise does not know: the error lists it, file_name= runs it
    (folder / DYNAMIC_INT8_XML).rename(folder / "other.xml")
    (folder / DYNAMIC_INT8_XML).with_suffix(".bin").rename(folder / "other.bin")
    with pytest.raises(InvalidInputError, match=r"has no openvino_model.xml; pick one of its IRs with file_name= "
                                                r"\(other.xml\)"):
        OpenVinoReranker(folder)
    assert len(OpenVinoReranker(folder, file_name="other.xml", threads=1).score(QUERY, DOCS[:3])) == 3


def test_calibration_and_bad_options_are_errors_that_name_the_value(tiny_model: Path, exported: Path,
                                                                    tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="calibration pairs are for quantize='int8'"):
        OpenVinoReranker(exported, quantize="int8-dynamic", calibration=[("q", "d")])
    bad = [({"preset": "mixed"}, "unknown int8-dynamic option 'preset'; valid: weights, group_size"),
           ({"weights": "asym"}, "'weights' must be 'asymmetric' or 'symmetric', got 'asym'"),
           ({"group_size": -1}, "'group_size' must be a non-negative integer .* got -1"),
           ({"group_size": True}, "'group_size' must be a non-negative integer .* got True"),
           ({"keep_fp32": "layer.0"}, "'keep_fp32' takes a list of strings, got the string 'layer.0'")]
    for options, message in bad:
        with pytest.raises(InvalidInputError, match=message):
            export_openvino(tiny_model, tmp_path / "x", quantize="int8-dynamic", int8=options)
    with pytest.raises(InvalidInputError, match="calibration pairs are for quantize='int8'"):
        export_openvino(tiny_model, tmp_path / "x", quantize="int8-dynamic", calibration=[("q", "d")])
    assert not (tmp_path / "x").exists()  # checked before any work
