"""Server settings: one frozen dataclass, filled from defaults < config file < environment < command-line flags.

A model is given as a *spec* string (see :func:`parse_model_spec`)::

    minilm=./models/ms-marco-MiniLM-L-6-v2:onnx?normalize=true&max_length=256
    ^name  ^source (preset, hub name or folder) ^backend ^options for the backend (JSON values)

or, in a config file, as a table ``{name, source, backend, options}``.

Example:
    >>> spec = parse_model_spec("fast=./ce-folder:onnx?normalize=true")
    >>> spec.name, spec.source, spec.backend, dict(spec.options)
    ('fast', './ce-folder', 'onnx', {'normalize': True})
    >>> parse_model_spec("bm25").name
    'bm25'
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote

from rankwise.errors import InvalidInputError

ENV_PREFIX = "RANKWISE_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
_NO_KEY = (
    "{where}: {value!r} holds no API key (only blanks and commas), which would leave the server open; give at least "
    "one key (RANKWISE_API_KEYS=key1,key2), or unset the setting to run without keys."
)


@dataclass(frozen=True)
class ModelSpec:
    """One model to serve: the name clients send as ``model``, what to load, and the backend's options."""

    name: str
    source: str
    backend: str | None = None
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def load(self):  # noqa: ANN201 - rankwise.Reranker
        """Build the re-ranker with :func:`rankwise.load` (the model's own ``name`` is kept for logs)."""
        from rankwise.registry import load

        return load(self.source, backend=self.backend, **dict(self.options))

    def shown_options(self) -> dict[str, Any]:
        """The options for display (logs, ``--print-config``): an ``api_key`` (a remote backend's) as ``***``."""
        return {k: ("***" if k == "api_key" else v) for k, v in self.options.items()}

    def __repr__(self) -> str:
        return (
            f"ModelSpec(name={self.name!r}, source={self.source!r}, backend={self.backend!r}, "
            f"options={self.shown_options()!r})"
        )


def _redacted(spec: str) -> str:
    """``spec`` with the value of an ``api_key=`` option replaced by ``***``, for messages that quote the spec.

    Example:
        >>> _redacted("gw=rerank-v3.5:cohere?api_key=s3cret&timeout=5")
        'gw=rerank-v3.5:cohere?api_key=***&timeout=5'
    """
    return re.sub(r"(api_key=)[^&]*", r"\1***", spec)


