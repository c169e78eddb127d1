"""rankwise's app on Ray Serve, on loopback: the official Cohere SDK gets the in-process server's values, keys and
limits hold, bad requests get a 4xx; and ``rankwise serve --ray`` starts, serves and stops its own Ray.

Starting Ray and Serve takes ~30 s on 2 cores, so the live tests are slow; the flag checks are fast.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

import rankwise
from rankwise.cli import main
from rankwise.errors import InvalidInputError
from rankwise.server.config import ServerConfig, parse_model_spec
from tests.support.server import DOCS, QUERIES, free_port, live_server

cohere = pytest.importorskip("cohere")
from cohere.core.api_error import ApiError  # noqa: E402 - after the skip

pytest.importorskip("ray.serve")

pytest_plugins = ("tests.support.server_fixtures",)  # sharp_cross_encoder: a tiny CE with well-spread scores

KEY = "serve-key"
LIMITS = {"max_documents": 8, "max_query_bytes": 200}


def _config(folder, port: int) -> ServerConfig:  # noqa: ANN001 - a Path
    models = (parse_model_spec(f"tiny={folder}:cross-encoder"), parse_model_spec("lexical=bm25"))
    return ServerConfig(port=port, models=models, api_keys=(KEY,), log_level="warning", **LIMITS)


@pytest.fixture(scope="module")
def serve_url(sharp_cross_encoder):  # noqa: ANN001, ANN201
    """rankwise on Ray Serve (2 replicas) on a free loopback port, with its own Ray; torn down after the module."""
    import ray
    from ray import serve

    from rankwise.distributed.ray_serve import build_application, start

    config = _config(sharp_cross_encoder, free_port())
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    try:
        start(config, build_application(config, replicas=2, cpus_per_replica=0.5))
        yield f"http://127.0.0.1:{config.port}"
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="module")
def local_url(sharp_cross_encoder):  # noqa: ANN001, ANN201
    """The same models and settings in the plain in-process server: the reference."""
    from rankwise.server.runner import load_models

    config = _config(sharp_cross_encoder, free_port())
    with live_server(load_models(config.models), **{**LIMITS, "api_keys": (KEY,)}) as server:
        yield server.url


def _rerank(url: str, model: str, query: str, docs: list, **kw: object) -> list[tuple[int, float]]:
    client = cohere.ClientV2(api_key=KEY, base_url=url, max_retries=0)
    out = client.rerank(model=model, query=query, documents=docs, **kw)
    return [(r.index, r.relevance_score) for r in out.results]


@pytest.mark.slow
@pytest.mark.parametrize("model", ["tiny", "lexical"])
def test_cohere_sdk_gets_the_in_process_servers_values(serve_url, local_url, model):  # noqa: ANN001
    for query in QUERIES:
        on_serve = _rerank(serve_url, model, query, DOCS, top_n=4)
        local = _rerank(local_url, model, query, DOCS, top_n=4)
        assert [i for i, _ in on_serve] == [i for i, _ in local]
        # separate processes, and the dynamic batcher may pad a request with others: same values to float tolerance
        np.testing.assert_allclose([s for _, s in on_serve], [s for _, s in local], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_both_replicas_run_and_answer(serve_url):  # noqa: ANN001
    from ray import serve

    app = serve.status().applications["rankwise"]
    assert app.deployments["rankwise"].replica_states.get("RUNNING") == 2
    # many concurrent requests, every one answered (Serve spreads them over both replicas)
    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(lambda q: _rerank(serve_url, "lexical", q, DOCS), QUERIES * 6))
    assert all(len(o) == len(DOCS) for o in outs)


@pytest.mark.slow
def test_api_key_is_enforced(serve_url):  # noqa: ANN001
    wrong = cohere.ClientV2(api_key="not-the-key", base_url=serve_url, max_retries=0)
    with pytest.raises(cohere.UnauthorizedError):
        wrong.rerank(model="tiny", query=QUERIES[0], documents=DOCS)
    assert httpx.post(serve_url + "/v2/rerank", json={"query": "q", "documents": ["a"]}).status_code == 401
    assert httpx.get(serve_url + "/health").status_code == 200  # probes need no key, as in the plain server


@pytest.mark.slow
def test_bad_requests_get_4xx_and_limits_hold(serve_url):  # noqa: ANN001
    client = cohere.ClientV2(api_key=KEY, base_url=serve_url, max_retries=0)
    with pytest.raises(cohere.BadRequestError) as err:
        client.rerank(model="tiny", query="   ", documents=DOCS)
    assert "query is empty" in err.value.body["message"]
    with pytest.raises(cohere.NotFoundError) as err:
        client.rerank(model="rerank-v3.5", query="q", documents=["a"])
    assert "tiny" in str(err.value.body)
    with pytest.raises(ApiError) as err:  # max_documents=8: the replica's limit, not Serve's
        client.rerank(model="tiny", query="q", documents=DOCS * 2)
    assert 400 <= err.value.status_code < 500
    too_long = httpx.post(
        serve_url + "/v2/rerank",
        json={"model": "tiny", "query": "x" * 300, "documents": ["a"]},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert too_long.status_code == 413, too_long.text
    broken = httpx.post(
        serve_url + "/v2/rerank",
        content=b"{not json",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    assert 400 <= broken.status_code < 500, broken.text


# ---- the command line -------------------------------------------------------------------------------------------
def test_ray_flags_need_ray(capsys):  # noqa: ANN001
    assert main(["serve", "--replicas", "2", "--model", "bm25"]) == 2
    err = capsys.readouterr().err
    assert "--replicas only apply with --ray" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_replicas_must_be_a_positive_integer(bad):  # noqa: ANN001
    from rankwise.distributed.ray_serve import build_application

    config = ServerConfig(models=(parse_model_spec("bm25"),))
    with pytest.raises(InvalidInputError, match="replicas must be an integer >= 1"):
        build_application(config, replicas=bad)


def test_serve_run_target_refuses_host_and_port():
    from rankwise.distributed.ray_serve import app_builder

    with pytest.raises(InvalidInputError, match="Serve's"):
        app_builder({"models": "bm25", "port": "9000"})


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_cli_serves_on_ray_and_stops_its_ray_on_sigterm(tmp_path):  # noqa: ANN001
    port = free_port()
    env = {**os.environ, "RAY_ADDRESS": ""}
    cmd = [sys.executable, "-m", "rankwise", "serve", "--ray", "--replicas", "1", "--cpus-per-replica", "0.5",
           "--model", "lexical=bm25", "--port", str(port)]
    log = (tmp_path / "serve.log").open("wb")  # a file, not a pipe: Ray's logs would fill a pipe nobody reads
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        answer = None
        # Serve's proxy listens before the app is deployed and answers 404 until then: wait for the route, not the port.
        while (answer is None or answer.status_code == 404) and proc.poll() is None and time.monotonic() < deadline:
            try:
                answer = httpx.post(f"http://127.0.0.1:{port}/v2/rerank", json={"query": QUERIES[0], "documents": DOCS})
            except httpx.TransportError:
                pass
            if answer is None or answer.status_code == 404:
                time.sleep(1)
        assert answer is not None and answer.status_code == 200, (tmp_path / "serve.log").read_text()[-3000:]
        direct = rankwise.load("bm25").score(QUERIES[0], DOCS)
        got = {r["index"]: r["relevance_score"] for r in answer.json()["results"]}
        np.testing.assert_allclose([got[i] for i in range(len(DOCS))], direct, rtol=1e-5, atol=1e-6)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
        deadline = time.monotonic() + 60
        while _group_alive(proc.pid):  # the Ray it started (raylet, GCS, workers) goes with it
            assert time.monotonic() < deadline, "processes of the CLI's Ray were left running"
            time.sleep(0.5)
    finally:
        if proc.poll() is None:  # only our own process group: the CLI and the Ray it started
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
