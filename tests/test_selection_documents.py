"""Judges read whole candidates: titles and chosen fields reach re-ranker judges exactly as ``rank()`` reads them,
LLM and text judges through the one documents text rule; the caller's Documents come back unchanged."""

from __future__ import annotations

import json

import pytest

import rankwise
from rankwise.documents import document_text
from rankwise.llm import OpenAIChatClient
from rankwise.rerankers.fusion import FusionReranker
from rankwise.selection import Judge, LLMJudge, Verdict, select
from rankwise.types import Document
from tests.support.llm import ScriptedServer, completion, send_json

QUERY = "Alpina waterproof hiking boots"
# The words that decide the order sit in the title and in a metadata field, not in the text: a judge that read
# `text` alone (issue 16) would order these differently from rank().
DOCS = [
    Document("Leather upper, rubber sole.", id="p1", title="Hiking boots", metadata={"brand": "Trekka"}),
    Document("Leather upper, rubber sole.", id="p2", title="Walking shoes", metadata={"brand": "Alpina"}),
    Document("Breathable mesh.", id="p3", title="Waterproof hiking boots", metadata={"brand": "Alpina", "n": 3}),
    Document("Light and cheap.", id="p4", title=None, metadata={"brand": "Nordkap"}),
    Document("", id="p5", title="Alpina socks", metadata={}),
]
FIELDS = ("title", "text", "brand")


def rerankers(bi_encoder) -> list[rankwise.Reranker]:
    with_brand = rankwise.load("bm25", fields=list(FIELDS))
    return [with_brand, rankwise.load("bm25"), bi_encoder, FusionReranker([with_brand, bi_encoder], weights=[1, 2])]


@pytest.mark.parametrize("criterion", ["correctness", "helpfulness", "safety"])
def test_select_orders_exactly_like_rank_for_structured_documents(bi_encoder, criterion):
    for r in rerankers(bi_encoder):
        ranked = r.rank(QUERY, DOCS)
        result = select(QUERY, DOCS, criteria=[criterion], judge=r)
        assert [c.index for c in result] == [x.index for x in ranked], r.name
        assert all(c.document is DOCS[c.index] for c in result)  # the caller's Documents, not copies
        raw = [c.criteria[criterion].raw for c in result]
        assert raw == pytest.approx([x.score for x in ranked])
    assert select(QUERY, DOCS, criteria=[criterion], judge=rerankers(bi_encoder)[0]).best.document.id == "p3"


def test_dicts_keep_every_key_and_the_default_criteria_follow_rank():
    dicts = [{"id": d.id, "title": d.title, "text": d.text, **d.metadata} for d in DOCS]
    before = json.dumps(dicts, sort_keys=True)
    r = rankwise.load("bm25", fields=list(FIELDS))
    result = select(QUERY, dicts, judge=r)
    assert [c.index for c in result] == [x.index for x in r.rank(QUERY, dicts)]
    assert json.dumps(dicts, sort_keys=True) == before  # nothing the caller passed was changed
    best = result.best.document
    assert (best.id, best.title, best.metadata) == ("p3", "Waterproof hiking boots", {"brand": "Alpina", "n": 3})
    assert result.best.to_dict()["id"] == "p3"


def test_agreement_reads_whole_candidates_through_the_judges_reranker():
    r = rankwise.load("bm25", fields=list(FIELDS))
    result = select(QUERY, DOCS, criteria=["agreement"], judge=r)
    # p3's title, text and brand are each shared with others; p4 shares nothing with anyone
    assert result.candidates[-1].document.id == "p4"
    assert result.best.criteria["agreement"].judge == "agreement:bm25"


def test_custom_text_judges_read_title_and_text_by_the_documents_rule():
    seen: list[list[str]] = []

    class Recorder(Judge):
        name = "recorder"

        def judge(self, criterion, prompt, responses, reference):
            seen.append(list(responses))
            return [Verdict(float("Alpina" in r), "") for r in responses]

    select(QUERY, DOCS, criteria=["safety"], judge=Recorder())
    assert seen[-1] == [document_text(d) for d in DOCS]
    wide = Recorder()
    wide.fields = FIELDS
    result = select(QUERY, DOCS, criteria=["safety"], judge=wide)
    assert seen[-1] == [document_text(d, FIELDS) for d in DOCS] and "Alpina" in seen[-1][1]
    assert {c.document.id for c in result if c.score == 1.0} == {"p2", "p3", "p5"}


def test_llm_judge_prompt_shows_the_whole_candidate():
    reply = completion("yes, it does", {"yes": -0.2, "no": -1.8})
    with ScriptedServer(lambda h, body, n: send_json(h, 200, reply)) as srv:
        client = OpenAIChatClient(model="fake", base_url=srv.url, max_retries=0, concurrency=1)
        result = select(QUERY, DOCS[:3], criteria=["helpfulness"], judge=LLMJudge(client, fields=FIELDS))
        shown = [m["content"] for body in srv.requests for m in body["messages"] if m["role"] == "user"]
    assert len(shown) == 3 and len(result) == 3
    for doc in DOCS[:3]:
        assert any(document_text(doc, FIELDS) in text for text in shown), doc.id
    assert "Waterproof hiking boots\nBreathable mesh.\nAlpina" in "".join(shown)
    assert result.best.scores["helpfulness"] == pytest.approx(1 / (1 + 2.718281828 ** -1.6), abs=1e-6)