def _json_value(text: str) -> Any:
    """``true`` -> True, ``256`` -> 256, ``["a","b"]`` -> list; anything that is not JSON stays a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_model_spec(spec: str) -> ModelSpec:
    """Parse ``[NAME=]SOURCE[:BACKEND][?key=value&key=value]``.

    * ``NAME`` (letters, digits, ``.``, ``_``, ``-``) is what clients send as ``model``; default: ``SOURCE`` as written.
    * ``SOURCE`` is a preset (``rankwise models``), a Hugging Face name or a local folder.
    * ``:BACKEND`` is taken only when it names a registered backend (``cross-encoder``, ``onnx``, ``bm25``...), so a
      path with a colon in it still works.
    * options after ``?`` go to the backend's constructor; values are JSON when they parse (``true``, ``256``).
    """
    from rankwise.registry import backends

    if not isinstance(spec, str) or not spec.strip():
        raise InvalidInputError(
            f"a model spec must be a non-empty string like 'name=path:backend', got {spec!r}."
        )
    text, _, query = spec.strip().partition("?")
    options: dict[str, Any] = {}
    for part in filter(None, query.split("&")):
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise InvalidInputError(
                f"model spec {_redacted(spec)!r}: options after '?' must look like key=value&key=value."
            )
        options[unquote(key)] = _json_value(unquote(value))
    name = None
    head, eq, rest = text.partition("=")
    if eq and _NAME.match(head):
        name, text = head, rest
    backend = None
    base, colon, tail = text.rpartition(":")
    if colon and tail in backends():
        text, backend = base, tail
    if not text:
        raise InvalidInputError(
            f"model spec {_redacted(spec)!r} has no model source; e.g. 'minilm=./model-folder:onnx'."
        )
    return ModelSpec(name=name or text, source=text, backend=backend, options=MappingProxyType(options))


def _model_from_table(item: Any, where: str) -> ModelSpec:
    if isinstance(item, str):
        return parse_model_spec(item)
    if not isinstance(item, Mapping) or "source" not in item:
        raise InvalidInputError(
            f"{where}: each model must be a spec string or a table with 'source' (and optional 'name', 'backend', "
            f"'options'); got {item!r}."
        )
    unknown = set(item) - {"name", "source", "backend", "options"}
    if unknown:
        raise InvalidInputError(
            f"{where}: unknown model keys {sorted(unknown)}; use name, source, backend, options."
        )
    options = item.get("options") or {}
    if not isinstance(options, Mapping):
        raise InvalidInputError(f"{where}: 'options' must be a table, got {options!r}.")
    name = str(item.get("name") or item["source"])
    if not _NAME.match(name) and name != item["source"]:
        raise InvalidInputError(
            f"{where}: model name {name!r} may only hold letters, digits, '.', '_' and '-'."
        )
    return ModelSpec(name, str(item["source"]), item.get("backend"), MappingProxyType(dict(options)))


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``rankwise serve`` can be told. See ``docs/server.md`` for each setting's flag and variable.

    Example:
        >>> ServerConfig(api_keys=("k1",)).host
        '127.0.0.1'
    """

    host: str = "127.0.0.1"
    port: int = 8000
    models: tuple[ModelSpec, ...] = ()
    default_model: str | None = None
    api_keys: tuple[str, ...] = field(default=(), repr=False)  # secrets: never in a repr, a log or a traceback
    api_keys_file: str | None = None
    cors_origins: tuple[str, ...] = ()
    max_documents: int = 1000
    max_tokens_per_doc: int = 4096
    max_body_bytes: int = 10 * 1024 * 1024
    max_query_bytes: int = 64 * 1024
    batching: bool = True
    max_batch_pairs: int = 256
    max_wait_ms: float = 5.0
    chunk_pairs: int = 32
    max_queue_pairs: int = 200_000
    graceful_timeout_s: float = 30.0
    request_timeout_s: float | None = 60.0
    max_connections: int | None = None
    docs: bool = True
    log_level: str = "info"

    def __post_init__(self) -> None:
        positive = (
            "port",
            "max_documents",
            "max_tokens_per_doc",
            "max_body_bytes",
            "max_query_bytes",
            "max_batch_pairs",
            "chunk_pairs",
            "max_queue_pairs",
        )
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"{name} must be an integer >= 1, got {value!r}.")
        if self.max_wait_ms < 0 or self.graceful_timeout_s < 0:
            raise InvalidInputError(
                f"max_wait_ms and graceful_timeout_s must be >= 0, got {self.max_wait_ms} and {self.graceful_timeout_s}."
            )
        timeout = self.request_timeout_s
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0
        ):
            raise InvalidInputError(
                f"request_timeout_s must be a number of seconds >= 0 (0 or none: no deadline), got {timeout!r}."
            )
        if timeout == 0:  # 0 means "no deadline": store it as None so the server checks one thing
            object.__setattr__(self, "request_timeout_s", None)
        names = [m.name for m in self.models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InvalidInputError(
                f"model names must be unique; {dupes} given twice. Name them: 'a=SOURCE'."
            )
        if self.default_model is not None and names and self.default_model not in names:
            raise InvalidInputError(f"default_model {self.default_model!r} is not among the models {names}.")
        if self.api_keys and not any(str(k).strip() for k in self.api_keys):
            raise InvalidInputError(_NO_KEY.format(where="api_keys", value=self.api_keys))

    def all_api_keys(self) -> tuple[str, ...]:
        """Keys given directly plus those in ``api_keys_file`` (one a line; blank lines and ``#`` comments skipped)."""
        keys = list(self.api_keys)
        if self.api_keys_file:
            path = Path(self.api_keys_file)
            try:
                lines = path.read_text().splitlines()
            except OSError as exc:
                raise InvalidInputError(f"cannot read api_keys_file {str(path)!r}: {exc}") from exc
            found = [s.strip() for s in lines if s.strip() and not s.strip().startswith("#")]
            if not found:  # a keys file that holds no key must not leave the server open without a word
                raise InvalidInputError(
                    f"api_keys_file {str(path)!r} holds no key (only blank lines and '#' comments); put one key a "
                    "line in it, or drop the setting to run without keys."
                )
            keys += found
        return tuple(dict.fromkeys(k.strip() for k in keys if k.strip()))


_FIELD_TYPES = {f.name: f.type for f in fields(ServerConfig)}
_NONE_WORDS = ("", "none", "null", "off")  # optional numbers (e.g. RANKWISE_REQUEST_TIMEOUT_S=none)


def _coerce(name: str, value: Any, where: str) -> Any:
    """Turn a file/env/flag value into the field's type, with an error that names the setting and its source."""
    kind = _FIELD_TYPES[name]
    try:
        if name == "models":
            items = value.split(",") if isinstance(value, str) else value
            if isinstance(items, (str, Mapping)) or not isinstance(items, Sequence):
                items = [items]
            return tuple(
                _model_from_table(m, where) for m in items if not (isinstance(m, str) and not m.strip())
            )
        if kind.startswith("tuple"):
            items = value.split(",") if isinstance(value, str) else list(value)
            out = tuple(str(s).strip() for s in items if str(s).strip())
            if name == "api_keys" and not out and (isinstance(value, str) or items):
                # keys were given but every one is blank (RANKWISE_API_KEYS=" , ", or ""): refuse, never run open
                raise InvalidInputError(_NO_KEY.format(where=f"{where}: api_keys", value=value))
            return out
        if value is None:
            return None
        if (
            kind.endswith("| None")
            and not kind.startswith("str")
            and isinstance(value, str)
            and value.strip().lower() in _NONE_WORDS
        ):
            return None
        if kind == "bool":
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                return lowered in ("1", "true", "yes", "on")
            return bool(value)
        if kind.startswith("int"):
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind.startswith("float"):
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        return str(value)
    except InvalidInputError:  # already names the setting and its source
        raise
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where}: {name}={value!r} is not a valid {kind}.") from exc


