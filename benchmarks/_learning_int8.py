"""Int8 on a trained cross-encoder (issue 14, item 4): ONNX int8 (dynamic and static) and OpenVINO int8 (NNCF static,
and int8 weights with run-time activation quantization) vs ONNX fp32 on the model ``rankwise train cross-encoder``
produced, on test queries it never saw.

Agreement is per query over its BM25 top-100 (Spearman, top-10 overlap, as benchmarks/throughput.py), and ranking
quality is nDCG@10 of each backend's ranking on the same queries, so a quantised model that agrees less but ranks
as well is visible as such. Static ONNX int8 and OpenVINO static int8 are calibrated on *train* queries
(throughput.calibration_pairs); OpenVINO int8-dynamic takes no calibration.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

# The OpenVINO rows are NNCF static int8 calibrated on scifact *train* pairs (as static ONNX int8); the default keeps
# the last encoder layer fp32, "first layer fp32" also the first: on the scifact model the first layer's int8 error
# is what moves documents across rank 10 most (ONNX dynamic with layer 0 fp32: overlap 0.92 vs 0.88).
BACKENDS: dict[str, dict[str, Any]] = {
    "onnx_fp32": {"quantize": None},
    "onnx_int8": {"quantize": "int8"},
    "onnx_int8_static": {"quantize": "int8-static"},
    "openvino_int8": {"backend": "openvino", "quantize": "int8"},
    "openvino_int8_first_layer_fp32": {"backend": "openvino", "quantize": "int8",
                                       "int8": {"keep_fp32": [r".*\blayer\.0\..*"]}},
    # int8 weights (asymmetric, per channel) + activations quantized per 32 values at run time; no calibration.
    # Asymmetric and 32 were chosen on scifact *train* queries (40 queries x BM25 top-100, top-10 overlap with fp32:
    # asymmetric 0.978, symmetric 0.960; run-time activation quantization off: 0.978, i.e. it costs no agreement)
    "openvino_int8_dynamic": {"backend": "openvino", "quantize": "int8-dynamic"},
}


def measure_int8(models: dict[str, Path], data: Path, cache: Path, queries: int) -> dict[str, Any]:
    """``models``: dataset name -> trained folder. Returns per dataset: agreement with fp32 and nDCG@10 per backend."""
    from throughput import agreement, calibration_pairs

    import rankwise
    from rankwise.evaluation import load_dataset
    from rankwise.evaluation.api import candidate_documents
    from rankwise.evaluation.first_stage import first_stage_run
    from rankwise.evaluation.metrics import evaluate_run

    out: dict[str, Any] = {}
    for name, folder in models.items():
        dataset = load_dataset(data / name, "test")
        run = first_stage_run(dataset, 100, cache_dir=cache)
        chosen = [q for q in dataset.queries if run.get(q)][:queries]
        scores: dict[str, list[np.ndarray]] = {}
        seconds: dict[str, float] = {}
        for label, options in BACKENDS.items():
            calibrated = options["quantize"] == "int8-static" or (options.get("backend") == "openvino"
                                                                   and options["quantize"] == "int8")
            extra = {"calibration": calibration_pairs()} if calibrated else {}
            # max_length: the model's own (its tokenizer_config says the length it was trained at, 256); reading
            # 512 tokens with a model fine-tuned on 256 cost 0.10 nDCG@10 on these queries
            reranker = rankwise.load(str(folder), **{"backend": "onnx", **options}, overflow="truncate",
                                     cache_dir=cache / "onnx", **extra)
            reranker.score("warm up", ["a short text"])
            start = time.perf_counter()
            scores[label] = [np.asarray(reranker.score(dataset.queries[q], candidate_documents(dataset, run[q])))
                             for q in chosen]
            seconds[label] = time.perf_counter() - start
        pairs = sum(len(s) for s in scores["onnx_fp32"])
        row: dict[str, Any] = {"model": folder.name, "queries": len(chosen), "pairs": pairs, "backends": {}}
        for label in BACKENDS:
            ranked = {q: list(zip((d for d, _ in run[q]), s.tolist())) for q, s in zip(chosen, scores[label])}
            ndcg = evaluate_run(ranked, {q: dataset.qrels[q] for q in chosen}, ["ndcg@10"])["ndcg@10"]
            row["backends"][label] = {
                "ndcg@10": round(float(np.mean(list(ndcg.values()))), 4),
                "pairs_per_s": round(pairs / seconds[label], 1),
                **({} if label == "onnx_fp32" else agreement(scores["onnx_fp32"], scores[label])),
            }
        out[name] = row
    return out
