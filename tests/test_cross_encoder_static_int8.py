"""Calibrated int8 for ONNX (rankwise.rerankers.cross_encoder.onnx_static) and the calibration pairs every static
int8 path shares (rankwise.rerankers.cross_encoder.calibration): SmoothQuant keeps the fp32 graph exact, static QDQ
export ranks like fp32 and is cached by model and calibration, fp32-only folders are quantized once, bad options and
bad calibration input are clear errors (fuzzed).
"""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rankwise.errors import InvalidInputError
from rankwise.rerankers.cross_encoder.calibration import (
    DEFAULT_CALIBRATION,
    calibration_batches,
    calibration_digest,
    check_calibration,
)
from tests.support.fuzzing import fuzz_settings

QUERY = "how do lstm networks keep long-term memory?"
DOCS = [
    "Long short-term memory networks use gates to keep information over many time steps.",
    "The tilt of the Earth's axis causes the seasons.",
    "Bananas are rich in potassium.",
    {"title": "Recurrent networks", "text": "Vanishing gradients make plain RNNs forget."},
    " ".join(f"sentence {i} about gradient flow through recurrent gates." for i in range(200)),
]
VARIED = [f"document {i}: " + " ".join(str(DOCS[i % 3]).split()[: 3 + i % 9]) + f" extra words {i * 7}"
          for i in range(40)]
CALIBRATION = [(QUERY, d) for d in VARIED[:8]] + [("why do we have seasons", d) for d in DOCS[:3]]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    from rankwise.testing import make_tiny_cross_encoder

    return make_tiny_cross_encoder(tmp_path_factory.mktemp("static-tiny") / "model", initializer_range=0.3)


@pytest.fixture(scope="module")
def exported(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from rankwise.rerankers.cross_encoder.export import export_onnx

    return export_onnx(tiny_model, tmp_path_factory.mktemp("static-onnx") / "tiny", quantize="int8-static",
                       calibration=CALIBRATION)


# --- calibration pairs -------------------------------------------------------------------------------------------


def test_default_calibration_is_varied_and_valid() -> None:
    assert len(DEFAULT_CALIBRATION) == 36 and check_calibration(None) == DEFAULT_CALIBRATION
    assert len({q for q, _ in DEFAULT_CALIBRATION}) == 12
    lengths = sorted(len(d.split()) for _, d in DEFAULT_CALIBRATION)
    assert lengths[0] < 15 and lengths[-1] > 90  # short and long documents


def test_check_calibration_reads_documents_as_inference_does() -> None:
    pairs = check_calibration([("q", "plain"), ("q", {"title": "T", "text": "body"}), ["q2", {"text": "x"}]])
    assert pairs == (("q", "plain"), ("q", "T\nbody"), ("q2", "x"))
    assert calibration_digest(pairs) == calibration_digest(list(pairs)) != calibration_digest(pairs[:2])


@pytest.mark.parametrize(("bad", "message"), [
    ("just a string", "must be a list of \\(query, document\\) pairs, got str"),
    ({"q": "d"}, "got dict"),
    ([], "needs 1 to 10,000 pairs"),
    ([("q", "d", "extra")], "calibration pair 0 must be a \\(query, document\\) pair"),
    ([("q", "d"), (None, "d")], "calibration pair 1: the query must be a non-empty string, got None"),
    ([("q", "d"), ("q", "d"), ("q", 5)], "calibration pair 2: the document must be a str, a dict with 'text'"),
])
def test_bad_calibration_names_the_pair(bad: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        check_calibration(bad)  # type: ignore[arg-type]


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                   max_size=3), max_leaves=8)


@fuzz_settings(60)
@given(pairs=st.one_of(JSONISH, st.lists(st.tuples(st.text(max_size=12), JSONISH), max_size=4)))
def test_any_calibration_input_is_accepted_as_string_pairs_or_refused_cleanly(pairs: object) -> None:
    try:
        checked = check_calibration(pairs)  # type: ignore[arg-type]
    except InvalidInputError:
        return
    assert checked and all(isinstance(q, str) and q.strip() and isinstance(d, str) for q, d in checked)


def test_calibration_batches_are_what_the_engine_feeds(exported: Path) -> None:
    """One pair per item (no padding in the statistics), ids exactly as the ONNX engine builds them."""
    from rankwise.rerankers.cross_encoder.onnx import OnnxReranker

    names = ["input_ids", "attention_mask", "token_type_ids"]
    items = calibration_batches(exported, [(QUERY, str(d)) for d in DOCS], names, max_length=128, pad_id=0,
                                batch_size=1)
    assert len(items) == len(DOCS) and all(i["input_ids"].shape[0] == 1 and i["attention_mask"].all() for i in items)
    engine = OnnxReranker(exported, max_length=128, overflow="truncate", threads=1).encoder
    expected = sorted(tuple(ids) for ids in engine.encode(QUERY, [str(d) for d in DOCS]).input_ids)
    assert sorted(tuple(i["input_ids"][0]) for i in items) == expected
    assert max(i["input_ids"].shape[1] for i in items) == 128  # the long document is cut at the window


# --- static int8 and SmoothQuant ---------------------------------------------------------------------------------