def _toml_module(path: Path) -> Any:
    """``tomllib`` (Python 3.11+) or its backport ``tomli`` (installed by ``rankwise[server]`` on Python 3.10).

    Example:
        >>> hasattr(_toml_module(Path("server.toml")), "loads")
        True
    """
    import sys

    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    from rankwise.errors import MissingDependencyError, require

    try:
        return require("tomli", "server", f"Reading the TOML config file {str(path)!r} on Python 3.10")
    except MissingDependencyError as exc:
        raise MissingDependencyError(f"{exc}; or write the settings as a .json file.") from exc


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Settings from a ``.toml`` or ``.json`` file (top-level keys are :class:`ServerConfig` field names)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read config file {str(path)!r}: {exc}") from exc
    toml = None if path.suffix.lower() == ".json" else _toml_module(path)
    try:
        data = json.loads(raw) if toml is None else toml.loads(raw.decode())
    except Exception as exc:
        raise InvalidInputError(f"config file {str(path)!r} does not parse: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInputError(f"config file {str(path)!r} must hold a table/object of settings.")
    return _checked(data, f"config file {path}")


def read_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Settings from ``RANKWISE_<FIELD>`` variables (lists comma-separated); ``RANKWISE_CONFIG`` is not one."""
    environ = os.environ if environ is None else environ
    out = {}
    for name in _FIELD_TYPES:
        key = ENV_PREFIX + name.upper()
        if key in environ:
            out[name] = _coerce(name, environ[key], f"environment variable {key}")
    return out


def _checked(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(set(data) - set(_FIELD_TYPES))
    if unknown:
        raise InvalidInputError(
            f"{where}: unknown settings {unknown}; known: {', '.join(sorted(_FIELD_TYPES))}."
        )
    return {k: _coerce(k, v, where) for k, v in data.items()}


def build_config(
    flags: Mapping[str, Any] | None = None,
    *,
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServerConfig:
    """Merge the sources: defaults < config file < environment (``RANKWISE_*``) < flags (values that are not None).

    The config file is ``config_file``, else ``$RANKWISE_CONFIG`` when set. Lists (models, api_keys, cors_origins)
    are replaced by a later source, never merged.
    """
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    path = config_file or environ.get(ENV_PREFIX + "CONFIG")
    if path:
        merged.update(read_config_file(path))
    merged.update(read_env(environ))
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    merged.update(_checked(given, "command line"))
    return replace(ServerConfig(), **merged)
