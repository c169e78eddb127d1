"""rankwise's HTTP service on Ray Serve: the same FastAPI app, N replicas.

Each replica is one Serve actor that loads its models itself, from the model specs (``--model``/config file) it is
given, and serves exactly the app of ``rankwise serve`` (:func:`rankwise.server.app.create_app`): same routes (Cohere
v1/v2, Jina, TEI), same limits, same API keys, same error answers. The dynamic batcher lives inside each replica, as in
the plain server: requests that Serve routes to one replica share that replica's model calls. Replicas share nothing
but the specs; Serve's proxy spreads requests over them.

Two ways to run it::

    rankwise serve --ray --replicas 2 --model minilm=./my-cross-encoder:onnx --port 8000
    serve run rankwise.distributed.ray_serve:app_builder replicas=2 models=minilm=./my-cross-encoder:onnx

The second form (``serve run`` / ``serve deploy`` with an ``import_path``) takes the same settings as ``rankwise
serve`` as ``key=value`` arguments (field names of :class:`rankwise.server.config.ServerConfig`, plus ``config``,
``replicas``, ``cpus_per_replica`` and ``gpus_per_replica``); ``RANKWISE_*`` variables and ``RANKWISE_CONFIG`` apply
too. Host and port are then Serve's own (``http_options`` in a Serve config file).

Model folders and the config file are read on every node that runs a replica: on a cluster, give paths that exist
on each node (a shared filesystem) or hub names.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from rankwise.distributed._session import ray_session
from rankwise.errors import InvalidInputError, RankwiseError, require
from rankwise.server.config import ServerConfig

logger = logging.getLogger("rankwise.server")

APP_NAME = "rankwise"
# Serve's default (5 requests in flight per replica) would starve the dynamic batcher, which merges concurrent
# requests into shared model calls. Overload is answered by the app itself (503 once max_queue_pairs documents wait),
# as in the plain server, so Serve only needs to let enough requests through.
MAX_ONGOING_REQUESTS = 256
MAX_CONSTRUCTOR_RETRIES = 3


class RankwiseReplica:
    """One Serve replica of rankwise's FastAPI app (wrapped by ``serve.ingress`` in :func:`build_application`).

    The app itself is built in the replica by the ingress' builder function (:func:`_app_factory`): Serve calls it
    when the replica starts, runs the app's lifespan (which starts the per-model batcher threads) and, when the
    replica stops, the lifespan's shutdown (which drains them).
    """

    def check_health(self) -> None:
        """Serve's health probe: a replica whose model workers stopped is replaced."""
        app = getattr(self, "app", None)  # set by Serve's ASGI wrapper once the builder has run
        serving = getattr(getattr(app, "state", None), "serving", None)
        if serving is not None and not serving.ready:
            raise RuntimeError("rankwise replica is not ready: its model workers are stopped")


def _app_factory(config: ServerConfig) -> Callable[[], Any]:
    """The function Serve runs in each replica to build its app: the models are loaded there, from the specs."""

    def build() -> Any:
        from rankwise.server.app import create_app
        from rankwise.server.runner import load_models

        return create_app(load_models(config.models), config)

    return build


