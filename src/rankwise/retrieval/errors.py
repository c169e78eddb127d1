"""Errors the retrieval layer raises: each names the path or value at fault and how to fix it."""

from __future__ import annotations

from rankwise.errors import InvalidInputError, RankwiseError


class IndexNotFoundError(RankwiseError, FileNotFoundError):
    """The index folder (or its manifest) does not exist. Build one with ``rankwise index DOCS --out DIR``."""


class IndexCompatibilityError(RankwiseError):
    """The index was written by an incompatible rankwise or index format, or with another embedding model."""


class EmptyCorpusError(InvalidInputError):
    """No document with any text was found where documents were expected."""


class CorpusError(InvalidInputError):
    """A corpus file or folder that cannot be read as documents (missing, bad JSON, duplicate ids)."""
