"""Errors rankwise raises. Every message names the offending value and says how to fix it."""

from __future__ import annotations


class RankwiseError(Exception):
    """Base class of every error rankwise raises on purpose."""


class InvalidInputError(RankwiseError, ValueError):
    """A query, document, option or score that rankwise cannot use (empty query, non-string text, top_k < 1, NaN)."""


class UnknownModelError(RankwiseError, ValueError):
    """A model name or backend that the registry does not know; the message lists the valid ones."""


class MissingDependencyError(RankwiseError, ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""


def require(module: str, extra: str, purpose: str):  # noqa: ANN201 - returns a module
    """Import ``module`` or raise :class:`MissingDependencyError` naming the ``rankwise[extra]`` that installs it.

    Called at the point of use so that ``import rankwise`` never pulls in heavy packages.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised through the message test
        raise MissingDependencyError(
            f"{purpose} needs the Python package {module.split('.')[0]!r}, which is not installed: "
            f"pip install 'rankwise[{extra}]'  (original error: {exc})"
        ) from exc
