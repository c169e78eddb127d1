"""``rankwise eval``: first stage vs re-rankers on a judged dataset, with significance tests and a report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rankwise.cli._args import positive_int

SPEC_HELP = (
    "re-ranker to evaluate (repeatable): a preset ('bm25', 'default'), MODEL:BACKEND, a folder, "
    "a backend with options ('fusion:members=bm25,minilm-bi-encoder;method=rrf', 'default:weights=1,2'), "
    "or a JSON object "
    '(\'{"backend": "fusion", "members": [...], "label": "mine"}\'); see docs/evaluation.md'
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    _add_evaluation_flags(p)
    _add_output_flags(p)


def _add_evaluation_flags(p: argparse.ArgumentParser) -> None:
    """What is evaluated: datasets, re-rankers, split, candidates, metrics, queries."""
    p.add_argument(
        "--data",
        required=True,
        action="append",
        metavar="DIR",
        help="BEIR-layout dataset folder (repeatable: one report per dataset)",
    )
    p.add_argument("--reranker", "-r", action="append", default=[], metavar="SPEC", help=SPEC_HELP)
    p.add_argument("--cascade", action="append", default=[], metavar="NAME:KEEP,...",
                   help="a cascade to evaluate (repeatable), e.g. 'first-stage-score:30,hybrid': the same as "
                   "-r 'cascade:first-stage-score:30,hybrid'; see docs/cascade.md")
    p.add_argument("--split", default="test", help="qrels split to evaluate (default: test)")
    p.add_argument(
        "--depth", type=positive_int, default=100, help="first-stage candidates re-ranked per query (default: 100)"
    )
    p.add_argument(
        "--relevance-threshold",
        type=int,
        default=None,
        metavar="N",
        help="grade counted as relevant by MRR, Recall and MAP (default: 1 for full collections, 2 for "
        "pools given as a TREC run such as TREC DL; the report prints the value used)",
    )
    p.add_argument(
        "--metrics",
        default="ndcg@10,mrr@10,recall@100,map",
        help="comma-separated metrics, the first is the headline (default: ndcg@10,mrr@10,recall@100,map)",
    )
    p.add_argument(
        "--candidates",
        default=None,
        metavar="RUN|bm25",
        help="a TREC run file of candidates, or 'bm25' to ignore a run file in the folder "
        "(default: the folder's *.run if it has one, else BM25 over the corpus)",
    )
    p.add_argument(
        "--max-queries", type=positive_int, default=None, metavar="N", help="evaluate only the first N judged queries"
    )


def _add_output_flags(p: argparse.ArgumentParser) -> None:
    """Where the reports go, what is printed, the cache, and the significance test's settings."""
    p.add_argument(
        "--output",
        "-o",
        default=None,
        metavar="DIR",
        help="write report.json, runs/*.run, table.md and delta.png here (one sub-folder per dataset)",
    )
    p.add_argument(
        "--format", "-f", default="table", choices=("table", "json"), help="what to print (default: table)"
    )
    p.add_argument(
        "--cache-dir",
        default=None,
        help="first-stage runs and embeddings cache (default: ~/.cache/rankwise/eval)",
    )
    p.add_argument(
        "--no-cache", action="store_true", help="recompute the first stage and embeddings; write no cache"
    )
    p.add_argument(
        "--trials", type=positive_int, default=10_000, help="randomization-test sign flips (default: 10000)"
    )
    p.add_argument("--seed", type=int, default=0, help="randomization-test seed (default: 0)")
    p.add_argument("--no-plot", action="store_true", help="do not write delta.png")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress on standard error (default: bars on a terminal, else a line every 10 s)")


def run(args: argparse.Namespace) -> int:
    from rankwise.evaluation import evaluate, format_table
    from rankwise.evaluation.api import stage_unit
    from rankwise.evaluation.report import slug
    from rankwise.progress import StagedProgress

    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    several = len(args.data) > 1
    for folder in args.data:
        # a bar per stage on a terminal; otherwise a line every 10 s, so a long run is never silent in a log
        progress = StagedProgress(
            lambda stage: (stage, stage_unit(stage)), enabled=not args.no_progress, prefix="rankwise eval"
        )
        with progress:
            report = evaluate(
                folder,
                [*args.reranker, *(f"cascade:{stages}" for stages in args.cascade)],
                split=args.split,
                depth=args.depth,
                relevance_threshold=args.relevance_threshold,
                metrics=metrics,
                candidates=args.candidates,
                cache_dir=args.cache_dir,
                use_cache=not args.no_cache,
                max_queries=args.max_queries,
                trials=args.trials,
                seed=args.seed,
                progress=progress,
            )
        if args.format == "json":
            print(report.to_json(per_query=False))
        else:
            print(format_table(report))
            if several:
                print()
        if args.output:
            out = Path(args.output) / slug(report.dataset["name"]) if several else Path(args.output)
            written = report.save(out, plot=not args.no_plot)
            print(
                f"wrote {written['report']} (+ runs, table.md{'' if args.no_plot else ', delta.png'})",
                file=sys.stderr,
            )
    return 0
