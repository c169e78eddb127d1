"""Cross-encoder throughput: sentence-transformers (reference) vs rankwise torch, ONNX (fp32, dynamic and static
int8) and OpenVINO (fp32, bf16, int8).

Model: a cross-encoder of exactly ms-marco-MiniLM-L-6-v2's shape (rankwise.testing.make_minilm_shaped_cross_encoder;
untrained head, so only speed and agreement between backends mean something, never ranking quality).
Pairs: SciFact test queries (in qrels order) x their BM25 top-100 (bm25s, k1=0.9, b=0.4, English stemmer and
stopwords, title + text), ``--pairs`` of them (1,000 = 10 queries x 100 abstracts). Each backend scores one query's
100 candidates per call, as a re-ranker does; all run in one process on the same pairs, so the ratios hold on a
noisy machine.

For fairness every backend truncates at 512 tokens like the reference (``overflow="truncate"``); the default
chunking mode (max-passage over overlapping 512-token windows) is reported separately because it scores more tokens.

Calibrated int8 (``onnx_int8_static``, ``openvino_int8``) is calibrated on SciFact *train* queries x their BM25
candidates (:func:`calibration_pairs`: 300 pairs, 30 queries x 10 candidates, half from the top 5, half drawn from
ranks 6-100), never on the test queries measured. Exports are cached under ``benchmarks/.cache``.

The model's head is untrained: agreement figures are between backends on the MiniLM-shaped model (no trained
cross-encoder exists in this project yet), and a trained model's wider score spread should agree at least as well.

    python benchmarks/throughput.py                        # CPU, 1,000 pairs -> benchmarks/results/throughput.json
    python benchmarks/throughput.py --quick                # 300 pairs, to prove it runs (-> throughput_quick.json)
    python benchmarks/throughput.py --configs reference,onnx_int8 --pairs 300 --out /tmp/t.json
    python benchmarks/throughput.py --device cuda           # 5,000 pairs, torch bf16 -> throughput_cuda.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _report import code_version, machine_info, write_report

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RANKWISE_DATA", ROOT / ".." / "shared" / "data")).resolve()
CACHE = ROOT / "benchmarks" / ".cache"
RESULTS = ROOT / "benchmarks" / "results"
CPU_CONFIGS = ("reference", "torch_fp32", "onnx_fp32", "onnx_int8", "onnx_int8_chunk", "onnx_int8_static",
               "openvino_fp32", "openvino_bf16", "openvino_int8")
OTHER_CONFIGS = ("torch_bf16", "openvino_int8_bf16", "openvino_int8_default_calibration",  # on request (--configs)
                 "openvino_int8_dynamic")
QUICK_PAIRS = 300
AGREEMENT_NOTE = ("agreement (Spearman, top-10 overlap, max abs diff) is against the sentence-transformers fp32 "
                  "reference on the MiniLM-shaped model with an untrained head; pass --model with a trained "
                  "cross-encoder (rankwise train cross-encoder) for the agreement that matters")
TRAINED_NOTE = ("agreement (Spearman, top-10 overlap, max abs diff) is against the sentence-transformers fp32 "
                "reference on a cross-encoder fine-tuned with `rankwise train cross-encoder` (MiniLM-L6 shape, so "
                "the speed figures are those of ms-marco-MiniLM-L-6-v2)")
CUDA_CONFIGS = ("reference", "torch_bf16", "torch_fp32", "torch_bf16_groups")
# "<config>_groups": all queries in one score_groups() call (how the server's dynamic batcher feeds a GPU), timed
# after the interleaved per-query rounds.
Group = tuple[str, str, list[str]]  # (query id, query, candidate texts)


def load_pairs(n_pairs: int, per_query: int = 100, data: Path = DATA) -> list[Group]:
    """SciFact test queries x BM25 top-``per_query`` candidates, ``n_pairs`` pairs in all (whole queries first)."""
    import bm25s
    import Stemmer

    from rankwise.documents import document_text
    from rankwise.types import Document

    folder = data / "scifact"
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").open()]
    queries = {q["_id"]: q["text"] for q in map(json.loads, (folder / "queries.jsonl").open())}
    with (folder / "qrels" / "test.tsv").open() as f:
        rows = [r for r in csv.reader(f, delimiter="\t")][1:]
    qids = list(dict.fromkeys(r[0] for r in rows))[: -(-n_pairs // per_query)]
    stemmer = Stemmer.Stemmer("english")
    texts = [document_text(Document(text=d["text"], title=d.get("title") or None)) for d in corpus]
    retriever = bm25s.BM25(k1=0.9, b=0.4)
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    tokens = bm25s.tokenize([queries[q] for q in qids], stopwords="en", stemmer=stemmer, show_progress=False)
    hits, _ = retriever.retrieve(tokens, k=per_query, show_progress=False)
    groups, left = [], n_pairs
    for qid, row in zip(qids, hits):
        take = min(per_query, left)
        groups.append((qid, queries[qid], [texts[i] for i in row[:take]]))
        left -= take
    return groups


def calibration_pairs(n_queries: int = 30, per_query: int = 10, data: Path = DATA) -> list[tuple[str, str]]:
    """SciFact *train* queries x BM25 candidates from the corpus, for static int8 calibration (never test queries).

    Each query contributes its top ``per_query // 2`` candidates and as many drawn (seeded) from ranks
    ``per_query // 2 + 1`` to 100, so calibration sees relevant and irrelevant pairs as a re-ranker does.
    """
    import random

    import bm25s
    import Stemmer

    from rankwise.documents import document_text
    from rankwise.types import Document

    folder = data / "scifact"
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").open()]
    queries = {q["_id"]: q["text"] for q in map(json.loads, (folder / "queries.jsonl").open())}
    with (folder / "qrels" / "train.tsv").open() as f:
        qids = list(dict.fromkeys(r[0] for r in list(csv.reader(f, delimiter="\t"))[1:]))[:n_queries]
    stemmer = Stemmer.Stemmer("english")
    texts = [document_text(Document(text=d["text"], title=d.get("title") or None)) for d in corpus]
    retriever = bm25s.BM25(k1=0.9, b=0.4)
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    tokens = bm25s.tokenize([queries[q] for q in qids], stopwords="en", stemmer=stemmer, show_progress=False)
    hits, _ = retriever.retrieve(tokens, k=100, show_progress=False)
    rng, top = random.Random(0), per_query // 2
    pairs = []
    for qid, row in zip(qids, hits):
        picks = list(row[:top]) + rng.sample(list(row[top:]), per_query - top)
        pairs.extend((queries[qid], texts[i]) for i in picks)
    return pairs


def model_folder() -> Path:
    from rankwise.testing import make_minilm_shaped_cross_encoder

    return make_minilm_shaped_cross_encoder(CACHE / "minilm-shaped-ce")


# --- scorers: each returns score(query, texts) -> np.ndarray ------------------------------------------------------


def reference_scorer(folder: Path, device: str, dtype: str = "fp32", batch_size: int = 32) -> Callable:
    import torch
    from sentence_transformers import CrossEncoder

    model_kwargs = {"dtype": torch.bfloat16} if dtype == "bf16" else {}
    ce = CrossEncoder(str(folder), device=device, max_length=512, activation_fn=torch.nn.Identity(),
                      model_kwargs=model_kwargs)
    return lambda q, docs: np.asarray(ce.predict([(q, d) for d in docs], batch_size=batch_size,
                                                 show_progress_bar=False), dtype=np.float64)


def rankwise_scorer(backend: str, folder: Path, grouped: bool = False, **options: Any) -> Callable:
    import rankwise

    reranker = rankwise.load(str(folder), backend=backend, **options)
    if grouped:
        return lambda groups: [np.asarray(s, dtype=np.float64)
                               for s in reranker.score_groups([(q, docs) for _, q, docs in groups])]
    return lambda q, docs: np.asarray(reranker.score(q, docs), dtype=np.float64)


def build(config: str, folder: Path, device: str, threads: int) -> Callable:
    onnx_cache = CACHE / "onnx"
    if config.startswith("openvino_"):
        return openvino_scorer(config, folder, threads)
    if config.endswith("_groups"):
        base = config.removesuffix("_groups")
        if not base.startswith("torch_"):
            raise SystemExit(f"{config!r}: grouped scoring is measured for the torch configs only")
        return rankwise_scorer("cross-encoder", folder, grouped=True, device=device, dtype=base.split("_")[1],
                               overflow="truncate", max_length=512)
    if config == "reference":
        return reference_scorer(folder, device)
    if config in ("torch_fp32", "torch_bf16"):
        return rankwise_scorer("cross-encoder", folder, device=device, dtype=config.split("_")[1],
                               overflow="truncate", max_length=512)
    if config.startswith("onnx_"):
        quantize = "int8-static" if config.endswith("_static") else "int8" if "int8" in config else None
        overflow = "chunk" if config.endswith("_chunk") else "truncate"
        extra = {"calibration": calibration_pairs()} if quantize == "int8-static" else {}
        return rankwise_scorer("onnx", folder, quantize=quantize, overflow=overflow, max_length=512,
                               cache_dir=onnx_cache, threads=threads, **extra)
    raise SystemExit(f"unknown config {config!r}; choose from {', '.join(CPU_CONFIGS + OTHER_CONFIGS + CUDA_CONFIGS)}")


def openvino_scorer(config: str, folder: Path, threads: int) -> Callable:
    """``openvino_fp32`` / ``_bf16`` (fp32 IR computed in bf16) / ``_int8`` (NNCF, SciFact-train calibration) /
    ``_int8_bf16`` / ``_int8_default_calibration`` (the built-in general pairs) / ``_int8_dynamic`` (int8 weights,
    activations quantized at run time)."""
    options: dict[str, Any] = {"precision": "bf16" if config.endswith("_bf16") else "f32"}
    if config == "openvino_int8_dynamic":
        options["quantize"] = "int8-dynamic"  # no calibration
    elif "_int8" in config:
        options["quantize"] = "int8"
        if not config.endswith("_default_calibration"):
            options["calibration"] = calibration_pairs()
    elif config not in ("openvino_fp32", "openvino_bf16"):
        raise SystemExit(f"unknown config {config!r}; choose from {', '.join(CPU_CONFIGS + OTHER_CONFIGS)}")
    return rankwise_scorer("openvino", folder, overflow="truncate", max_length=512, cache_dir=CACHE / "openvino",
                           threads=threads, **options)


# --- measuring -----------------------------------------------------------------------------------------------------


def timed_rounds(scorers: dict[str, Callable], groups: list[Group], sync: Callable[[], None]
                 ) -> tuple[dict[str, list[np.ndarray]], dict[str, float], dict[str, float]]:
    """Score every group with every scorer, interleaved (group by group, rotating the order).

    Other processes share these machines; interleaving spreads their load evenly over the configurations, so the
    ratios hold even when the absolute numbers move.
    """
    names = list(scorers)
    for name in names:  # warm-up: allocations, thread pools, kernels
        scorers[name](groups[0][1], groups[0][2][:8])
    scores: dict[str, list[np.ndarray]] = {n: [] for n in names}
    seconds = dict.fromkeys(names, 0.0)
    cpu = dict.fromkeys(names, 0.0)
    for i, (_, query, docs) in enumerate(groups):
        for name in names[i % len(names):] + names[: i % len(names)]:
            sync()
            start, cpu_start = time.perf_counter(), time.process_time()
            scores[name].append(scorers[name](query, docs))
            sync()
            seconds[name] += time.perf_counter() - start
            cpu[name] += time.process_time() - cpu_start
    return scores, seconds, cpu


def timed_once(score_all: Callable, groups: list[Group], sync: Callable[[], None]
               ) -> tuple[list[np.ndarray], float, float]:
    """One call over every group (after a warm-up call on a few pairs)."""
    score_all([(groups[0][0], groups[0][1], groups[0][2][:8])])
    sync()
    start, cpu_start = time.perf_counter(), time.process_time()
    out = score_all(groups)
    sync()
    return out, time.perf_counter() - start, time.process_time() - cpu_start


def summarize(config: str, scores: dict[str, list[np.ndarray]], seconds: dict[str, float],
              cpu: dict[str, float], n_pairs: int, folder: Path, groups: list[Group]) -> dict[str, Any]:
    """Rates, ratios to the reference, and agreement with it, for one configuration."""
    entry: dict[str, Any] = {"seconds": round(seconds[config], 3),
                             "pairs_per_s": round(n_pairs / seconds[config], 2),
                             "cpu_seconds": round(cpu[config], 3)}
    if config != "reference":
        entry["speedup_vs_reference"] = round(seconds["reference"] / seconds[config], 3)
        entry["cpu_speedup_vs_reference"] = round(cpu["reference"] / cpu[config], 3)
        entry.update({k: float(f"{v:.4g}") for k, v in agreement(scores["reference"], scores[config]).items()})
    if config.endswith("_chunk"):
        entry["passages"] = count_passages(folder, groups)
        entry["passages_per_s"] = round(entry["passages"] / seconds[config], 2)
        entry["note"] = ("default overflow='chunk': documents over 512 tokens are scored on several passages "
                         "(max-passage), so 'pairs' here are documents")
    if config.endswith("_groups"):
        entry["note"] = "all queries in one score_groups() call, timed after the interleaved rounds"
    return entry


def count_passages(folder: Path, groups: list[Group]) -> int:
    """(query, passage) pairs the default chunking mode scores for these groups (512-token windows)."""
    from rankwise.rerankers.cross_encoder.pairs import PairEncoder, load_fast_tokenizer

    encoder = PairEncoder(load_fast_tokenizer(folder), max_length=512)
    return sum(len(encoder.encode(query, docs).input_ids) for _, query, docs in groups)


def agreement(ref: list[np.ndarray], other: list[np.ndarray]) -> dict[str, float]:
    """Mean per-query Spearman, mean top-10 overlap and max abs score difference against the reference."""
    from scipy.stats import spearmanr

    rhos, overlaps, diffs = [], [], []
    for a, b in zip(ref, other):
        rhos.append(float(spearmanr(a, b).statistic))
        top = lambda s: set(np.argsort(-s, kind="stable")[:10].tolist())
        overlaps.append(len(top(a) & top(b)) / min(10, len(a)))
        diffs.append(float(np.abs(a - b).max()))
    return {"spearman_mean": float(np.mean(rhos)), "spearman_min": float(np.min(rhos)),
            "top10_overlap_mean": float(np.mean(overlaps)), "max_abs_diff": float(np.max(diffs))}


def _trained_from(folder: Path) -> str:
    report = folder / "training.json"
    if not report.is_file():
        return "no training.json"
    data = json.loads(report.read_text())
    return f"fine-tuned on {Path(data['data']).name} train, {data['examples']['pairs']} pairs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=None, help="pairs to score (default 1,000 CPU, 5,000 CUDA)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--configs", default=None, help=f"comma list (CPU default: {','.join(CPU_CONFIGS)}; "
                        f"also: {','.join(OTHER_CONFIGS)})")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_PAIRS} pairs, to prove it runs (provisional)")
    parser.add_argument("--max-isa", default=None, metavar="ISA",
                        help="cap oneDNN's instruction set (ONEDNN_MAX_CPU_ISA, e.g. AVX512_CORE_VNNI: no AMX; AVX2) "
                             "to read an AMX machine as a VNNI or AVX2 one; OpenVINO and torch's oneDNN kernels obey "
                             "it, onnxruntime's MLAS does not (recorded in the JSON)")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime/torch threads (default: all CPUs)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/...)")
    parser.add_argument("--model", type=Path, default=None,
                        help="a trained cross-encoder folder (default: the MiniLM-shaped model, untrained head)")
    args = parser.parse_args(argv)
    cuda = args.device.startswith("cuda")
    n_pairs = args.pairs or (QUICK_PAIRS if args.quick else 5000 if cuda else 1000)
    configs = args.configs.split(",") if args.configs else list(CUDA_CONFIGS if cuda else CPU_CONFIGS)
    if configs[0] != "reference":
        configs.insert(0, "reference")
    threads = args.threads or len(os.sched_getaffinity(0))
    if args.max_isa:  # before torch / openvino load oneDNN: it reads the variable once
        os.environ["ONEDNN_MAX_CPU_ISA"] = args.max_isa
    import torch

    torch.set_num_threads(threads)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    folder = args.model or model_folder()
    groups = load_pairs(n_pairs)
    result: dict[str, Any] = {
        "benchmark": "throughput", "device": args.device, "pairs": n_pairs, "queries": len(groups),
        "dataset": "scifact test queries x BM25 top-100 (bm25s k1=0.9 b=0.4, stemmed, title+text)",
        "model": ("ms-marco-MiniLM-L-6-v2-shaped cross-encoder (untrained head)" if args.model is None else
                  f"trained cross-encoder {args.model.name} ({_trained_from(args.model)})"), "max_length": 512,
        "agreement_note": AGREEMENT_NOTE if args.model is None else TRAINED_NOTE, "quick": bool(args.quick), "code_version": code_version(),
        "calibration": ("static int8 configs: SciFact train queries x BM25 candidates, 30 queries x 10 (top 5 + 5 "
                        "drawn from ranks 6-100), disjoint from the test queries measured"),
        "threads": threads, "load_before": os.getloadavg(),
        "timing": ("configs interleaved query by query (rotating order) in one process; seconds = wall clock, "
                   "cpu_seconds = process CPU time (all threads) while that config ran"),
        "machine": machine_info(args.device), "max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"), "configs": {},
    }
    per_query = [c for c in configs if not c.endswith("_groups")]
    scorers = {config: build(config, folder, args.device, threads) for config in per_query}
    scores, seconds, cpu = timed_rounds(scorers, groups, sync)
    for config in [c for c in configs if c.endswith("_groups")]:
        scores[config], seconds[config], cpu[config] = timed_once(build(config, folder, args.device, threads),
                                                                  groups, sync)
    for config in configs:
        result["configs"][config] = summarize(config, scores, seconds, cpu, n_pairs, folder, groups)
    result["load_after"] = os.getloadavg()
    out = args.out or RESULTS / ("throughput_cuda.json" if cuda else
                                 "throughput_quick.json" if args.quick else "throughput.json")
    write_report(result, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
