"""rankwise.documents: converting candidates, the one text rule, and the one reader of document files (the CLI's
``rerank``, ``rankwise index`` and evaluation's ``corpus.jsonl`` all read through it)."""

from __future__ import annotations

import json

import pytest

from rankwise.cli import main
from rankwise.documents import (
    CorpusError,
    EmptyCorpusError,
    from_record,
    parse_documents,
    read_corpus,
)
from rankwise.errors import InvalidInputError
from rankwise.evaluation import load_dataset
from rankwise.types import Document
from tests.support.evaluation import make_beir
from tests.support.retrieval import collection


# -- parse_documents: what ``rankwise rerank --docs`` reads ---------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('["a", {"text": "b"}]', ["a", {"text": "b"}]),
        ('{"text": "a", "id": 1}\n\n"b"\n', [{"text": "a", "id": 1}, "b"]),
        ("first line\nsecond line\n\n", ["first line", "second line"]),
    ],
)
def test_document_formats_are_detected(text, expected):
    assert parse_documents(text) == expected


def test_bad_jsonl_line_is_located():
    with pytest.raises(InvalidInputError, match=r"docs.jsonl:2: not a JSON line"):
        parse_documents('{"text": "a"}\n{"text": \n', "jsonl", "docs.jsonl")


def test_a_documents_object_is_json_in_every_layout():
    rows = [{"_id": "d1", "text": "alpha"}, "beta"]
    for text in (json.dumps({"documents": rows}), json.dumps({"documents": rows}, indent=2)):
        assert parse_documents(text) == rows
        assert parse_documents(text, "json") == rows
    with pytest.raises(InvalidInputError, match="--docs-format must be one of"):
        parse_documents("x", "csv")
    with pytest.raises(InvalidInputError, match="use --format lines"):
        parse_documents("{oops", "json", "d.json", option="--format")


# -- from_record: BEIR ids and named fields -------------------------------------------------------------------------
def test_from_record_honours_beir_ids_and_keeps_every_other_key():
    doc = from_record({"_id": "d1", "title": "T", "text": "x", "year": 2020, "metadata": {"k": 1}}, 0)
    assert (doc.id, doc.title, doc.text, dict(doc.metadata)) == ("d1", "T", "x", {"k": 1, "year": 2020})
    both = from_record({"_id": "beir", "id": 7, "text": "x"}, 0)  # an explicit id wins; _id is not dropped
    assert both.id == 7 and dict(both.metadata) == {"_id": "beir"}
    named = from_record({"body": "b", "name": "n", "text": "other"}, 0, text_field="body", title_field="name")
    assert (named.text, named.title, dict(named.metadata)) == ("b", "n", {"text": "other"})
    assert from_record("plain", 0) == Document("plain")
    with pytest.raises(InvalidInputError, match="document 3: 'text' must be a str"):
        from_record({"_id": "a", "text": 5}, 3)


