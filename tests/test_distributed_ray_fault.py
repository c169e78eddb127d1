"""A worker node dies in the middle of a Ray batch job: the job still ends with every group exactly once.

Two Ray nodes on this machine (``ray start --block`` on loopback, free ports, a private temp dir so no other Ray on
the machine can join them or be joined): a head and a worker, 2 CPUs each. The job's 2 actors start on the worker;
while they run, the worker node and everything it started are killed with SIGKILL. Ray recreates the lost actors on
the head and runs their shards again (``max_task_retries=-1``, ``max_restarts=10``: rankwise.distributed.ray says why); the output must be the
files an uninterrupted local run writes, byte for byte. Slow (node death is noticed after Ray's health checks).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("ray.data")
psutil = pytest.importorskip("psutil")

from rankwise.batch import rerank_dataset  # noqa: E402

RAY = str(Path(sys.executable).with_name("ray"))
ACTOR_AT_WORK = "MapBatches(_ShardActor)).submit"  # the process title of an engine actor running a shard


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class TwoNodeCluster:
    """A head and a worker node started by this test, each tracked by the ``ray start --block`` process it ran."""

    def __init__(self) -> None:
        self.temp_dir = tempfile.mkdtemp(prefix="rwf", dir="/tmp")  # short: Ray's unix socket paths live under it
        self.port = _free_ports(1)[0]
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: dict[str, subprocess.Popen] = {}
        # token auth as Ray sets it up for `ray start` (the token in ~/.ray/auth_token), for the nodes and the driver
        self.env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_AUTH_MODE": "token"}

    def _start(self, name: str, extra: list[str]) -> None:
        agent, grpc, env_agent, metrics, node_manager, object_manager = _free_ports(6)
        cmd = [RAY, "start", "--block", "--node-ip-address=127.0.0.1", "--num-cpus=2", "--disable-usage-stats",
               f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={grpc}",
               f"--runtime-env-agent-port={env_agent}", f"--metrics-export-port={metrics}",
               f"--node-manager-port={node_manager}", f"--object-manager-port={object_manager}", *extra]
        log = open(Path(self.temp_dir) / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.nodes[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                            start_new_session=True)

    def start(self) -> None:
        client = _free_ports(1)[0]
        self._start("head", ["--head", f"--port={self.port}", f"--temp-dir={self.temp_dir}",
                             "--include-dashboard=false", f"--ray-client-server-port={client}",
                             '--resources={"head_slot": 1}'])
        self._start("worker", [f"--address={self.address}"])

    def processes(self, name: str) -> list:
        """The node's ``ray start`` process and everything it started (raylet, its agents, the workers)."""
        try:
            root = psutil.Process(self.nodes[name].pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self, name: str) -> None:
        victims = self.processes(name)  # a snapshot first: nothing started by the node escapes
        for proc in victims:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        self.nodes[name].wait(30)
        _, alive = psutil.wait_procs(victims, timeout=30)
        assert not alive, f"processes of the {name} node survived SIGKILL: {alive}"

    def stop(self) -> None:
        """Kill both nodes and every process that still runs from this cluster's temp dir (ours alone)."""
        for name in list(self.nodes):
            self.kill(name)
        for proc in psutil.process_iter(["cmdline"]):
            try:
                if any(self.temp_dir in part for part in proc.info["cmdline"] or ()):
                    proc.kill()
            except psutil.NoSuchProcess:
                pass
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _groups(path: Path, queries: int, per_query: int) -> Path:
    words = ["lstm", "memory", "gates", "cell", "image", "filters", "edges", "attention", "tokens"]
    with path.open("w") as fh:
        for i in range(queries):
            cands = [{"doc_id": f"d{j}", "text": " ".join(words[(i + j * k) % 9] for k in range(1, 40))}
                     for j in range(per_query)]
            fh.write(json.dumps({"query_id": f"q{i}", "query": f"{words[i % 9]} {words[(i * 5) % 9]}",
                                 "candidates": cands}) + "\n")
    return path


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "shards").glob("*.parquet"))}


