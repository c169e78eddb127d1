"""Fixtures of the server tests, the models they serve; load them with
``pytest_plugins = ("tests.support.server_fixtures",)``.

Helpers (LiveServer, live_server, GatedCrossEncoder...) are in tests/support/server.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rankwise.rerankers.cross_encoder import CrossEncoderReranker


@pytest.fixture(scope="session")
def sharp_cross_encoder(tmp_path_factory) -> Path:  # noqa: ANN001
    """A tiny random BERT cross-encoder whose weights are drawn wide (std 0.3, not 0.02), so that its scores differ
    clearly between documents (a default-initialised one scores everything within ~1e-5)."""
    from rankwise.testing import make_tiny_cross_encoder

    return make_tiny_cross_encoder(tmp_path_factory.mktemp("server-models") / "sharp-ce", initializer_range=0.3)


@pytest.fixture(scope="session")
def tiny_ce(sharp_cross_encoder) -> CrossEncoderReranker:  # noqa: ANN001
    """The tiny cross-encoder, loaded once, chunking long documents (the default)."""
    return CrossEncoderReranker(sharp_cross_encoder, device="cpu")


@pytest.fixture(scope="session")
def tiny_ce_truncating(sharp_cross_encoder) -> CrossEncoderReranker:  # noqa: ANN001
    return CrossEncoderReranker(sharp_cross_encoder, device="cpu", overflow="truncate")


@pytest.fixture(scope="session")
def bm25_model():  # noqa: ANN201
    """The offline ``bm25`` preset, loaded once."""
    import rankwise

    return rankwise.load("bm25")


@pytest.fixture(scope="session")
def default_model():  # noqa: ANN201
    """The offline ``default`` preset (BM25 + MiniLM bi-encoder, z-score fusion), loaded once."""
    import rankwise

    return rankwise.load("default")