def _check_resources(replicas: Any, cpus: Any, gpus: Any) -> tuple[int, float, float]:
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise InvalidInputError(f"replicas must be an integer >= 1, got {replicas!r}.")
    for name, value in (("cpus_per_replica", cpus), ("gpus_per_replica", gpus)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise InvalidInputError(f"{name} must be a number >= 0, got {value!r}.")
    return replicas, float(cpus), float(gpus)


def build_application(
    config: ServerConfig, *, replicas: int = 1, cpus_per_replica: float = 1.0, gpus_per_replica: float = 0.0
) -> Any:
    """A Serve ``Application`` of ``replicas`` copies of rankwise's app for ``config`` (pass it to ``serve.run``).

    API keys from ``config.api_keys_file`` are read here, once, so replicas on other nodes need not see the file.

    Example:
        >>> from ray import serve                                                       # doctest: +SKIP
        >>> from rankwise.server.config import ServerConfig, parse_model_spec           # doctest: +SKIP
        >>> config = ServerConfig(models=(parse_model_spec("bm25"),))                  # doctest: +SKIP
        >>> serve.run(build_application(config, replicas=2), name="rankwise", route_prefix="/")  # doctest: +SKIP
    """
    replicas, cpus, gpus = _check_resources(replicas, cpus_per_replica, gpus_per_replica)
    if not config.models:
        raise InvalidInputError(
            "no model to serve: pass --model SPEC (or models=SPEC to `serve run`), set RANKWISE_MODELS, or list "
            "models in the config file."
        )
    serve = require("ray.serve", "ray", "Serving on Ray Serve")
    config = replace(config, api_keys=config.all_api_keys(), api_keys_file=None)
    ingress = serve.ingress(_app_factory(config))(RankwiseReplica)
    deployment = serve.deployment(
        ingress,
        name=APP_NAME,
        num_replicas=replicas,
        ray_actor_options={"num_cpus": cpus, "num_gpus": gpus},
        max_ongoing_requests=MAX_ONGOING_REQUESTS,
        graceful_shutdown_timeout_s=config.graceful_timeout_s,
        # a replica whose models do not load fails the same way each time: stop after a few tries, not Serve's 20
        max_constructor_retry_count=MAX_CONSTRUCTOR_RETRIES,
    )
    return deployment.bind()


def app_builder(args: Mapping[str, str]) -> Any:
    """The ``serve run`` / ``serve deploy`` target: ``serve run rankwise.distributed.ray_serve:app_builder k=v ...``.

    ``args`` are ``rankwise serve``'s settings by field name (``models``, ``api_keys``, ``max_documents``...), plus
    ``config`` (a settings file), ``replicas``, ``cpus_per_replica`` and ``gpus_per_replica``.
    """
    from rankwise.server.config import build_config

    args = dict(args)
    try:
        replicas = int(args.pop("replicas", 1))
        cpus = float(args.pop("cpus_per_replica", 1.0))
        gpus = float(args.pop("gpus_per_replica", 0.0))
    except ValueError as exc:
        raise InvalidInputError(
            f"replicas, cpus_per_replica and gpus_per_replica must be numbers: {exc}"
        ) from exc
    config_file = args.pop("config", None)
    ignored = [k for k in ("host", "port") if k in args]
    if ignored:
        raise InvalidInputError(
            f"{ignored} cannot be set here: under `serve run` the address is Serve's (http_options in the Serve "
            "config file, or `rankwise serve --ray --host ... --port ...`)."
        )
    config = build_config(args, config_file=config_file)
    return build_application(config, replicas=replicas, cpus_per_replica=cpus, gpus_per_replica=gpus)


@contextmanager
def _stop_requested() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM while the block runs (the CLI's way to say stop), handlers restored after.

    Installed after ``ray.init`` (which sets a SIGTERM handler of its own that exits at once) and before Serve
    starts, so a stop that comes while the replicas are still starting is kept and honoured, not lost or fatal.
    """
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def start(config: ServerConfig, application: Any) -> Any:
    """Start Serve's HTTP proxy on ``config.host:config.port`` and deploy ``application`` at ``/``; returns its handle.

    Ray must be connected (see :func:`rankwise.distributed._session.ray_session`).
    """
    serve = require("ray.serve", "ray", "Serving on Ray Serve")
    serve.start(http_options={"host": config.host, "port": config.port})
    try:
        return serve.run(application, name=APP_NAME, route_prefix="/", blocking=False)
    except RuntimeError as exc:  # Serve's "Deploying application ... failed"; the replica's traceback is logged
        raise RankwiseError(
            f"Ray Serve could not start the rankwise replicas: {exc}. The replica log above says why (most often a "
            "model that does not load on that node: check the --model paths exist on every node)."
        ) from exc


def serve_on_ray(
    config: ServerConfig,
    *,
    replicas: int = 1,
    cpus_per_replica: float = 1.0,
    gpus_per_replica: float = 0.0,
    address: str | None = None,
) -> None:
    """``rankwise serve --ray``: deploy on Ray Serve and serve until SIGINT/SIGTERM, then take the app down.

    ``address`` joins an existing cluster; without it a local Ray is started (and stopped at the end).
    """
    application = build_application(
        config, replicas=replicas, cpus_per_replica=cpus_per_replica, gpus_per_replica=gpus_per_replica
    )
    serve = require("ray.serve", "ray", "Serving on Ray Serve")
    with ray_session(address, purpose="rankwise serve --ray"), _stop_requested() as stop:
        try:
            start(config, application)
            logger.info(
                "serving %s on http://%s:%d with %d Ray Serve replica(s)",
                ", ".join(repr(m.name) for m in config.models),
                config.host,
                config.port,
                replicas,
            )
            while not stop.wait(0.5):
                pass
        finally:
            serve.shutdown()
