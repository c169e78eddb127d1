"""The shared cross-encoder engine (rankwise.rerankers.cross_encoder.engine): relevance logits, max-passage scoring of
long documents, the one model-window rule, and the abilities the server reads."""

from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest

from rankwise import CrossEncoderReranker, Document, InvalidInputError
from rankwise.rerankers.base import TokenWindow
from rankwise.rerankers.cross_encoder.engine import CrossEncoderEngine, relevance_logit, resolve_max_length
from rankwise.rerankers.cross_encoder.pairs import load_fast_tokenizer


def test_two_label_heads_use_log_odds_and_others_are_refused():
    np.testing.assert_allclose(relevance_logit(np.array([[0.0, 2.0], [1.0, 0.5]])), [2.0, -0.5])
    with pytest.raises(InvalidInputError, match="3 output labels"):
        relevance_logit(np.zeros((2, 3)))


# --- long documents: chunking --------------------------------------------------------------------------------


class KeywordEngine(CrossEncoderEngine):
    """The real encoder, batching and aggregation, with a transparent 'model': a passage scores 1 when it holds the
    token id of ``keyword`` in its document segment. It makes "which passage is relevant" unambiguous."""

    def __init__(self, tokenizer, keyword_id, **options):
        super().__init__(tokenizer=tokenizer, name="keyword", **options)
        self.keyword_id = keyword_id
        self.passages_seen = 0

    def _forward(self, batches) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for batch in batches:
            in_doc = (batch.token_type_ids == 1) & (batch.input_ids == self.keyword_id)
            self.passages_seen += len(batch.rows)
            yield batch.rows, in_doc.any(axis=1).astype(np.float64)


@pytest.fixture(scope="module")
def tokenizer(tiny_cross_encoder):
    return load_fast_tokenizer(tiny_cross_encoder)


def test_relevant_sentence_at_the_end_of_a_long_document_still_wins(tokenizer):
    keyword_id = tokenizer.encode("lstm", add_special_tokens=False).ids[0]
    long_doc = "the weather was mild and the river was calm . " * 300 + "an lstm keeps long-term memory ."
    assert len(tokenizer.encode(long_doc, add_special_tokens=False).ids) > 3000
    docs = ["a short unrelated note", long_doc, "another unrelated note about rivers"]
    chunked = KeywordEngine(tokenizer, keyword_id)
    assert chunked.rank("what is an lstm", docs)[0].index == 1
    assert chunked.passages_seen > 3  # the long document was split into several passages
    truncated = KeywordEngine(tokenizer, keyword_id, overflow="truncate")
    assert truncated.score("what is an lstm", docs) == [0.0, 0.0, 0.0]  # the end was cut away


# --- the model window: one rule for the torch backend, the ONNX backend and the export ---------------------------

BERT = {"model_type": "bert", "max_position_embeddings": 512}
XLM_R = {"model_type": "xlm-roberta", "max_position_embeddings": 514}  # two rows before the first position


@pytest.mark.parametrize(
    ("requested", "config", "tokenizer_max", "cap", "expected"),
    [
        (None, BERT, None, 512, 512),  # BERT: the position table
        (None, XLM_R, None, 1024, 512),  # XLM-R: the table less its offset of 2, even under a higher cap
        (None, {**XLM_R, "max_position_embeddings": 8194}, None, 512, 512),  # a long model: at most the cap
        (None, BERT, 256, 512, 256),  # a tokenizer that sets a lower limit wins
        (None, BERT, 1024, 512, 512),  # ... but never above the cap
        (None, BERT, int(1e30), 512, 512),  # transformers' "no limit" marker is ignored
        (None, BERT, 0, 512, 512),  # so is a limit that is no limit
        (None, BERT, 512.0, 512, 512),  # a float from tokenizer_config.json
        (None, {"model_type": "bert"}, None, 512, 512),  # a config without positions: the cap
        (None, SimpleNamespace(model_type="camembert", max_position_embeddings=514), None, 512, 512),  # an object
        (128, BERT, 256, 512, 128),  # a requested length is used as given
        (512, XLM_R, None, 512, 512),
        (2048, {"model_type": "bert"}, None, 512, 2048),  # nothing to check it against
    ],
)
def test_max_length_rule(requested, config, tokenizer_max, cap, expected):
    assert resolve_max_length(requested, config, tokenizer_max, cap=cap) == expected


