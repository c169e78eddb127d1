"""Argument types and helpers shared by subcommands: counts checked by argparse, ``-o KEY=VALUE`` options, model
loading in CLI words.

Counts are checked where they are parsed, so ``--top-k 0`` is refused as ``argument --top-k/-k: must be an integer
>= 1, got '0'`` before any model loads, in the flag's own name.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rankwise.errors import InvalidInputError


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _int_at_least(text, 0)


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}")
    return value


def parse_options(items: list[str]) -> dict[str, Any]:
    """``["batch_size=16", 'quantize="int8"']`` -> ``{"batch_size": 16, "quantize": "int8"}``.

    A value is parsed as JSON when it can be (numbers, true/false, lists), else kept as the text given.
    """
    options: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInputError(f"--option {item!r} must look like KEY=VALUE, e.g. batch_size=16.")
        if key in options:
            raise InvalidInputError(f"--option {key} is given twice; keep one.")
        try:
            options[key] = json.loads(raw)
        except json.JSONDecodeError:
            options[key] = raw
    return options


def load_model(name: str, backend: str | None = None, **options: Any) -> Any:
    """``rankwise.load(name, backend, **options)``, a hub name that cannot be reached reported in one line.

    The torch cross-encoder and the bi-encoder raise a bare ``OSError`` for a hub name they cannot fetch (offline);
    the ONNX backend already says "neither a local model folder nor a reachable hub model". The same words here,
    whatever the backend.
    """
    import rankwise
    from rankwise._hub import hub_errors

    # the ONNX backend's own words for a cross-encoder (rankwise._hub), so both backends print the same line
    what = "a cross-encoder" if backend in (None, "cross-encoder", "onnx") else f"a {backend} model"
    with hub_errors(name, what):
        return rankwise.load(name, backend=backend, **options)
