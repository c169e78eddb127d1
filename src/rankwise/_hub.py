"""One error for "this model name is neither a local folder nor a reachable hub model", whatever loads it.

transformers and sentence-transformers raise a bare ``OSError`` (several lines, plus a long chain of hub client
errors) when a name is not a folder and the hub cannot be reached -- offline (``HF_HUB_OFFLINE=1``), no network, or
no such repository. Every backend turns it into the same :class:`~rankwise.errors.InvalidInputError`, so the torch and
ONNX cross-encoders (and the bi-encoder) say the same thing, and the CLI prints it as one line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rankwise.errors import InvalidInputError

_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def offline_hint() -> str:
    """Which offline switch is on (``" (HF_HUB_OFFLINE=1 is set)"``), or ``""``."""
    on = [f"{v}={os.environ[v]}" for v in _OFFLINE_VARIABLES if os.environ.get(v, "").strip() not in ("", "0")]
    return f" ({', '.join(on)} is set)" if on else ""


def not_loadable(
    source: str | os.PathLike[str], exc: BaseException, what: str = "a cross-encoder"
) -> InvalidInputError:
    """The error for a model ``source`` that could not be loaded as ``what`` (``exc``: the loader's OSError)."""
    source = str(source)
    detail = " ".join(str(exc).split())  # the loader's message, on one line
    if Path(source).exists():
        return InvalidInputError(f"cannot load {source!r} as {what}: {detail}")
    return InvalidInputError(
        f"cannot load {source!r} as {what}: it is neither a local model folder nor a reachable hub model"
        f"{offline_hint()}; pass the path of a downloaded model folder, or run where the Hugging Face hub is "
        f"reachable ({detail})"
    )


@contextmanager
def hub_errors(source: str | os.PathLike[str], what: str = "a cross-encoder") -> Iterator[None]:
    """Turn an ``OSError`` raised while loading ``source`` into :func:`not_loadable`'s error.

    Example:
        >>> with hub_errors(name):                                                # doctest: +SKIP
        ...     model = AutoModelForSequenceClassification.from_pretrained(name)
    """
    try:
        yield
    except OSError as exc:
        raise not_loadable(source, exc, what) from exc


@contextmanager
def loading(source: str | os.PathLike[str], what: str = "a cross-encoder") -> Iterator[None]:
    """Load ``source`` quietly: transformers' "Loading weights" bars are off while the block runs (library code never
    prints), and a hub/folder ``OSError`` becomes :func:`not_loadable`'s error.

    Example:
        >>> with loading(name):                                                  # doctest: +SKIP
        ...     model = AutoModelForSequenceClassification.from_pretrained(name)
    """
    try:
        from transformers.utils import logging as bars
    except ImportError:  # the block will raise MissingDependencyError itself
        bars = None
    was_on = bars is not None and bars.is_progress_bar_enabled()
    if was_on:
        bars.disable_progress_bar()
    try:
        with hub_errors(source, what):
            yield
    finally:
        if was_on:
            bars.enable_progress_bar()