@pytest.mark.parametrize(("requested", "config", "limit"), [(1024, BERT, 512), (513, XLM_R, 512)])
def test_a_max_length_above_the_position_table_is_refused_with_the_limit(requested, config, limit):
    with pytest.raises(InvalidInputError, match=f"max_length={requested} is above .* pass max_length={limit} or less"):
        resolve_max_length(requested, config)


def test_the_torch_backend_refuses_a_max_length_its_model_cannot_read(tiny_cross_encoder):
    # before: accepted, then a tensor-shape RuntimeError on the first document longer than 512 tokens
    with pytest.raises(InvalidInputError, match="max_length=1024 is above what this model can read"):
        CrossEncoderReranker(tiny_cross_encoder, device="cpu", max_length=1024)


def test_the_torch_backend_follows_a_tokenizer_limit(tiny_cross_encoder, tmp_path):
    import json
    import shutil

    folder = shutil.copytree(tiny_cross_encoder, tmp_path / "capped")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "model_max_length": 256}))
    assert CrossEncoderReranker(folder, device="cpu").max_length == 256
    assert CrossEncoderReranker(tiny_cross_encoder, device="cpu").max_length == 512


# --- abilities the server and evaluation read ---------------------------------------------------------------------


def test_abilities_are_declared(tokenizer):
    engine = KeywordEngine(tokenizer, keyword_id=0, max_length=128)
    assert CrossEncoderEngine.independent_scores is True and engine.independent_scores is True
    window = engine.token_window
    assert isinstance(window, TokenWindow)
    assert window.tokenizer is engine.encoder.tokenizer and window.max_length == 128
    assert window.n_special == engine.encoder.template.n_special == 3  # [CLS] q [SEP] d [SEP]
    assert window.max_query_tokens == engine.encoder.max_query_tokens == (128 - 3) // 2
    ids = window.token_ids(["a document", "a document"])
    assert [i.tolist() for i in ids] == [i.tolist() for i in engine.encoder.document_ids(["a document"] * 2)]
    assert window.query_tokens("one two") == 2 and window.document_tokens("one two") == 128 - 3 - 2
    assert window.query_tokens("word " * 500) == window.max_query_tokens
    assert engine.members() == ()


def test_score_groups_share_batches_and_equal_score(tokenizer):
    engine = KeywordEngine(tokenizer, keyword_id=tokenizer.encode("lstm", add_special_tokens=False).ids[0])
    groups = [("what is an lstm", ["an lstm remembers", "rivers"]), ("rivers", ["an lstm remembers"])]
    got = engine.score_groups(groups)
    assert [g.tolist() for g in got] == [engine.score(q, texts) for q, texts in groups]
    assert engine.passages_seen == 2 + 1 + 3  # the group call encoded each distinct (query, text) pair once
    documents = ["an lstm remembers", {"text": "rivers", "title": "lstm"}, Document("x", title="lstm")]
    assert engine.score_groups([("lstm", documents)])[0].tolist() == engine.score("lstm", documents) == [1, 1, 1]
    assert KeywordEngine(tokenizer, keyword_id=engine.keyword_id, fields=("text",)).score_groups(
        [("lstm", documents)])[0].tolist() == [1, 0, 0]  # read by fields, as score() reads them
    with pytest.raises(InvalidInputError, match="score_groups: group 1: document 1 must be a str, a dict"):
        engine.score_groups([("q", ["a"]), ("q", ["a", 5])])


def test_the_package_names_resolve_without_importing_torch_or_onnxruntime():
    import subprocess
    import sys

    code = (
        "import sys, rankwise.rerankers.cross_encoder as ce\n"
        "assert sorted(ce.__all__) == sorted(ce._LAZY) == ce.__dir__(), ce.__all__\n"
        "assert all(getattr(ce, name) is not None for name in ce.__all__)\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'onnxruntime', 'onnx') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
