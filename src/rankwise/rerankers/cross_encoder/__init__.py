"""Cross-encoders: a model reads the query and one document together and gives one relevance score.

The whole backend lives here, one module per step a (query, documents) call goes through:

* :mod:`.engine` -- :class:`CrossEncoderEngine`, what every cross-encoder shares: validation, the model window
  (:func:`~.engine.resolve_max_length`), max-passage scoring of long documents, normalisation, the abilities the
  server reads (``independent_scores``, ``score_groups``, ``token_window``);
* :mod:`.pairs` -- (query, document) token pairs in the model's own template, long documents cut into passages;
* :mod:`.batching` -- length-sorted batches under a token budget; :mod:`.parallel` -- batches side by side on a CPU;
* :mod:`.torch` -- :class:`CrossEncoderReranker` (transformers, CPU or GPU); :mod:`.onnx` -- :class:`OnnxReranker`
  (onnxruntime, fp32 or int8, no torch);
* :mod:`.export` -- a transformers model to a checked ONNX folder, with :mod:`.graph` (the torch side of it) and
  :mod:`.cache` (exports cached on disk, keyed by the source model).

Names are imported on first use, so importing this package never imports torch or onnxruntime.

Example:
    >>> from rankwise.rerankers.cross_encoder import CrossEncoderReranker   # doctest: +SKIP
    >>> CrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L-6-v2").rank("q", ["a", "b"])  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rankwise._lazy import by_name, lazy_attributes

_LAZY: dict[str, str] = by_name(
    {
        "rankwise.rerankers.cross_encoder.engine": ("CrossEncoderEngine", "relevance_logit", "resolve_max_length"),
        "rankwise.rerankers.cross_encoder.pairs": ("PairEncoder", "load_fast_tokenizer"),
        "rankwise.rerankers.cross_encoder.torch": ("CrossEncoderReranker",),
        "rankwise.rerankers.cross_encoder.onnx": ("OnnxReranker",),
        "rankwise.rerankers.cross_encoder.export": ("export_onnx",),
        "rankwise.rerankers.cross_encoder.cache": ("cached_onnx_folder",),
    }
)

__all__ = [
    "CrossEncoderEngine", "CrossEncoderReranker", "OnnxReranker", "PairEncoder", "cached_onnx_folder", "export_onnx",
    "load_fast_tokenizer", "relevance_logit", "resolve_max_length",
]  # a literal list, so linters see what the TYPE_CHECKING imports below are for; a test checks it equals _LAZY

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals(), __all__)

if TYPE_CHECKING:  # for type checkers and IDEs only
    from rankwise.rerankers.cross_encoder.cache import cached_onnx_folder
    from rankwise.rerankers.cross_encoder.engine import (
        CrossEncoderEngine,
        relevance_logit,
        resolve_max_length,
    )
    from rankwise.rerankers.cross_encoder.export import export_onnx
    from rankwise.rerankers.cross_encoder.onnx import OnnxReranker
    from rankwise.rerankers.cross_encoder.pairs import PairEncoder, load_fast_tokenizer
    from rankwise.rerankers.cross_encoder.torch import CrossEncoderReranker