def test_static_export_writes_a_calibrated_qdq_graph_that_ranks_like_fp32(exported: Path) -> None:
    import onnx
    from scipy.stats import spearmanr

    from rankwise.rerankers.cross_encoder.export import STATIC_INT8_FILE, read_manifest
    from rankwise.rerankers.cross_encoder.onnx import OnnxReranker

    manifest = read_manifest(exported)
    assert manifest["files"] == {"fp32": "model.onnx", "int8_static": STATIC_INT8_FILE}
    quantization = manifest["quantization"]
    assert quantization["method"] == "static" and quantization["calibrate_method"] == "percentile"
    assert quantization["calibration_pairs"] == len(CALIBRATION) and quantization["smoothed_matmuls"] >= 2
    ops = collections.Counter(n.op_type for n in onnx.load(str(exported / STATIC_INT8_FILE)).graph.node)
    assert ops["QuantizeLinear"] >= 2 and ops["DequantizeLinear"] > ops["QuantizeLinear"]  # activations and weights
    static = OnnxReranker(exported, quantize="int8-static", threads=1)
    assert static.model_path.name == STATIC_INT8_FILE
    fp32 = np.array(OnnxReranker(exported, threads=1).score(QUERY, VARIED))
    got = np.array(static.score(QUERY, VARIED))
    assert spearmanr(fp32, got).statistic > 0.8
    assert fp32.argmax() in np.argsort(-got)[:3]


def test_smooth_graph_keeps_the_fp32_logits(exported: Path) -> None:
    import onnx

    from rankwise.rerankers.cross_encoder.graph import max_diff
    from rankwise.rerankers.cross_encoder.onnx_static import smooth_graph

    model = onnx.load(str(exported / "model.onnx"))
    names = [i.name for i in model.graph.input]
    items = calibration_batches(exported, check_calibration(CALIBRATION), names, max_length=128, pad_id=0)
    sample = items[0]
    expected = _run(exported / "model.onnx", sample)
    n_mul = sum(n.op_type == "Mul" for n in model.graph.node)
    assert smooth_graph(model, items, alpha=0.5) >= 2
    assert sum(n.op_type == "Mul" for n in model.graph.node) > n_mul
    smoothed = exported.parent / "smoothed.onnx"
    onnx.save(model, str(smoothed))
    assert max_diff(smoothed, sample, expected) < 1e-4


def test_static_int8_is_cached_by_model_and_calibration(tiny_model: Path, tmp_path: Path) -> None:
    from rankwise.rerankers.cross_encoder.onnx import OnnxReranker

    options = {"calibrate_method": "minmax", "subset_size": 5}  # min-max: no padding to the longest pair, quicker
    first = OnnxReranker(tiny_model, quantize="int8-static", cache_dir=tmp_path, calibration=CALIBRATION,
                         int8=options, threads=1)
    stamps = {p.name: p.stat().st_mtime_ns for p in first.folder.iterdir()}
    again = OnnxReranker(tiny_model, quantize="int8-static", cache_dir=tmp_path, calibration=CALIBRATION,
                         int8=options, threads=1)
    assert again.folder == first.folder
    assert {p.name: p.stat().st_mtime_ns for p in again.folder.iterdir()} == stamps
    other = OnnxReranker(tiny_model, quantize="int8-static", cache_dir=tmp_path, calibration=CALIBRATION[:3],
                         int8=options, threads=1)
    assert other.folder != first.folder
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.folder.name, other.folder.name])


def test_static_int8_of_an_fp32_only_folder_is_quantized_once(tiny_model: Path, tmp_path: Path) -> None:
    from rankwise.rerankers.cross_encoder.export import STATIC_INT8_FILE, export_onnx
    from rankwise.rerankers.cross_encoder.onnx import OnnxReranker

    folder = export_onnx(tiny_model, tmp_path / "fp32-only")
    cache = tmp_path / "cache"
    kwargs = {"quantize": "int8-static", "cache_dir": cache, "calibration": CALIBRATION[:4],
              "int8": {"calibrate_method": "minmax"}, "threads": 1}
    first = OnnxReranker(folder, **kwargs)
    assert first.model_path.name == STATIC_INT8_FILE and first.model_path.parent.parent == cache
    stamp = first.model_path.stat().st_mtime_ns
    assert OnnxReranker(folder, **kwargs).model_path.stat().st_mtime_ns == stamp
    assert len(first.score(QUERY, DOCS)) == len(DOCS)


@pytest.mark.parametrize(("options", "message"), [
    ({"calibrate_method": "kl"}, "'calibrate_method' must be one of minmax, percentile, entropy"),
    ({"smooth_quant_alpha": 1.5}, "'smooth_quant_alpha' must be in \\[0, 1\\], or -1"),
    ({"subset_size": 0}, "'subset_size' must be a positive integer"),
    ({"keep_fp32": "output"}, "takes a list of strings"),
    ({"reduce_range": True}, "unknown static int8 option 'reduce_range'"),
])
def test_bad_static_options_are_clear_errors(options: dict, message: str, tiny_model: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from rankwise.rerankers.cross_encoder.export import export_onnx

    with pytest.raises(InvalidInputError, match=message):
        export_onnx(tiny_model, tmp_path / "x", quantize="int8-static", int8=options)


def _run(path: Path, feed: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, feed)[0], dtype=np.float64)
