"""``rankwise train ltr DATA OUT``: train a LightGBM LambdaMART ranker (see docs/training.md).

DATA is a BEIR-layout folder (qrels, queries, corpus, optional ``*.run`` candidates) or a click-log JSONL file;
OUT is the model folder, served by ``rankwise rerank --model OUT``, ``rankwise serve --model name=OUT`` and
``rankwise.load(OUT)``. The training report is printed as JSON (a short summary on a terminal).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from rankwise.cli._args import non_negative_int, positive_int


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), got {text!r}")
    return value


def _prior(text: str) -> str | dict[str, float] | None:
    """``auto``, ``fit``, ``none`` or ``LABEL=WEIGHT,LABEL=WEIGHT`` (member labels; checked against the members
    later)."""
    if text in ("auto", "fit", "none"):
        return None if text == "none" else text
    weights: dict[str, float] = {}
    for part in text.split(","):
        label, eq, weight = part.rpartition("=")
        try:
            value = float(weight)
        except ValueError:
            value = math.nan
        if not eq or not label or not math.isfinite(value):
            raise argparse.ArgumentTypeError(
                f"must be 'auto', 'fit', 'none' or MEMBER=WEIGHT pairs separated by commas, got {text!r}"
            )
        weights[label] = value
    return weights


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", metavar="DATA", help="a BEIR-layout folder, or a click-log JSONL file")
    p.add_argument("out", metavar="OUT", help="the model folder to write")
    p.add_argument("--member", "-m", action="append", default=None, metavar="SPEC",
                   help="a re-ranker whose score is a feature (repeatable; a preset, MODEL:BACKEND or a folder; "
                   "default: first-stage-score, bm25, minilm-bi-encoder; for clicks bm25, minilm-bi-encoder)")
    p.add_argument("--metadata-field", action="append", default=[], metavar="FIELD",
                   help="a numeric metadata field used as a feature (repeatable; missing values stay missing)")
    p.add_argument("--no-text-features", action="store_true", help="leave out the lexical text features")
    p.add_argument("--split", default="train", help="qrels split to train on (default: train)")
    p.add_argument("--dev-split", default=None, metavar="SPLIT",
                   help="qrels split for early stopping (default: hold out --valid-fraction of the training queries)")
    p.add_argument("--valid-fraction", type=_fraction, default=0.2, metavar="F",
                   help="share of training queries held out for early stopping, by query (default: 0.2)")
    p.add_argument("--depth", type=positive_int, default=100, help="BM25 candidates per query (default: 100)")
    p.add_argument("--candidates", default=None, metavar="RUN|bm25",
                   help="a TREC run file of candidates, or 'bm25' to ignore the folder's run file")
    p.add_argument("--corpus", default=None, metavar="PATH",
                   help="for a click log whose shown items are ids: a BEIR folder or corpus file holding them")
    p.add_argument("--position-bias", default="skip-above", choices=("skip-above", "none"),
                   help="click labels: skip-above (Joachims; default) or none (every shown item examined)")
    p.add_argument("--seed", type=int, default=0, help="seed of the query split and of LightGBM (default: 0)")
    p.add_argument("--num-boost-round", type=positive_int, default=500, help="boosting rounds at most (default: 500)")
    p.add_argument("--early-stopping", type=non_negative_int, default=50, metavar="N",
                   help="stop after N rounds without a better validation nDCG@10; 0 = never (default: 50)")
    p.add_argument("--prior", type=_prior, default="auto", metavar="auto|fit|none|MEMBER=W,...",
                   help="what boosting starts from: fit (the members' z-score fusion that ranks the training queries "
                   "best), none (plain LambdaMART), fixed weights (e.g. bm25=1,minilm-bi-encoder=2.5), or auto "
                   "(default: fit below 200 training queries, where leaves are constant; else none)")
    p.add_argument("--history", action="store_true",
                   help="add judgment-history features: the grades that the most similar training queries gave each "
                   "candidate (by id) and its popularity; the judgments are stored in the model folder")
    p.add_argument("--history-encoder", default="minilm-bi-encoder", metavar="SPEC",
                   help="the bi-encoder that embeds queries for --history (default: minilm-bi-encoder)")
    p.add_argument("--history-neighbours", type=positive_int, default=20, metavar="N",
                   help="similar training queries read per query by --history (default: 20)")
    p.add_argument("--learning-rate", type=float, default=None, help="LightGBM learning rate (default: 0.05)")
    p.add_argument("--max-queries", type=positive_int, default=None, metavar="N",
                   help="train on the first N judged queries only")
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="first-stage runs and embeddings cache (default: ~/.cache/rankwise/eval)")
    p.add_argument("--format", "-f", choices=("auto", "json", "table"), default="auto",
                   help="print the report as JSON or a short table (default: table on a terminal, else JSON)")


def run(args: argparse.Namespace) -> int:
    from rankwise.cli._io import json_line, write
    from rankwise.train.lambdamart.api import ltr

    params = {"learning_rate": args.learning_rate} if args.learning_rate is not None else None
    report = ltr(
        args.data, args.out, members=args.member, metadata_fields=args.metadata_field,
        text_features=not args.no_text_features, split=args.split, valid_split=args.dev_split,
        valid_fraction=args.valid_fraction, depth=args.depth, candidates=args.candidates, corpus=args.corpus,
        position_bias=args.position_bias, seed=args.seed, num_boost_round=args.num_boost_round,
        early_stopping=args.early_stopping, params=params, prior=args.prior, history=args.history,
        history_encoder=args.history_encoder, history_neighbours=args.history_neighbours, cache_dir=args.cache_dir,
        max_queries=args.max_queries,
    )
    as_table = args.format == "table" or (args.format == "auto" and sys.stdout.isatty())
    write(_table(report) if as_table else json_line(report))
    return 0


def _table(report: dict[str, Any]) -> str:
    """A few lines for a person: where the model went, how it did, what it learnt from."""
    lines = [
        f"model: {report['model']}  (trained on {report['data']}, validated on {report['valid']})",
        (f"queries: {report['train_queries']} train, {report['valid_queries']} valid; "
        f"best iteration {report['best_iteration']} of {report['rounds_trained']}"),
        (f"nDCG@10: train {report['train_ndcg@10']}, valid {report['valid_ndcg@10']}; "
        f"{report['total_seconds']:.1f} s in all"),
        "prior (boosting starts from): " + (", ".join(f"{w:.3f} {n}" for n, w in report["prior"].items()) or "none")
        + ("" if report["trees_kept"] else "; trees dropped: the prior alone ranked the validation queries better"),
        "feature importance (gain share):",
    ]
    lines += [f"  {share:6.3f}  {name}" for name, share in list(report["feature_importance_gain"].items())[:10]]
    if report.get("history"):
        h = report["history"]
        lines.append(f"history: {h['judgments']} judgments of {h['queries']} training queries, {h['neighbours']} "
                     "neighbours per query")
    lines.append(f"counts: {json.dumps(report['counts'])}")
    return "\n".join(lines)
