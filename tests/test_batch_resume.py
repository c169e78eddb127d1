"""A batch job killed with SIGKILL and resumed gives exactly the output of an uninterrupted job.

Real processes, real signals: ``rankwise batch`` runs as a subprocess on a small input with one group per shard
(BM25), is killed with ``kill -9`` once some shards are on disk (the test polls the shards folder), then resumed; the
output folder must then equal an uninterrupted run's, file for file and byte for byte, every group exactly once, and
the shards finished before the kill must not have been rewritten. A second test kills the job at chosen instants of
a write (just before the rename of a shard, a rejects file, a manifest or a BEIR index): the temporary file it leaves
is ignored and removed on resume.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from rankwise.cli import main
from tests.test_batch import make_beir, make_groups, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}

# Runs `rankwise ARGS`, but SIGKILLs itself at the os.replace that would publish a file whose path ends with TARGET:
# the temporary file is complete on disk, the final name does not exist yet (the worst instant of a write).
KILL_AT_RENAME = """
import os, signal, sys
target, real = sys.argv[1], os.replace
def replace(src, dst, *args, **kwargs):
    if str(dst).endswith(target):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst, *args, **kwargs)
os.replace = replace
from rankwise.cli import main
sys.exit(main(sys.argv[2:]))
"""


def batch_argv(src: Path, out: Path, *extra: str) -> list[str]:
    return ["batch", str(src), str(out), "-m", "bm25", "--shard-pairs", "4", "--no-progress", *extra]


def snapshot(out: Path) -> dict[str, bytes]:
    """Every shard and rejects file of a job, by relative path."""
    return {
        str(p.relative_to(out)): p.read_bytes()
        for folder in ("shards", "rejects") for p in sorted((out / folder).glob("*")) if p.is_file()
    }


def input_file(tmp_path: Path, groups: int) -> Path:
    records: list = list(make_groups(groups))
    for i in range(0, groups, 7):  # some broken lines too: rejects must survive a kill as well
        records.insert(i, "{broken line")
    return write_jsonl(tmp_path / "g.jsonl", records)


def test_sigkill_mid_run_then_resume_equals_an_uninterrupted_run(tmp_path):
    src = input_file(tmp_path, 400)
    assert main(batch_argv(src, tmp_path / "whole")) == 0
    expected = snapshot(tmp_path / "whole")
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "rankwise", *batch_argv(src, out)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    shards = out / "shards"
    deadline = time.monotonic() + 120
    while (len(list(shards.glob("part-*.parquet"))) if shards.is_dir() else 0) < 10 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.005)
    assert proc.poll() is None, "the job ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    finished = {p.name: p.stat().st_mtime_ns for p in shards.glob("part-*.parquet")}
    assert 10 <= len(finished) < len(expected)

    assert main(batch_argv(src, out, "--resume")) == 0
    assert snapshot(out) == expected  # byte for byte, rejects included
    assert {p.name: p.stat().st_mtime_ns for p in shards.glob("part-*.parquet") if p.name in finished} == finished
    counts = Counter(ds.dataset(shards).to_table()["query_id"].to_pylist())
    assert counts == {f"q{g}": 4 for g in range(400)}  # every group once, no duplicates, no gaps
    assert not [p for p in out.rglob(".*.tmp")]


@pytest.mark.parametrize("target", [
    "shards/part-00005.parquet", "rejects/", "manifest.json", "index/corpus.sqlite",
])
def test_a_kill_during_a_write_leaves_a_temporary_file_that_resume_ignores(tmp_path, target):
    if target.startswith("index/"):
        src = make_beir(tmp_path / "beir")
        argv = ["batch", str(src), "", "-m", "bm25", "--shard-pairs", "1", "--no-progress"]
    else:
        src = input_file(tmp_path, 30)
        argv = batch_argv(src, Path(""))
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert main([*argv[:2], str(whole), *argv[3:]]) == 0
    if target == "rejects/":  # the second shard that has rejects
        target += sorted(p.name for p in (whole / "rejects").glob("part-*.jsonl"))[1]
    run = subprocess.run([sys.executable, "-c", KILL_AT_RENAME, target, *argv[:2], str(killed), *argv[3:]],
                         env=ENV, capture_output=True, check=False)
    assert run.returncode == -signal.SIGKILL, run.stderr.decode()
    leftovers = list(killed.rglob(".*.tmp"))
    assert leftovers and not (killed / target).exists()
    if target == "shards/part-00005.parquet":  # a second, half-written shard: as if killed inside the write
        (killed / "shards" / ".part-00006.parquet.0123456789ab.tmp").write_bytes(b"PAR1\x00partial")

    assert main([*argv[:2], str(killed), *argv[3:], "--resume"]) == 0
    assert snapshot(killed) == snapshot(whole)
    assert not list(killed.rglob(".*.tmp"))
