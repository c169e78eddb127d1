"""rankwise's HTTP re-rank service: one FastAPI app speaking the Cohere (v1/v2), Jina and TEI re-rank APIs.

Start it with ``rankwise serve --model SPEC`` (see ``docs/server.md``), or build the app yourself::

    >>> import rankwise                                                          # doctest: +SKIP
    >>> from rankwise.server import ServerConfig, create_app                    # doctest: +SKIP
    >>> app = create_app({"minilm": rankwise.load("./my-cross-encoder")}, ServerConfig())  # doctest: +SKIP

Needs ``pip install 'rankwise[server]'`` (FastAPI, uvicorn, pydantic, prometheus-client).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "create_app": "rankwise.server.app",
    "ServerConfig": "rankwise.server.config",
    "ModelSpec": "rankwise.server.config",
    "build_config": "rankwise.server.config",
    "parse_model_spec": "rankwise.server.config",
    "load_models": "rankwise.server.runner",
    "serve": "rankwise.server.runner",
}

__all__ = ["ModelSpec", "ServerConfig", "build_config", "create_app", "load_models", "parse_model_spec", "serve"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rankwise.server' has no attribute {name!r}")
    if module in ("rankwise.server.app", "rankwise.server.runner"):
        from rankwise.errors import require

        for dep in ("fastapi", "uvicorn", "prometheus_client"):
            require(dep, "server", "The rankwise HTTP server")
    return getattr(importlib.import_module(module), name)


if TYPE_CHECKING:  # pragma: no cover
    from rankwise.server.app import create_app
    from rankwise.server.config import ModelSpec, ServerConfig, build_config, parse_model_spec
    from rankwise.server.runner import load_models, serve
