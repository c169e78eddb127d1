"""``rankwise serve``: the HTTP re-rank service (Cohere v1/v2, Jina and TEI APIs) with dynamic batching.

Examples::

    rankwise serve                                  # the offline 'default' preset (BM25 + MiniLM bi-encoder)
    rankwise serve --model minilm=./ms-marco-MiniLM-L-6-v2
    rankwise serve --model fast=./minilm-onnx:onnx?normalize=true --model bm25 --port 9000
    RANKWISE_API_KEYS=k1,k2 rankwise serve --config server.toml
    rankwise serve --ray --replicas 2 --model minilm=./minilm-onnx:onnx   # the same app on Ray Serve, 2 replicas

Settings come from flags > RANKWISE_* variables > the config file (--config or RANKWISE_CONFIG) > defaults.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "model SPEC: [NAME=]SOURCE[:BACKEND][?key=value&...], e.g. 'minilm=./folder:onnx?normalize=true'.\n"
        "Precedence: flags > RANKWISE_* environment variables > config file > defaults. See docs/server.md."
    )
    _add_model_flags(parser)
    _add_access_flags(parser)
    _add_limit_flags(parser)
    _add_batching_flags(parser)
    _add_timeout_flags(parser)
    _add_ray_flags(parser)
    add = parser.add_argument
    add("--docs", action=argparse.BooleanOptionalAction, default=None, help="serve /docs and /openapi.json")
    add("--log-level", choices=["critical", "error", "warning", "info", "debug"], help="default info")
    add("--print-config", action="store_true", help="print the merged settings (keys hidden) and exit")


def _add_model_flags(parser: argparse.ArgumentParser) -> None:
    """What is served, and with which settings file."""
    add = parser.add_argument
    add(
        "--model",
        dest="models",
        action="append",
        metavar="SPEC",
        help="a model to serve (repeat for several); the first is the default. None given: the offline "
        "'default' preset",
    )
    add("--default-model", metavar="NAME", help="model used when a request names none")
    add("--config", metavar="FILE", help="TOML or JSON settings file (default: $RANKWISE_CONFIG)")


def _add_access_flags(parser: argparse.ArgumentParser) -> None:
    """Where the server listens and who may call it."""
    add = parser.add_argument
    add("--host", help="address to bind (default 127.0.0.1: this machine only)")
    add("--port", type=int, help="port (default 8000)")
    add(
        "--api-key",
        dest="api_keys",
        action="append",
        metavar="KEY",
        help="accept this Bearer key (repeatable; prefer RANKWISE_API_KEYS or --api-keys-file: flags show in ps)",
    )
    add("--api-keys-file", metavar="FILE", help="file with one API key a line")
    add(
        "--cors-origin",
        dest="cors_origins",
        action="append",
        metavar="ORIGIN",
        help="allow browser calls from this origin (repeatable; '*' for any)",
    )


def _add_limit_flags(parser: argparse.ArgumentParser) -> None:
    """How large one request may be."""
    add = parser.add_argument
    add("--max-documents", type=int, metavar="N", help="most documents per request (default 1000)")
    add("--max-tokens-per-doc", type=int, metavar="N", help="documents are cut to N tokens (default 4096)")
    add("--max-body-bytes", type=int, metavar="N", help="largest request body (default 10 MiB)")
    add("--max-query-bytes", type=int, metavar="N", help="longest query, in UTF-8 bytes (default 65536)")


def _add_batching_flags(parser: argparse.ArgumentParser) -> None:
    """How concurrent requests share model calls."""
    add = parser.add_argument
    add(
        "--batching",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="merge concurrent requests into shared model calls (default on)",
    )
    add("--max-batch-pairs", type=int, metavar="N", help="most documents in one model call (default 256)")
    add(
        "--max-wait-ms",
        type=float,
        metavar="MS",
        help="longest a request waits for others to join (default 5)",
    )
    add("--chunk-pairs", type=int, metavar="N", help="documents taken from one request per turn (default 32)")
    add(
        "--max-queue-pairs",
        type=int,
        metavar="N",
        help="documents allowed to wait before 503 (default 200000)",
    )


def _add_timeout_flags(parser: argparse.ArgumentParser) -> None:
    """How long requests and shutdowns may take, and how many connections are held."""
    add = parser.add_argument
    add(
        "--graceful-timeout",
        dest="graceful_timeout_s",
        type=float,
        metavar="S",
        help="on shutdown, wait this long for requests in flight (default 30)",
    )
    add(
        "--request-timeout-s",
        type=float,
        metavar="S",
        help="answer 504 and drop a request's queued work after S seconds (default 60; 0: no limit)",
    )
    add(
        "--max-connections",
        type=int,
        metavar="N",
        help="concurrent connections before 503 (default unlimited)",
    )


def _add_ray_flags(parser: argparse.ArgumentParser) -> None:
    """Serving on Ray Serve instead of one uvicorn process (needs rankwise[ray])."""
    add = parser.add_argument
    add("--ray", action="store_true", help="serve the same app on Ray Serve (replicas load the models themselves)")
    add("--replicas", type=int, metavar="N", help="with --ray: number of Serve replicas (default 1)")
    add("--cpus-per-replica", type=float, metavar="C", help="with --ray: CPUs reserved per replica (default 1)")
    add("--gpus-per-replica", type=float, metavar="G", help="with --ray: GPUs reserved per replica (default 0)")
    add("--ray-address", metavar="ADDR", help="with --ray: join this Ray cluster (default: start a local Ray)")


_RAY_FLAGS = ("replicas", "cpus_per_replica", "gpus_per_replica", "ray_address")


def _serve_on_ray(args: argparse.Namespace, config) -> int:  # noqa: ANN001 - a ServerConfig
    from rankwise.distributed.ray_serve import serve_on_ray

    serve_on_ray(
        config,
        replicas=1 if args.replicas is None else args.replicas,
        cpus_per_replica=1.0 if args.cpus_per_replica is None else args.cpus_per_replica,
        gpus_per_replica=0.0 if args.gpus_per_replica is None else args.gpus_per_replica,
        address=args.ray_address,
    )
    return 0


_FLAGS = (
    "models",
    "default_model",
    "host",
    "port",
    "api_keys",
    "api_keys_file",
    "cors_origins",
    "max_documents",
    "max_tokens_per_doc",
    "max_body_bytes",
    "max_query_bytes",
    "batching",
    "max_batch_pairs",
    "max_wait_ms",
    "chunk_pairs",
    "max_queue_pairs",
    "graceful_timeout_s",
    "request_timeout_s",
    "max_connections",
    "docs",
    "log_level",
)


DEFAULT_SPEC = "default"
"""Served when no model is given anywhere: the offline preset, so ``rankwise serve`` alone is the one-command job."""


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from rankwise.errors import InvalidInputError
    from rankwise.server.config import build_config, parse_model_spec

    given = [f"--{name.replace('_', '-')}" for name in _RAY_FLAGS if getattr(args, name) is not None]
    if given and not args.ray:
        raise InvalidInputError(f"{', '.join(given)} only apply with --ray; add --ray to serve on Ray Serve.")
    config = build_config({name: getattr(args, name) for name in _FLAGS}, config_file=args.config)
    config.all_api_keys()  # a keys file that cannot be read, or holds no key, stops here (exit 2), before loading
    defaulted = not config.models
    if defaulted:
        config = replace(config, models=(parse_model_spec(DEFAULT_SPEC),))
    if args.print_config:
        shown = {k: v for k, v in vars(config).items() if k not in ("api_keys", "models")}
        shown["api_keys"] = f"{len(config.all_api_keys())} key(s)"
        shown["models"] = [
            {"name": m.name, "source": m.source, "backend": m.backend, "options": m.shown_options()}
            for m in config.models
        ]
        print(json.dumps(shown, indent=2))
        return 0
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from rankwise.server.runner import serve

    if defaulted:
        logging.getLogger("rankwise.server").info(
            "no --model given: serving the offline %r preset (pass --model SPEC to serve another).", DEFAULT_SPEC
        )
    if config.host not in ("127.0.0.1", "localhost", "::1") and not config.all_api_keys():
        logging.getLogger("rankwise.server").warning(
            "binding %s with no API key: anyone who can reach this port can use the models.", config.host
        )
    if args.ray:
        return _serve_on_ray(args, config)
    serve(config)
    return 0