# The job's driver runs in its own process, as a user's would: a clean Ray client (this test process may already
# hold a local Ray from other tests, with other auth settings). A placeholder actor holds the head's 2 CPUs until told
# to let go, so the job's 2 actors start on the worker node (and none on the head finishes the job while they load
# the model); letting go before the kill leaves room on the head for the actors that Ray recreates.
DRIVER = """
import json, sys, threading, time
from pathlib import Path
import ray
from rankwise.batch import rerank_dataset

address, source, out, model, control = sys.argv[1:6]
control = Path(control)
ray.init(address=address)
while ray.cluster_resources().get("CPU", 0) < 4:  # the worker node has joined
    time.sleep(0.5)

@ray.remote(num_cpus=2, resources={"head_slot": 1})
class Placeholder:
    def ready(self):
        return True

placeholder = Placeholder.remote()
ray.get(placeholder.ready.remote())

def let_go():
    while not (control / "release").exists():
        time.sleep(0.05)
    ray.kill(placeholder)
    (control / "released").touch()

threading.Thread(target=let_go, daemon=True).start()
report = rerank_dataset(source, out, model, backend="cross-encoder", shard_pairs=120, engine="ray", actors=2,
                        ray_address=address)
# how often Ray recreated an engine actor (GCS's actor table; an internal API, read here only as evidence)
actors = [a for a in ray._private.state.actors().values() if "_ShardActor" in a["ActorClassName"]]
restarts = sum(a["NumRestarts"] for a in actors)
print("ACTORS", [(a["State"], a["NumRestarts"], a["Address"]["NodeID"][:8], str(a["DeathCause"])[:300]) for a in actors])
print("REPORT " + json.dumps({"groups": report.groups, "pairs": report.pairs, "shards": report.shards,
                              "restarts": restarts}), flush=True)
"""


def _wait(condition, what: str, timeout: float) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
def test_job_survives_losing_a_worker_node(tiny_cross_encoder, tmp_path):  # noqa: ANN001
    source = _groups(tmp_path / "groups.jsonl", queries=150, per_query=40)
    expected = rerank_dataset(source, tmp_path / "local", str(tiny_cross_encoder), backend="cross-encoder",
                              shard_pairs=120)
    cluster = TwoNodeCluster()
    control, shards = tmp_path / "control", tmp_path / "ray" / "shards"
    control.mkdir()
    driver = None
    try:
        cluster.start()
        log = (tmp_path / "driver.log").open("wb")
        driver = subprocess.Popen(
            [sys.executable, "-c", DRIVER, cluster.address, str(source), str(tmp_path / "ray"),
             str(tiny_cross_encoder), str(control)],
            stdout=log, stderr=subprocess.STDOUT, env=cluster.env, start_new_session=True, cwd=tmp_path,
        )

        def actor_on_worker_and_shards_done() -> bool:
            assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
            at_work = any(ACTOR_AT_WORK in " ".join(_cmdline(p)) for p in cluster.processes("worker"))
            return at_work and len(list(shards.glob("*.parquet"))) >= 3

        _wait(actor_on_worker_and_shards_done, "an actor at work on the worker node, and 3 shards written", 300)
        (control / "release").touch()
        _wait((control / "released").exists, "the placeholder to let go", 30)
        done_before = len(list(shards.glob("*.parquet")))
        cluster.kill("worker")  # SIGKILL: the node's raylet, agents and the actor working there
        assert driver.wait(timeout=600) == 0, (tmp_path / "driver.log").read_text()[-3000:]
        lines = (tmp_path / "driver.log").read_text().splitlines()
        report = json.loads(next(line for line in lines if line.startswith("REPORT "))[7:])
        assert done_before < report["shards"]  # it died with shards left to do
        assert report.pop("restarts") >= 1  # the actors that worked there were lost and recreated
        assert report == {"groups": expected.groups, "pairs": expected.pairs, "shards": expected.shards}
        assert _files(tmp_path / "ray") == _files(tmp_path / "local")  # every group once: no gap, no duplicate
    finally:
        if driver is not None and driver.poll() is None:
            os.killpg(driver.pid, 9)  # the driver's own group: started by this test
            driver.wait()
        cluster.stop()


def _cmdline(proc) -> list[str]:  # noqa: ANN001 - a psutil.Process
    try:
        return proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []
