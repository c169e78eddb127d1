"""Quantizer option sets: defaults with a caller's overrides, checked the same way for every quantizer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rankwise.errors import InvalidInputError


def with_overrides(defaults: Mapping[str, Any], overrides: Mapping[str, Any] | None, what: str,
                   list_keys: Sequence[str] = ("keep_fp32",)) -> dict[str, Any]:
    """``defaults`` with ``overrides`` applied (every quantizer's option set): an unknown key is an error naming
    ``what`` and the valid keys; ``list_keys`` take lists of strings, stored as tuples (a lone string, which would be
    read letter by letter, is an error)."""
    opts = dict(defaults)
    for key, value in (overrides or {}).items():
        if key not in opts:
            raise InvalidInputError(f"unknown {what} {key!r}; valid: {', '.join(opts)}.")
        if key in list_keys and isinstance(value, str):
            raise InvalidInputError(f"int8 option {key!r} takes a list of strings, got the string {value!r}.")
        opts[key] = tuple(value) if key in list_keys else value
    return opts
