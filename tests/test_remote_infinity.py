"""The ``infinity`` backend against a real Infinity server (``infinity_emb v2``, the torch engine) on loopback, serving
the tiny cross-encoder offline: the backend's scores equal what Infinity answers to a direct request, and what the
same model scores in process.

Slow and opt-in: Infinity caps sentence-transformers and numpy below the project's versions, so it lives in its own
venv (recipe in ../shared/peers.md); set ``RANKWISE_INFINITY_BIN`` to that venv's ``infinity_emb`` executable.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

import rankwise
from tests.support.server import DOCS, QUERIES, free_port

pytest_plugins = ("tests.support.server_fixtures",)  # sharp_cross_encoder, tiny_ce

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def infinity(sharp_cross_encoder: Path) -> Iterator[str]:
    binary = os.environ.get("RANKWISE_INFINITY_BIN")
    if not binary or not os.access(binary, os.X_OK):
        pytest.skip(
            "set RANKWISE_INFINITY_BIN to an infinity_emb executable (infinity-emb[server,torch]==0.0.78 in its own "
            "venv: see ../shared/peers.md)"
        )
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DO_NOT_TRACK": "1"}
    cmd = [
        binary,
        "v2",
        "--model-id",
        str(sharp_cross_encoder),
        "--engine",
        "torch",
        "--device",
        "cpu",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--served-model-name",
        "tiny",
        "--no-model-warmup",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"infinity did not start: {proc.communicate()[0][-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_scores_equal_infinitys_own_answer_and_the_model_in_process(infinity: str, tiny_ce) -> None:  # noqa: ANN001
    reranker = rankwise.load(infinity, backend="infinity", model="tiny")
    for query in QUERIES:
        body = {"query": query, "documents": DOCS, "raw_scores": True, "model": "tiny"}
        direct = {
            r["index"]: r["relevance_score"]
            for r in httpx.post(infinity + "/rerank", json=body).json()["results"]
        }
        ranked, cost = reranker.rank_with_cost(query, DOCS)
        scores = [r.score for r in sorted(ranked, key=lambda r: r.index)]
        assert scores == [direct[i] for i in range(len(DOCS))]  # exactly what Infinity answers
        np.testing.assert_allclose(
            scores, tiny_ce.score(query, DOCS), rtol=1e-5, atol=1e-6
        )  # its torch engine
        assert cost.calls == 1 and cost.units["tokens"] > 0


def test_split_calls_and_sigmoid_scores(infinity: str, tiny_ce) -> None:  # noqa: ANN001
    split = rankwise.load(infinity, backend="infinity", model="tiny", max_documents_per_call=2)
    scores = split.score(QUERIES[1], DOCS)
    np.testing.assert_allclose(scores, tiny_ce.score(QUERIES[1], DOCS), rtol=1e-5, atol=1e-6)
    assert split.cost_total().calls == 3
    sigmoid = rankwise.load(infinity, backend="infinity", raw_scores=False).score(QUERIES[1], DOCS)
    np.testing.assert_allclose(sigmoid, 1 / (1 + np.exp(-np.asarray(scores))), rtol=1e-5)
