"""Shared fixtures: models the tests build themselves (no hub access), and the README's example."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RANKWISE_DATA", ROOT.parent / "shared" / "data"))

SEED_QUERY = "How does LSTM handle long-term dependencies?"
SEED_DOCS = [
    (
        "LSTM networks use gating mechanisms (input, forget and output gates) and a cell state to carry information "
        "across many time steps, which mitigates the vanishing gradient problem in long sequences."
    ),
    "Convolutional neural networks apply learned filters over local regions of an image to detect edges and shapes.",
    "Transformers rely on self-attention to relate every token in a sequence to every other token.",
]


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory) -> Path:
    """A random 2-layer BERT cross-encoder folder, built once per test session."""
    from rankwise.testing import make_tiny_cross_encoder

    return make_tiny_cross_encoder(tmp_path_factory.mktemp("models") / "tiny-ce")


@pytest.fixture(scope="session")
def sharp_tiny_cross_encoder(tmp_path_factory) -> Path:
    """The tiny random BERT with larger weights (std 0.3 instead of 0.02): its scores spread over ~1 rather than
    ~1e-5, so agreement checks between backends mean something."""
    from rankwise.testing import make_tiny_cross_encoder

    return make_tiny_cross_encoder(tmp_path_factory.mktemp("models") / "sharp-tiny-ce", initializer_range=0.3)


@pytest.fixture(scope="session")
def bi_encoder():
    from rankwise import BiEncoderReranker

    return BiEncoderReranker(device="cpu")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"evaluation data not found at {DATA} (set RANKWISE_DATA)")
    return DATA
