"""``rankwise batch``: re-rank a whole dataset (BEIR folder, JSONL groups, Parquet pairs) into Parquet shards,
resumable (``--resume``), on this machine or on Ray (``--engine ray``). Library: :func:`rankwise.batch.rerank_dataset`.
"""

from __future__ import annotations

import argparse
import re

from rankwise.cli._args import parse_options, positive_int
from rankwise.cli._errors import cli_wording
from rankwise.cli._io import printable, write
from rankwise.errors import InvalidInputError, RankwiseError

# Library argument names -> the flags that set them, for messages (cli._errors rewrites the common ones).
_FLAGS: tuple[tuple[str, str], ...] = (
    (r"\bresume=True\b", "--resume"),
    (r"\bjsonl= instead\b", "--jsonl instead"),
    (r"\bshard_pairs\b", "--shard-pairs"),
    (r"\binput_format\b", "--input-format"),
    (r"\bcpus_per_actor\b", "--cpus-per-actor"),
    (r"\bgpus_per_actor\b", "--gpus-per-actor"),
    (r"\bactors must\b", "--actors must"),
    (r"\bengine must\b", "--engine must"),
    (r"\boptions was\b", "--option was"),
    (r"\bfields was\b", "--fields was"),
    (r"\bmodel was\b", "--model was"),
    (r"\bbackend was\b", "--backend was"),
    (r"\binput was\b", "INPUT was"),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT",
                   help="a BEIR folder (queries.jsonl, corpus.jsonl, one *.run) or its run file, a JSONL file of "
                        "{query_id, query, candidates} groups, or a Parquet file of (query_id, query, doc_id, text) "
                        "rows")
    p.add_argument("output", metavar="OUTPUT_DIR", help="a new or empty folder (or the job's folder with --resume)")
    p.add_argument("--model", "-m", default="default", help="preset name or model folder (see `rankwise models`)")
    p.add_argument("--backend", "-b", default=None, help="backend for a model that is not a preset")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE",
                   help="backend option, value parsed as JSON when it can be (repeatable), e.g. -o quantize=\"int8\"")
    p.add_argument("--top-k", "-k", type=positive_int, default=None, help="keep each query's best K (default: all)")
    p.add_argument("--input-format", default="auto", choices=("auto", "beir", "jsonl", "parquet"),
                   help="how INPUT is laid out (default: auto)")
    p.add_argument("--fields", default=None, help="comma-separated document fields that form the text")
    p.add_argument("--shard-pairs", type=positive_int, default=50_000,
                   help="pairs per shard, the unit of resume and of distribution (default: 50000)")
    p.add_argument("--resume", action="store_true",
                   help="continue the job in OUTPUT_DIR: finished shards are kept, the rest run (same settings)")
    p.add_argument("--trec", default=None, metavar="FILE", help="also write the results as a TREC run")
    p.add_argument("--jsonl", default=None, metavar="FILE", help="also write the results as JSONL, one line per query")
    p.add_argument("--engine", default="local", choices=("local", "ray"),
                   help="local: this process; ray: a Ray Data actor pool (pip install 'rankwise[ray]')")
    p.add_argument("--actors", type=positive_int, default=1, help="Ray actors, each loading the model once")
    p.add_argument("--cpus-per-actor", type=float, default=1.0, help="CPUs per Ray actor (default: 1)")
    p.add_argument("--gpus-per-actor", type=float, default=0.0, help="GPUs per Ray actor (default: 0)")
    p.add_argument("--ray-address", default=None, help="join this Ray cluster (default: start a local one)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress on standard error (default: a bar on a terminal, else a line every 10 s)")


def cli_words(message: str) -> str:
    """A library message in this command's flags (the model flags are `rankwise rerank`'s)."""
    message = cli_wording(message, "rerank")
    for pattern, flag in _FLAGS:
        message = re.sub(pattern, flag, message)
    return message


def run(args: argparse.Namespace) -> int:
    from rankwise.batch.progress import cli_reporter
    from rankwise.batch.run import rerank_dataset
    from rankwise.progress import ProgressReporter

    fields = [f.strip() for f in args.fields.split(",") if f.strip()] if args.fields else None
    reporter = ProgressReporter("re-ranking", unit="pair", enabled=not args.no_progress, prefix="rankwise batch")
    try:
        with reporter:
            report = rerank_dataset(
                args.input, args.output, args.model, backend=args.backend, options=parse_options(args.option),
                top_k=args.top_k, input_format=args.input_format, fields=fields, shard_pairs=args.shard_pairs,
                resume=args.resume, engine=args.engine, actors=args.actors, cpus_per_actor=args.cpus_per_actor,
                gpus_per_actor=args.gpus_per_actor, ray_address=args.ray_address, trec=args.trec, jsonl=args.jsonl,
                progress=cli_reporter(reporter),
            )
    except RankwiseError as exc:  # in this command's words; still a user error (status 2)
        raise InvalidInputError(cli_words(str(exc))) from exc
    write(printable(f"rankwise batch: {report.summary()}"))
    for label, path in (("TREC run", report.trec), ("JSONL", report.jsonl)):
        if path is not None:
            write(printable(f"rankwise batch: {label}: {path}"))
    return 0