def test_rerank_reads_beir_ids(tmp_path, capsys):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "d1", "text": "lstm memory gates"}\n{"_id": "d2", "text": "images", "year": 1}\n')
    assert main(["rerank", "-q", "lstm", "-d", str(path), "-m", "bm25", "-f", "jsonl", "--no-progress"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in rows] == ["d1", "d2"] and rows[1]["metadata"] == {"year": 1}


# -- read_corpus: rankwise index and evaluation ---------------------------------------------------------------------
def test_evaluation_and_index_read_a_corpus_alike(tmp_path):
    root = make_beir(tmp_path / "c")
    with (root / "corpus.jsonl").open("a") as f:
        f.write(json.dumps({"_id": "d5", "title": "Old", "text": "perceptrons", "year": 1958, "url": "u"}) + "\n")
    corpus = load_dataset(root).corpus
    assert dict(corpus["d5"].metadata) == {"year": 1958, "url": "u"}  # top-level keys are kept, not dropped
    assert list(corpus.values()) == read_corpus(root / "corpus.jsonl")


def test_corpus_errors_name_the_line_for_every_reader(tmp_path):
    (tmp_path / "latin1.jsonl").write_bytes('{"text": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin1.jsonl is not UTF-8 text \(byte 0xe9"):
        read_corpus(tmp_path / "latin1.jsonl")
    (tmp_path / "types.jsonl").write_text('{"text": "ok"}\n[1]\n')
    with pytest.raises(CorpusError, match=r"types.jsonl:2: expected a JSON object or string, got list"):
        read_corpus(tmp_path / "types.jsonl")
    (tmp_path / "meta.json").write_text(json.dumps([{"text": "a", "metadata": [1]}]))
    with pytest.raises(CorpusError, match=r"meta.json\[0\]: document 0: 'metadata' must be a dict"):
        read_corpus(tmp_path / "meta.json")
    (tmp_path / "noid.jsonl").write_text('{"text": "a"}\n')
    with pytest.raises(CorpusError, match=r'noid.jsonl:1: missing "_id"'):
        read_corpus(tmp_path / "noid.jsonl", require_ids=True)


def test_read_beir_jsonl_keeps_ids_titles_and_extra_keys():
    docs = read_corpus(collection("adi") / "corpus.jsonl")
    assert len(docs) == 82
    assert docs[0].id == "1" and docs[0].title.startswith("the ibm dsd technical information center")
    assert len({d.id for d in docs}) == 82


def test_read_jsonl_json_and_strings(tmp_path):
    rows = [{"id": 7, "title": "T", "text": "alpha", "url": "u", "metadata": {"year": 1}}, "plain text line"]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    docs = read_corpus(tmp_path / "d.jsonl")
    assert [(d.id, d.title, d.text) for d in docs] == [("7", "T", "alpha"), ("1", None, "plain text line")]
    assert dict(docs[0].metadata) == {"year": 1, "url": "u"}
    (tmp_path / "d.json").write_text(json.dumps({"documents": rows}))
    assert [d.text for d in read_corpus(tmp_path / "d.json")] == ["alpha", "plain text line"]
    (tmp_path / "list.json").write_text(json.dumps(["a", "b"]))
    assert [d.id for d in read_corpus(tmp_path / "list.json")] == ["0", "1"]


def test_read_folder_of_text_and_markdown(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text("plain words here")
    (tmp_path / "sub" / "b.md").write_text("intro line\n# The Title #\nbody text")
    (tmp_path / ".hidden.md").write_text("# secret")
    (tmp_path / "skip.pdf").write_bytes(b"%PDF")
    docs = read_corpus(tmp_path)
    assert [(d.id, d.title, dict(d.metadata)) for d in docs] == [
        ("a.txt", None, {"path": "a.txt"}), ("sub/b.md", "The Title", {"path": "sub/b.md"})
    ]
    assert read_corpus(tmp_path / "a.txt")[0].text == "plain words here"


def test_corpus_errors_name_the_path_and_line(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        read_corpus(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyCorpusError, match="no documents found"):
        read_corpus(tmp_path / "empty")
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{not json}\n')
    with pytest.raises(CorpusError, match=r"bad.jsonl:2: not a JSON line"):
        read_corpus(tmp_path / "bad.jsonl")
    (tmp_path / "dup.jsonl").write_text('{"_id": "x", "text": "a"}\n{"_id": "x", "text": "b"}\n')
    with pytest.raises(CorpusError, match="'x' appears twice"):
        read_corpus(tmp_path / "dup.jsonl")
    (tmp_path / "x.csv").write_text("a,b")
    with pytest.raises(CorpusError, match="unknown suffix"):
        read_corpus(tmp_path / "x.csv")
    (tmp_path / "obj.json").write_text('{"a": 1}')
    with pytest.raises(CorpusError, match="'documents' list"):
        read_corpus(tmp_path / "obj.json")


