"""``rankwise train cross-encoder DATA OUT``: fine-tune an encoder as a cross-encoder on a BEIR folder's qrels.

Prints the plan with the time estimated on this machine before training starts (``--dry-run`` stops there), progress
on standard error, and the report (``OUT/training.json``) as JSON at the end. Library:
:func:`rankwise.train.finetune.train_cross_encoder`.
"""

from __future__ import annotations

import argparse
import json
import sys

from rankwise.cli._args import non_negative_int, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", metavar="DATA", help="a BEIR folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv")
    p.add_argument("output", metavar="OUTPUT_DIR", help="a new or empty folder for the model (or the run's, --resume)")
    p.add_argument("--base-model", default=None,
                   help="Hugging Face model name or folder (default: the bundled all-MiniLM-L6-v2 encoder)")
    p.add_argument("--split", default="train", help="qrels split to train on (default: train)")
    p.add_argument("--dev-split", default=None,
                   help="qrels split for evaluation during training (default: hold out --dev-fraction of SPLIT)")
    p.add_argument("--dev-fraction", type=float, default=0.1, help="share of training queries held out (0.1)")
    p.add_argument("--dev-queries", type=positive_int, default=50, help="at most this many dev queries (50)")
    p.add_argument("--max-pairs", type=positive_int, default=None,
                   help="at most this many training pairs, whole queries drawn with the seed (default: all)")
    p.add_argument("--depth", type=positive_int, default=30, help="first-stage candidates to mine negatives from")
    p.add_argument("--positives", type=positive_int, default=1, help="judged-relevant documents per query (1)")
    p.add_argument("--bm25-negatives", type=non_negative_int, default=1, help="BM25 hard negatives per query (1)")
    p.add_argument("--bi-encoder-negatives", type=non_negative_int, default=1,
                   help="bi-encoder hard negatives per query (1; 0 = no bi-encoder)")
    p.add_argument("--random-negatives", type=non_negative_int, default=2,
                   help="random corpus documents per query as easy negatives (2)")
    p.add_argument("--epochs", type=positive_int, default=3, help="passes over the pairs (3)")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--max-length", type=positive_int, default=256, help="tokens per (query, document) pair (256)")
    p.add_argument("--learning-rate", type=float, default=5e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1... (default: cuda when available)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its newest checkpoint")
    p.add_argument("--keep-checkpoints", action="store_true", help="keep OUTPUT_DIR/checkpoints after success")
    p.add_argument("--cache-dir", default=None, help="first-stage runs and embeddings cache (default: ~/.cache)")
    p.add_argument("--dry-run", action="store_true", help="build the data, print the plan and estimate, stop")
    p.add_argument("--no-progress", action="store_true", help="no progress on standard error")


class _DryRun(Exception):
    """Raised from the plan callback to stop before training (nothing was written but the empty folder)."""


def run(args: argparse.Namespace) -> int:
    from rankwise.progress import ProgressReporter
    from rankwise.train.finetune import NegativeMining, TrainingSettings, train_cross_encoder

    mining = NegativeMining(depth=args.depth, positives=args.positives, bm25_negatives=args.bm25_negatives,
                            bi_encoder_negatives=args.bi_encoder_negatives, random_negatives=args.random_negatives)
    settings = TrainingSettings(epochs=args.epochs, batch_size=args.batch_size, max_length=args.max_length,
                                learning_rate=args.learning_rate, seed=args.seed)

    def show_plan(plan) -> None:  # noqa: ANN001 - a TrainingPlan
        print(f"rankwise train cross-encoder: {plan.describe()}", file=sys.stderr, flush=True)
        if args.dry_run:
            raise _DryRun

    reporter = None if args.no_progress else ProgressReporter("training", unit="step")
    try:
        report = train_cross_encoder(
            args.data, args.output, base_model=args.base_model, split=args.split, dev_split=args.dev_split,
            dev_fraction=args.dev_fraction, dev_queries=args.dev_queries, max_pairs=args.max_pairs, mining=mining,
            settings=settings, device=args.device, resume=args.resume, keep_checkpoints=args.keep_checkpoints,
            cache_dir=args.cache_dir, on_plan=show_plan, progress=reporter,
        )
    except _DryRun:
        return 0
    finally:
        if reporter is not None:
            reporter.close()
    print(json.dumps(report.to_dict(), indent=2))
    return 0
