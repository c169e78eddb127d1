"""Voyage and Mixedbread against loopback servers that follow their published API references, request validation
included (tests/support/remote_servers.py): the backends send what the references ask for (``top_k`` of every
document, ``input`` for Mixedbread, no unknown field), and their scores equal the scoring model's in process."""

from __future__ import annotations

import httpx
import pytest

import rankwise
from rankwise.rerankers.remote import RemoteAuthError, RemoteError
from tests.support.remote_servers import app_server, mixedbread_app, voyage_app
from tests.support.server import DOCS, QUERIES

pytest_plugins = ("tests.support.server_fixtures",)  # tiny_ce

KEY = "provider-key-abc"


@pytest.fixture(scope="module")
def voyage(tiny_ce):  # noqa: ANN001
    accepted: list[dict] = []
    with app_server(voyage_app(tiny_ce, KEY, accepted)) as url:
        yield url, accepted


@pytest.fixture(scope="module")
def mixedbread(tiny_ce):  # noqa: ANN001
    accepted: list[dict] = []
    with app_server(mixedbread_app(tiny_ce, KEY, accepted)) as url:
        yield url, accepted


def test_the_loopback_references_validate_requests(voyage, mixedbread) -> None:  # noqa: ANN001
    """The loopback servers refuse what the real APIs refuse, so a backend that passes them follows the reference."""
    auth = {"Authorization": f"Bearer {KEY}"}
    bad_voyage = [
        {"query": "q", "documents": ["a"]},  # no model
        {"query": "q", "documents": [], "model": "m"},  # no documents
        {"query": "q", "documents": ["a"], "model": "m", "top_n": 1},  # Cohere's name, not Voyage's
        {"query": "q", "documents": ["a"] * 1001, "model": "m"},  # over 1,000
    ]
    for body in bad_voyage:
        assert httpx.post(voyage[0] + "/v1/rerank", json=body, headers=auth).status_code == 400, body
    bad_mixedbread = [
        {"model": "m", "query": "q", "documents": ["a"]},  # Mixedbread calls them input
        {"model": "m", "query": "q", "input": ["a"], "top_k": 0},
        {"model": "m", "query": "", "input": ["a"]},
    ]
    for body in bad_mixedbread:
        assert httpx.post(mixedbread[0] + "/v1/reranking", json=body, headers=auth).status_code == 400, body
    good = {"query": "q", "documents": ["a"], "model": "m"}
    assert httpx.post(voyage[0] + "/v1/rerank", json=good).status_code == 401  # no key


def test_voyage_follows_its_reference(voyage, tiny_ce) -> None:  # noqa: ANN001
    url, accepted = voyage
    reranker = rankwise.load("rerank-2.5", backend="voyage", base_url=url, api_key=KEY, truncation=False)
    before = len(accepted)
    ranked, cost = reranker.rank_with_cost(QUERIES[0], DOCS, top_k=2)
    direct = tiny_ce.rank(QUERIES[0], DOCS, top_k=2)
    assert [(r.index, r.score) for r in ranked] == [(r.index, r.score) for r in direct]
    (body,) = accepted[before:]
    assert body == {
        "query": QUERIES[0],
        "documents": DOCS,
        "model": "rerank-2.5",
        "top_k": len(DOCS),
        "return_documents": False,
        "truncation": False,
    }
    assert cost.calls == 1 and cost.units["tokens"] > 0


def test_mixedbread_follows_its_reference(mixedbread, tiny_ce) -> None:  # noqa: ANN001
    url, accepted = mixedbread
    reranker = rankwise.load(
        "mixedbread-ai/mxbai-rerank-large-v2", backend="mixedbread", base_url=url, api_key=KEY
    )
    before = len(accepted)
    assert reranker.score(QUERIES[2], DOCS) == tiny_ce.score(QUERIES[2], DOCS)
    (body,) = accepted[before:]
    assert body["input"] == DOCS and body["top_k"] == len(DOCS) and body["return_input"] is False
    assert body["model"] == "mixedbread-ai/mxbai-rerank-large-v2"
    assert reranker.cost_total().units["tokens"] > 0


@pytest.mark.parametrize("backend", ["voyage", "mixedbread"])
def test_split_calls_stay_within_the_references_limit(backend: str, voyage, mixedbread, tiny_ce) -> None:  # noqa: ANN001
    url, accepted = voyage if backend == "voyage" else mixedbread
    docs = [f"{d} #{k}" for k in range(400) for d in DOCS[:3]]  # 1,200 documents: over 1,000 a call
    reranker = rankwise.load("m", backend=backend, base_url=url, api_key=KEY, concurrency=1)
    before = len(accepted)
    scores = reranker.score(QUERIES[1], docs)
    sizes = [len(b["documents"] if backend == "voyage" else b["input"]) for b in accepted[before:]]
    assert sizes == [1000, 200]
    assert scores == tiny_ce.score(QUERIES[1], docs[:1000]) + tiny_ce.score(QUERIES[1], docs[1000:])


@pytest.mark.parametrize("backend", ["voyage", "mixedbread"])
def test_wrong_key_and_refused_requests(backend: str, voyage, mixedbread) -> None:  # noqa: ANN001
    url = (voyage if backend == "voyage" else mixedbread)[0]
    with pytest.raises(RemoteAuthError, match="HTTP 401"):
        rankwise.load("m", backend=backend, base_url=url, api_key="nope").score(QUERIES[0], DOCS)
    too_many = rankwise.load("m", backend=backend, base_url=url, api_key=KEY, max_documents_per_call=1001)
    with pytest.raises(RemoteError, match="refused with HTTP 400") as err:  # over the provider's own limit
        too_many.score(QUERIES[0], [f"doc {i}" for i in range(1001)])
    assert not isinstance(err.value, RemoteAuthError) and err.value.status == 400
