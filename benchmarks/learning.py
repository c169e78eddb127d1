"""Learning to rank from judgments (issue 14): fine-tuned cross-encoders, LambdaMART over re-ranker features, the
first-stage-aware default, and int8 on a trained model -- nDCG@10 on test splits, training time, docs/s.

Sections (``--sections``, all by default):

* ``ce`` -- `rankwise train cross-encoder` on scifact/train and nfcorpus/train (the bundled all-MiniLM-L6-v2 encoder,
  a new head; BM25 + bi-encoder hard negatives; 4,000 / 2,500 pairs at most so both fit in under an hour on 2 CPU
  cores; dev = held-out train queries for scifact, nfcorpus/dev). The same as
  `rankwise train cross-encoder ../shared/data/scifact OUT --max-pairs 4000 --cache-dir benchmarks/.cache` (and
  `... nfcorpus OUT --max-pairs 2500 --dev-split dev ...`). The models are kept in
  benchmarks/.cache/trained/<name>-ce and reused when present (their training.json holds the time they took).
* ``ltr`` -- LightGBM lambdarank (benchmarks/_learning_ltr.py): scifact (train -> test), nfcorpus (train, dev for
  early stopping -> test); cranfield, medline, cisi, vaswani by 5-fold cross-validation over queries; over the
  offline members with every training query, and again on scifact and nfcorpus with the fine-tuned cross-encoder
  as one more member (200 training queries); and over the offline members again with the judgment-history features
  (`rankwise train ltr --history`: grades that similar training queries gave each candidate, its popularity).
  Each single member alone (the cross-encoder alone included) is reported on the same candidates.
* ``default`` -- the first-stage-aware `default` vs the previous default on all seven collections
  (benchmarks/_learning_default.py).
* ``int8`` -- ONNX int8 (dynamic, static) and OpenVINO int8 (static, int8-dynamic) vs fp32 agreement and nDCG@10 on
  the trained models (benchmarks/_learning_int8.py).

Nothing is chosen on a test split: every weight, depth and training setting was fixed on train/dev splits or before
looking at any result.

    python benchmarks/learning.py                 # everything -> benchmarks/results/learning.json
    python benchmarks/learning.py --quick         # small sizes, to prove it runs -> learning_quick.json
    python benchmarks/learning.py --sections int8 # one section (merged into the existing JSON)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import code_version, machine_info, write_report  # noqa: E402

DATA = Path(os.environ.get("RANKWISE_DATA", ROOT.parent / "shared" / "data"))
CACHE = ROOT / "benchmarks" / ".cache"
TRAINED = CACHE / "trained"
RESULTS = ROOT / "benchmarks" / "results"
SECTIONS = ("ce", "ltr", "default", "int8")
# training pairs: all of scifact/train (759 queries x 5 after the dev hold-out: 3,795 <= 4,000); nfcorpus/train has
# 2,590 queries, of which a seeded 500 (2,500 pairs) keep both runs inside an hour on 2 busy CPU cores
CE_DATASETS = {"scifact": {"dev_split": None, "max_pairs": 4000}, "nfcorpus": {"dev_split": "dev", "max_pairs": 2500}}


def trained_model(name: str, quick: bool) -> Path:
    """The fine-tuned cross-encoder for ``name`` (trained now when absent; same settings as the CLI defaults)."""
    from rankwise.train.finetune import train_cross_encoder

    folder = TRAINED / (f"{name}-ce-quick" if quick else f"{name}-ce")
    if not (folder / "training.json").is_file():
        train_cross_encoder(DATA / name, folder, dev_split=CE_DATASETS[name]["dev_split"], cache_dir=CACHE,
                            max_pairs=200 if quick else CE_DATASETS[name]["max_pairs"])
    return folder


def section_ce(quick: bool) -> dict[str, Any]:
    """The training runs' reports (``training.json``); a model not trained yet is trained now unless
    ``RANKWISE_CE_REPORT_ONLY=1`` (then it is listed as not run)."""
    out: dict[str, Any] = {}
    report_only = os.environ.get("RANKWISE_CE_REPORT_ONLY") == "1"
    for name in CE_DATASETS:
        folder = TRAINED / (f"{name}-ce-quick" if quick else f"{name}-ce")
        if report_only and not (folder / "training.json").is_file():
            out[name] = {"not_run": "RANKWISE_CE_REPORT_ONLY=1 and no trained model in " + str(folder)}
            continue
        report = json.loads((trained_model(name, quick) / "training.json").read_text())
        out[name] = {
            "examples": report["examples"], "settings": report["settings"], "mining": report["mining"],
            "estimated_seconds": report["plan"]["estimated_seconds"], "seconds": report["seconds"],
            "pairs_per_second": report["pairs_per_second"], "device": report["plan"]["device"],
            "best_dev_ndcg@10": report["best_dev_ndcg_at_10"], "dev": report["dev"], "loss": report["loss"],
        }
    return out


def section_ltr(quick: bool) -> dict[str, Any]:
    """LTR three times: over the offline members with every training query (what `rankwise train ltr` does by
    default); the same with the judgment-history features (`--history`); and with the fine-tuned cross-encoder as one
    more member on scifact and nfcorpus, whose training queries are capped (the cross-encoder scores every candidate
    of every query: 200 queries x 100 candidates per split)."""
    from _learning_ltr import measure_ltr

    datasets = ["scifact", "nfcorpus", "cranfield", "medline", "cisi", "vaswani"]
    chosen = datasets[:2] if quick else datasets
    out = {"offline_members": measure_ltr(chosen, quick=quick, max_train_queries=None),
           "offline_members_with_history": measure_ltr(chosen, quick=quick, max_train_queries=None, history=True)}
    if os.environ.get("RANKWISE_LTR_WITHOUT_CE") != "1":
        extra = {name: [ce_member(trained_model(name, quick))] for name in CE_DATASETS}
        out["with_cross_encoder"] = measure_ltr(list(CE_DATASETS), extra_members=extra, quick=quick)
    return out


def ce_member(folder: Path) -> str:
    """The fine-tuned cross-encoder as a re-ranker spec, truncating at the 256 tokens it was trained on. OpenVINO
    bf16 where the CPU has AMX (Spearman 0.9998 and top-10 overlap 1.00 against fp32 on a trained model, 4x faster:
    results/throughput_trained.json), else ONNX fp32; int8 is measured on its own in the int8 section."""
    options = f"overflow=truncate;max_length=256;cache_dir={CACHE / 'onnx'}"
    if machine_info("cpu")["isa_summary"].get("amx"):
        return f"{folder}:openvino:precision=bf16;{options}"
    return f"{folder}:onnx:{options}"


def section_default(quick: bool) -> dict[str, Any]:
    from _learning_default import measure_default

    return measure_default(None, quick)


def section_int8(quick: bool) -> dict[str, Any]:
    from _learning_int8 import measure_int8

    if os.environ.get("RANKWISE_CE_REPORT_ONLY") == "1":  # only the models already trained
        models = {name: TRAINED / (f"{name}-ce-quick" if quick else f"{name}-ce") for name in CE_DATASETS}
        models = {name: folder for name, folder in models.items() if (folder / "training.json").is_file()}
    else:
        models = {name: trained_model(name, quick) for name in CE_DATASETS}
    return measure_int8(models, DATA, CACHE, queries=5 if quick else 30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, to prove it runs (learning_quick.json)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    out = RESULTS / ("learning_quick.json" if args.quick else "learning.json")
    runners = {"ce": section_ce, "ltr": section_ltr, "default": section_default, "int8": section_int8}
    for name in sections:
        start = time.perf_counter()
        section = runners[name](args.quick)
        # read the file again just before writing: another run may have written its own sections meanwhile
        result: dict[str, Any] = json.loads(out.read_text()) if out.is_file() else {"benchmark": "learning"}
        result.update({"quick": args.quick, "code_version": code_version(), "machine": machine_info("cpu")})
        result[name] = section
        result.setdefault("section_seconds", {})[name] = round(time.perf_counter() - start, 1)
        result.setdefault("load_average", {})[name] = os.getloadavg()
        # after each section: a long run keeps its parts
        write_report(result, out, show={"written": name, "section_seconds": result["section_seconds"][name]})
    print(out.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
