"""Progress that moves: off a terminal, a line every interval with done/total, rate and ETA (a fake clock stands in
for time: no sleeping, no timing thresholds); the CLI commands report through it; evaluate() reports its stages."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from rankwise.cli import main
from rankwise.progress import ProgressReporter, StagedProgress, format_duration, log_interval
from tests.conftest import SEED_DOCS, SEED_QUERY
from tests.support.evaluation import make_beir


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reporter(clock: FakeClock, **options) -> tuple[ProgressReporter, io.StringIO]:
    stream = io.StringIO()
    return ProgressReporter("re-ranking", "doc", stream=stream, tty=False, interval=10, clock=clock, **options), stream


def test_a_line_every_interval_with_done_total_rate_and_eta():
    clock = FakeClock()
    progress, stream = reporter(clock)
    progress(10, 100)
    clock.now += 5
    progress(20, 100)
    assert stream.getvalue() == ""  # nothing within the first interval
    clock.now += 5  # 10 s in: 50 of 100 done -> 5 docs/s, 10 s to go
    progress(50, 100)
    assert stream.getvalue() == "rankwise: re-ranking: 50/100 docs (50%), 5.0 docs/s, elapsed 10s, ETA 10s\n"
    clock.now += 3
    progress(55, 100)
    assert stream.getvalue().count("\n") == 1  # the next line waits for the next interval
    clock.now += 7  # the work slowed down: 10 docs in the last 10 s -> the ETA follows the recent rate, not the mean
    progress(60, 100)
    clock.now += 10
    progress(100, 100)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert lines[1] == "rankwise: re-ranking: 60/100 docs (60%), 1.0 docs/s, elapsed 20s, ETA 40s"
    assert lines[2] == "rankwise: re-ranking: 100/100 docs (100%), 4.0 docs/s, elapsed 30s, ETA 0s"
    assert lines[3] == "rankwise: re-ranking: 100/100 docs (100%), 3.3 docs/s, done in 30s"  # the whole run


def test_short_work_and_disabled_progress_stay_silent():
    clock = FakeClock()
    progress, stream = reporter(clock)
    progress(5, 5)
    progress.close()
    off, off_stream = reporter(clock, enabled=False)
    clock.now += 60
    off(1, 10)
    off.close()
    assert stream.getvalue() == off_stream.getvalue() == ""


def test_slow_rates_and_long_durations_read_well():
    clock = FakeClock()
    progress, stream = reporter(clock)
    clock.now += 3725
    progress(2, 10)
    assert stream.getvalue().strip().endswith("2/10 docs (20%), 1862.5 s/doc, elapsed 1h02m, ETA 4h08m")
    clock.now += 10
    progress(2, 10)  # nothing done since the last line: no ETA to give
    assert stream.getvalue().strip().endswith("2/10 docs (20%), 0.0 docs/s, elapsed 1h02m, ETA unknown")
    assert [format_duration(s) for s in (0, 59.4, 61, 3599, 7260)] == ["0s", "59s", "1m01s", "59m59s", "2h01m"]


def test_staged_progress_closes_each_stage(monkeypatch):
    clock, stream = FakeClock(), io.StringIO()
    staged = StagedProgress(lambda s: None if s == "hidden" else (s, "item"), stream=stream, tty=False,
                            interval=10, clock=clock)
    staged("hidden", 0, 1)
    clock.now += 20
    staged("hidden", 1, 1)
    staged("embedding", 0, 4)
    clock.now += 10
    staged("embedding", 4, 4)
    staged("re-ranking", 0, 2)
    staged.close()
    lines = stream.getvalue().splitlines()
    assert [ln.split(":")[1].strip() for ln in lines] == ["embedding", "embedding"]
    assert lines[-1].endswith("done in 10s")


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("RANKWISE_PROGRESS_INTERVAL", "2.5")
    assert log_interval() == 2.5
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv("RANKWISE_PROGRESS_INTERVAL", bad)
        assert log_interval() == 10.0


def test_rerank_reports_progress_lines_when_stderr_is_not_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RANKWISE_PROGRESS_INTERVAL", "0")  # a line on every update
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(SEED_DOCS))
    assert main(["rerank", "-q", SEED_QUERY, "-d", str(path), "-m", "bm25", "-f", "jsonl"]) == 0
    out = capsys.readouterr()
    assert len(out.out.splitlines()) == 3  # stdout carries only the results
    lines = out.err.splitlines()
    assert lines and all(ln.startswith("rankwise rerank: re-ranking 3 documents: ") for ln in lines)
    assert "done in" in lines[-1]
    assert main(["rerank", "-q", SEED_QUERY, "-d", str(path), "-m", "bm25", "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


def test_eval_is_never_silent_off_a_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("RANKWISE_PROGRESS_INTERVAL", "0")
    data = make_beir(tmp_path / "tiny")
    argv = ["eval", "--data", str(data), "-r", "bm25", "--cache-dir", str(tmp_path / "cache"), "--trials", "10"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "rankwise eval: first stage: 1/1 runs (100%)" in err
    assert "rankwise eval: re-ranking tiny with bm25: 2/2 queries (100%)" in err


def test_evaluate_reports_every_stage_to_a_callable(tmp_path):
    from rankwise.evaluation import evaluate

    seen: list[tuple[str, int, int]] = []
    evaluate(make_beir(tmp_path / "tiny"), ["bm25"], cache_dir=tmp_path / "c", trials=10,
             progress=lambda stage, done, total: seen.append((stage, done, total)))
    assert seen[:2] == [("first stage", 0, 1), ("first stage", 1, 1)]
    rerank = [s for s in seen if s[0].startswith("re-ranking")]
    assert [d for _, d, _ in rerank] == list(range(len(rerank))) and rerank[-1][1] == rerank[-1][2] == 2
    with pytest.raises(Exception, match="progress must be True, False or a callable"):
        evaluate(make_beir(tmp_path / "tiny2"), ["bm25"], cache_dir=tmp_path / "c", progress="yes")


def test_index_reports_embedding_progress(tmp_path, capsys, monkeypatch, tiny_cross_encoder: Path):
    monkeypatch.setenv("RANKWISE_PROGRESS_INTERVAL", "0")
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(SEED_DOCS)))
    argv = ["index", str(corpus), "--out", str(tmp_path / "i"), "--embedding-model", str(tiny_cross_encoder)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "rankwise index: embedding passages: 3/3 passages (100%)" in err
