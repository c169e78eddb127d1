"""``GET /info`` in the shape of Hugging Face Text Embeddings Inference's, for the default model.

TEI serves one model; rankwise may serve several, so ``/info`` describes the default one (``model_id``) and lists every
served name under ``served_models`` (a rankwise extension TEI clients ignore). Fields are read from the loaded model
where it says (a cross-encoder's window, batch token budget, dtype and labels); the rest are the closest rankwise
setting, documented in ``docs/server.md``.

Example:
    >>> _dtype_name("torch.float16"), _dtype_name(None)
    ('float16', 'unknown')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rankwise.server.schemas import TEIInfo

if TYPE_CHECKING:  # pragma: no cover
    from rankwise.server.state import ServingState

_DEFAULT_LABELS = {"0": "LABEL_0"}


def _dtype_name(dtype: object) -> str:
    """``torch.float32`` -> ``float32``; None -> ``unknown``."""
    if dtype is None:
        return "unknown"
    return str(dtype).rsplit(".", 1)[-1]


def model_dtype(model: Any) -> str:
    """The weights' dtype: a torch model's first parameter, ``int8`` for a quantized ONNX graph, else ``unknown``."""
    quantize = getattr(model, "quantize", None)
    if quantize:
        return str(quantize)
    if getattr(model, "session", None) is not None:  # ONNX Runtime, not quantized: the fp32 graph
        return "float32"
    network = getattr(model, "model", None)
    parameters = getattr(network, "parameters", None)
    if callable(parameters):
        first = next(iter(parameters()), None)
        return _dtype_name(getattr(first, "dtype", None))
    return "unknown"


def model_type(model: Any) -> dict[str, Any]:
    """``{"reranker": {"id2label", "label2id"}}``: the model's own labels when it has a Hugging Face config."""
    config = getattr(getattr(model, "model", None), "config", None)
    id2label = getattr(config, "id2label", None) or _DEFAULT_LABELS
    id2label = {str(k): str(v) for k, v in id2label.items()}
    return {"reranker": {"id2label": id2label, "label2id": {v: int(k) for k, v in id2label.items()}}}


def tei_info(state: ServingState) -> TEIInfo:
    """The ``/info`` body for ``state``'s default model."""
    from rankwise import __version__

    name = state.default
    model = state.models[name]
    config = state.config
    window = model.token_window
    max_input = window.max_length if window is not None else None
    budget = getattr(model, "max_tokens", None) if window is not None else None  # a cross-encoder's batch budget
    return TEIInfo(
        model_id=name,
        model_dtype=model_dtype(model),
        model_type=model_type(model),
        max_concurrent_requests=config.max_connections,
        max_input_length=int(max_input) if isinstance(max_input, int) else config.max_tokens_per_doc,
        max_batch_tokens=int(budget) if isinstance(budget, int) else None,
        max_batch_requests=None,
        max_client_batch_size=config.max_documents,
        auto_truncate=True,
        tokenization_workers=1,
        version=__version__,
        served_models=[name, *(n for n in state.models if n != name)],
    )
