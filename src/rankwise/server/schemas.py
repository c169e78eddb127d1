"""Request and response bodies of every API shape the server speaks (pydantic v2).

* Cohere v1/v2 and Jina: ``POST /v1/rerank`` and ``POST /v2/rerank`` (:class:`RerankRequest` -> :class:`RerankResponse`).
* Hugging Face TEI: ``POST /rerank`` (:class:`TEIRerankRequest` -> list of :class:`TEIRerankResult`) and
  ``GET /info`` (:class:`TEIInfo`).

Unknown request fields (``priority``, ``relevant_spans``, ``max_chunks_per_doc``...) are accepted and ignored, so the
official clients' newer options never break a call.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

DocumentIn = StrictStr | dict[str, Any]


class RerankRequest(BaseModel):
    """Cohere (v1 and v2) and Jina re-rank request.

    ``documents`` are strings or objects. An object is ranked by its ``text`` field, or by the fields named in
    ``rank_fields`` (values joined by newlines, in that order).
    """

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "model": "minilm",
                    "query": "What is an LSTM?",
                    "top_n": 2,
                    "documents": ["LSTMs are recurrent networks with gates.", "CNNs see images."],
                }
            ]
        },
    )

    model: str | None = Field(
        None, description="Which served model ranks; default: the server's default model."
    )
    query: str = Field(description="The search query (non-empty).")
    documents: list[DocumentIn] = Field(
        description="Strings, or objects with 'text' (or the fields in rank_fields)."
    )
    top_n: int | None = Field(None, ge=1, description="Return only the best top_n results (all by default).")
    return_documents: bool = Field(False, description="Include each document in its result.")
    rank_fields: list[StrictStr] | None = Field(
        None, min_length=1, description="For object documents: the fields whose values are ranked, in order."
    )
    max_tokens_per_doc: int | None = Field(
        None,
        ge=1,
        description="Cut each document to this many tokens (default and maximum: the server's limit).",
    )


class ApiVersion(BaseModel):
    version: str


class BilledUnits(BaseModel):
    """Cohere's ``meta.billed_units``: one search unit is one query with up to 100 documents."""

    search_units: int = Field(description="ceil(documents / 100), at least 1 (Cohere's billing unit).")


class Meta(BaseModel):
    api_version: ApiVersion
    billed_units: BilledUnits | None = None
    warnings: list[str] | None = None


class Usage(BaseModel):
    """Jina's ``usage``: tokens the model read for this request."""

    total_tokens: int = Field(
        description="Per document scored: query tokens + document tokens (after truncation, without special tokens "
        "or passage overlaps); whitespace-separated words for models without a tokenizer."
    )


class RerankResult(BaseModel):
    index: int = Field(description="Position of the document in the request.")
    relevance_score: float = Field(description="The model's score (higher = more relevant).")
    document: dict[str, Any] | None = Field(
        None,
        description="With return_documents: {'text': ...} for a string, the object itself for an object.",
    )


class RerankResponse(BaseModel):
    id: str
    model: str
    results: list[RerankResult]
    meta: Meta
    usage: Usage | None = None


class TEIRerankRequest(BaseModel):
    """Text Embeddings Inference re-rank request. ``model`` is a rankwise extension (default model otherwise)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [{"query": "What is an LSTM?", "texts": ["LSTMs gate memory.", "CNNs see."]}]
        },
    )

    query: str
    texts: list[StrictStr]
    raw_scores: bool = Field(
        False, description="Raw model scores; otherwise a sigmoid is applied (TEI's default)."
    )
    return_text: bool = False
    truncate: bool | None = Field(
        None,
        description="Cut each text to what fits next to the query; otherwise long texts are scored by their "
        "best passage (rankwise never rejects a long text).",
    )
    truncation_direction: Literal["Left", "Right", "left", "right"] = "Right"
    model: str | None = None


class TEIRerankResult(BaseModel):
    index: int
    score: float
    text: str | None = None


class TEIInfo(BaseModel):
    """``GET /info`` in Text Embeddings Inference's shape, describing the default model (see ``docs/server.md``)."""

    model_id: str = Field(description="The default model's served name (what requests send as 'model').")
    model_sha: str | None = None
    model_dtype: str = Field(
        description="float32, float16, int8... or 'unknown' where the backend does not say."
    )
    model_type: dict[str, Any] = Field(description='{"reranker": {"id2label": {...}, "label2id": {...}}}')
    max_concurrent_requests: int | None = Field(description="--max-connections; null when unlimited.")
    max_input_length: int = Field(
        description="Tokens per (query, passage) model input; words without tokenizer."
    )
    max_batch_tokens: int | None = Field(
        description="Token budget of one model batch; null where not token-based."
    )
    max_batch_requests: int | None = None
    max_client_batch_size: int = Field(description="Most documents per request (--max-documents).")
    auto_truncate: bool = Field(
        description="True: long texts are never refused (cut or scored by best passage)."
    )
    tokenization_workers: int = Field(description="Tokenization runs in each model's one worker thread.")
    version: str = Field(description="rankwise's version.")
    sha: str | None = None
    docker_label: str | None = None
    served_models: list[str] = Field(description="rankwise extension: every served model, the default first.")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    owned_by: str = "rankwise"
    backend: str
    batching: bool


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
    default: str


class ErrorBody(BaseModel):
    """Every error: ``message`` (Cohere/Jina clients read it) and ``error`` (TEI clients read it) hold the same text."""

    message: str
    error: str
    error_type: str
