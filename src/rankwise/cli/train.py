"""``rankwise train``: learn from your own judgments.

* ``rankwise train ltr DATA OUT`` -- LightGBM LambdaMART over re-rankers' scores and item features
  (:mod:`rankwise.cli._train_ltr`);
* ``rankwise train cross-encoder DATA OUT`` -- fine-tune an encoder as a cross-encoder with sentence-transformers'
  trainer (:mod:`rankwise.cli._train_ce`).

Each kind is its own module with ``add_arguments(parser)`` and ``run(args)``; both import only argparse at module
level (their training libraries load in ``run``), so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import importlib

KINDS: dict[str, tuple[str, str]] = {
    "ltr": ("rankwise.cli._train_ltr", "LightGBM LambdaMART over re-ranker scores, metadata and text features"),
    "cross-encoder": ("rankwise.cli._train_ce", "fine-tune an encoder as a cross-encoder on qrels, hard negatives"),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="kind", metavar="KIND", required=True, parser_class=type(p))
    for kind, (module, summary) in KINDS.items():
        kp = sub.add_parser(kind, help=summary, description=summary)
        kp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        importlib.import_module(module).add_arguments(kp)


def run(args: argparse.Namespace) -> int:
    return int(importlib.import_module(KINDS[args.kind][0]).run(args) or 0)
