"""``rankwise serve --model name=MODEL:cohere?base_url=...``: our server as a gateway in front of a remote re-ranker
(here another rankwise server on loopback, standing for the provider), reached with the official Cohere SDK. The
gateway adds its own keys, limits, cache and metrics; the provider's key never shows in answers, metrics or logs."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from rankwise.rerankers.remote import RemoteAuthError
from rankwise.server.config import build_config, parse_model_spec
from rankwise.server.runner import load_models
from tests.support.remote_servers import FailureServer, status
from tests.support.server import DOCS, QUERIES, live_server

pytest_plugins = ("tests.support.server_fixtures",)  # tiny_ce

cohere = pytest.importorskip("cohere")

PROVIDER_KEY = "provider-key-never-shown"
CLIENT_KEY = "gateway-client-key"


@pytest.fixture(scope="module")
def provider(tiny_ce):  # noqa: ANN001
    with live_server({"tiny": tiny_ce}, api_keys=(PROVIDER_KEY,)) as s:
        yield s


def gateway_models(spec: str, monkeypatch) -> dict:  # noqa: ANN001
    """The models ``rankwise serve --model SPEC`` loads (warm-up included: one call to the provider)."""
    monkeypatch.setenv(
        "CO_API_KEY", PROVIDER_KEY
    )  # the provider's key comes from the environment, not the spec
    config = build_config({"models": spec}, environ={})
    return load_models(config.models)


def test_the_cohere_sdk_through_the_gateway_gets_the_providers_scores(provider, tiny_ce, monkeypatch) -> None:  # noqa: ANN001
    models = gateway_models(f"gw=tiny:cohere?base_url={provider.url}", monkeypatch)
    with live_server(models, api_keys=(CLIENT_KEY,)) as gateway:
        v2 = cohere.ClientV2(api_key=CLIENT_KEY, base_url=gateway.url, max_retries=0)
        out = v2.rerank(model="gw", query=QUERIES[0], documents=DOCS, top_n=3)
        direct = tiny_ce.rank(QUERIES[0], DOCS, top_k=3)
        assert [(r.index, r.relevance_score) for r in out.results] == [(r.index, r.score) for r in direct]
        v1 = cohere.Client(api_key=CLIENT_KEY, base_url=gateway.url, max_retries=0)
        docs = [{"title": f"T{i}", "text": d} for i, d in enumerate(DOCS)]
        out1 = v1.rerank(model="gw", query=QUERIES[1], documents=docs, rank_fields=["title", "text"])
        texts = [f"T{i}\n{d}" for i, d in enumerate(DOCS)]
        assert {r.index: r.relevance_score for r in out1.results} == dict(
            enumerate(tiny_ce.score(QUERIES[1], texts))
        )
        with pytest.raises(cohere.UnauthorizedError):  # the gateway's own keys
            cohere.ClientV2(api_key=PROVIDER_KEY, base_url=gateway.url, max_retries=0).rerank(
                model="gw", query="q", documents=["a"]
            )
        headers = {"Authorization": f"Bearer {CLIENT_KEY}"}
        metrics = httpx.get(gateway.url + "/metrics", headers=headers).text
        listing = httpx.get(gateway.url + "/v1/models", headers=headers).text
    assert 'rankwise_remote_calls_total{model="gw"} 3.0' in metrics  # warm-up + two requests
    assert 'rankwise_remote_units_total{model="gw",unit="search_units"} 3.0' in metrics
    assert PROVIDER_KEY not in metrics and PROVIDER_KEY not in listing


def test_the_gateway_keeps_its_limits_and_caches(provider, tiny_ce, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    models = gateway_models(f"gw=tiny:cohere?base_url={provider.url}&cache_dir={tmp_path}", monkeypatch)
    with live_server(models, max_documents=4) as gateway:
        client = cohere.ClientV2(api_key="x", base_url=gateway.url, max_retries=0)
        with pytest.raises(
            cohere.BadRequestError
        ):  # over the gateway's limit: refused before any provider call
            client.rerank(model="gw", query=QUERIES[0], documents=DOCS)
        before = provider.metric("rankwise_pairs_scored_total", model="tiny")
        first = client.rerank(model="gw", query=QUERIES[2], documents=DOCS[:4])
        second = client.rerank(model="gw", query=QUERIES[2], documents=DOCS[:4])
        assert (
            provider.metric("rankwise_pairs_scored_total", model="tiny") == before + 4
        )  # the second: from disk
        assert [(r.index, r.relevance_score) for r in first.results] == [
            (r.index, r.relevance_score) for r in second.results
        ]
        assert gateway.metric("rankwise_remote_cached_documents_total", model="gw") >= 4
    assert {r.index: r.relevance_score for r in first.results} == dict(
        enumerate(tiny_ce.score(QUERIES[2], DOCS[:4]))
    )


def test_a_failing_provider_is_a_502_without_the_key(caplog) -> None:  # noqa: ANN001
    import rankwise

    echo = status(400, body={"message": f"unknown model for key {PROVIDER_KEY}"})
    with FailureServer(echo, status(401)) as failing:
        remote = rankwise.load(
            "m", backend="cohere", base_url=failing.base_url, api_key=PROVIDER_KEY, max_retries=0
        )
        with live_server({"gw": remote}) as gateway, caplog.at_level(logging.ERROR, logger="rankwise.server"):
            for expected in ("it answered HTTP 400", "refused this server's API key"):
                r = httpx.post(gateway.url + "/v2/rerank", json={"query": "q", "documents": ["a", "b"]})
                assert r.status_code == 502 and r.json()["error_type"] == "upstream_error"
                assert expected in r.json()["message"] and "(cohere)" in r.json()["message"]
                assert PROVIDER_KEY not in r.text and failing.base_url not in r.text
    assert "upstream error" in caplog.text and PROVIDER_KEY not in caplog.text
    assert "***" in caplog.text  # the echoed key, scrubbed in the log too


def test_a_wrong_provider_key_stops_the_gateway_at_start(provider, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("CO_API_KEY", "wrong-provider-key")
    config = build_config({"models": f"gw=tiny:cohere?base_url={provider.url}"}, environ={})
    with pytest.raises(RemoteAuthError, match="HTTP 401: the API key was refused") as err:
        load_models(config.models)  # the warm-up call fails fast, before the server says it is ready
    assert "wrong-provider-key" not in str(err.value)


def test_a_key_in_the_spec_never_shows() -> None:
    spec = parse_model_spec("gw=rerank-v3.5:cohere?base_url=http://127.0.0.1:9&api_key=spec-secret")
    assert spec.options["api_key"] == "spec-secret" and spec.backend == "cohere"
    assert "spec-secret" not in repr(spec) and spec.shown_options()["api_key"] == "***"
    with pytest.raises(Exception) as err:
        parse_model_spec("gw=:cohere?api_key=spec-secret&broken")
    assert "spec-secret" not in str(err.value)
    assert parse_model_spec("tei=http://127.0.0.1:8080:tei").source == "http://127.0.0.1:8080"
