"""Re-ranker specs (CLI and API) and the metadata-score re-ranker that carries first-stage scores into
fusion."""

from __future__ import annotations

import pytest

from rankwise import BM25Reranker, FusionReranker
from rankwise.errors import InvalidInputError, UnknownModelError
from rankwise.evaluation import build_reranker, parse_spec
from rankwise.rerankers.metadata_score import MetadataScoreReranker


@pytest.mark.parametrize(
    ("spec", "name", "backend", "options"),
    [
        ("bm25", "bm25", None, {}),
        ("default:weights=1,2", "default", None, {"weights": [1, 2]}),
        (
            "minilm-bi-encoder:max_length=512;fields=text",
            "minilm-bi-encoder",
            None,
            {"max_length": 512, "fields": "text"},
        ),
        ("cross-encoder/ms-marco-MiniLM-L-6-v2:onnx", "cross-encoder/ms-marco-MiniLM-L-6-v2", "onnx", {}),
        (
            "my/model:onnx:quantize=int8;batch_size=16",
            "my/model",
            "onnx",
            {"quantize": "int8", "batch_size": 16},
        ),
        (
            "fusion:members=bm25,minilm-bi-encoder;method=rrf",
            "fusion",
            None,
            {"members": ["bm25", "minilm-bi-encoder"], "method": "rrf"},
        ),
        ('fusion:weights=[1, 2.5];name="a;b"', "fusion", None, {"weights": [1, 2.5], "name": "a;b"}),
        ("bm25:stopwords=null", "bm25", None, {"stopwords": None}),
    ],
)
def test_compact_specs_parse(spec: str, name: str, backend: str | None, options: dict) -> None:
    parsed = parse_spec(spec)
    assert (parsed.name, parsed.backend, parsed.options, parsed.label) == (name, backend, options, spec)


def test_json_spec_with_label_and_nested_members() -> None:
    parsed = parse_spec(
        '{"backend": "fusion", "members": ["bm25", {"name": "bm25", "k1": 1.2}], "label": "two bm25"}'
    )
    assert parsed.label == "two bm25" and parsed.backend == "fusion" and parsed.name is None
    built = parsed.build()
    assert isinstance(built, FusionReranker)
    assert [type(m) for m in built.rerankers] == [BM25Reranker, BM25Reranker]
    assert built.rerankers[1].k1 == 1.2


@pytest.mark.parametrize(
    ("spec", "error", "message"),
    [
        ("", InvalidInputError, "non-empty"),
        ("a:b:c", InvalidInputError, "TARGET"),
        ("bm25:k1", UnknownModelError, "unknown backend 'k1'"),
        ("bm25:=3", InvalidInputError, "KEY=VALUE"),
        ("{not json", InvalidInputError, "not valid JSON"),
        ('{"k1": 1}', InvalidInputError, "needs a 'name'"),
        ("bm25:nonsense=1", InvalidInputError, "bm25:nonsense=1.*does not take nonsense; valid options are: k1"),
        ("cross-encoder", InvalidInputError, "MODEL:cross-encoder"),
        ("fusion:members=bm25;method=rrf", InvalidInputError, "members must be a list"),
        ("no-such-model", UnknownModelError, "unknown model"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        build_reranker(spec)


def test_backend_only_and_preset_specs_build() -> None:
    fused = build_reranker("fusion:members=bm25,metadata-score;method=rrf;weights=1,3")
    assert fused.method == "rrf" and fused.weights == [1.0, 3.0]
    assert isinstance(fused.rerankers[1], MetadataScoreReranker)
    assert build_reranker("bm25:k1=1.2;b=0.75").b == 0.75
    reranker = BM25Reranker()
    assert build_reranker(reranker) is reranker


def test_metadata_score_reranks_by_the_carried_score() -> None:
    docs = [
        {"text": "a", "id": 1, "first_stage_score": 1.5},
        {"text": "b", "id": 2, "first_stage_score": 9.0},
    ]
    ranked = MetadataScoreReranker().rank("q", docs)
    assert [r.document.id for r in ranked] == [2, 1]
    assert ranked[0].document.metadata == {"first_stage_score": 9.0}  # untouched
    by_rank = MetadataScoreReranker(field="r", descending=False)
    assert by_rank.score("q", [{"text": "x", "r": 3}, {"text": "y", "r": 1}]) == [-3.0, -1.0]
    assert MetadataScoreReranker(missing=0.0).score("q", ["no metadata"]) == [0.0]


def test_metadata_score_errors_name_the_document_and_fix() -> None:
    with pytest.raises(
        InvalidInputError, match=r"document 1 has no metadata\['first_stage_score'\].*missing="
    ):
        MetadataScoreReranker().score("q", [{"text": "a", "first_stage_score": 1}, "b"])
    with pytest.raises(InvalidInputError, match="is not a number"):
        MetadataScoreReranker().score("q", [{"text": "a", "first_stage_score": "high"}])
    with pytest.raises(InvalidInputError, match="field"):
        MetadataScoreReranker(field="")


def test_metadata_score_is_a_registered_backend() -> None:
    import rankwise

    assert "metadata-score" in rankwise.backends()
    assert parse_spec("metadata-score:field=bm25").build().field == "bm25"
