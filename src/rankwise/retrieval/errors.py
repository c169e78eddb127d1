"""Errors the retrieval layer raises: each names the path or value at fault and how to fix it.

Documents that cannot be read raise :class:`~rankwise.documents.CorpusError` or
:class:`~rankwise.documents.EmptyCorpusError` (both also importable from :mod:`rankwise.retrieval`).
"""

from __future__ import annotations

from rankwise.errors import RankwiseError


class IndexNotFoundError(RankwiseError, FileNotFoundError):
    """The index folder (or its manifest) does not exist. Build one with ``rankwise index DOCS --out DIR``."""


class IndexCompatibilityError(RankwiseError):
    """The index was written by an incompatible rankwise or index format, or with another embedding model."""
