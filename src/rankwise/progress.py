"""Progress reporters for command-line callers: a tqdm bar on a terminal, a timed log line otherwise.

Library code never creates one on its own: backends and helpers only call the ``progress(done, total)`` (or
``progress(stage, done, total)``) callbacks their caller passes. The CLI passes these reporters, and so does
``rankwise.evaluation.evaluate(progress=True)``, which asks for them explicitly.

Why two modes: a bar redrawn with carriage returns is right for a person at a terminal, but in a CI log, under
``nohup`` or piped to a file it is either invisible (tqdm stays quiet off a terminal) or one line per redraw. Off a
terminal the reporter therefore writes one plain line every :data:`LOG_INTERVAL_S` seconds, with done/total, the rate
and the ETA, and a last line when the work ends -- nothing at all for work that ends within the first interval.

Example:
    >>> from rankwise.progress import ProgressReporter                      # doctest: +SKIP
    >>> with ProgressReporter("re-ranking", unit="doc") as progress:       # doctest: +SKIP
    ...     reranker.rank(query, docs, progress=progress)
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # typing.Self is 3.11+ (rankwise supports 3.10); type checkers ship typing_extensions
    from typing_extensions import Self

LOG_INTERVAL_S = 10.0
"""Seconds between two log lines when standard error is not a terminal (``RANKWISE_PROGRESS_INTERVAL`` overrides)."""


def log_interval() -> float:
    """:data:`LOG_INTERVAL_S`, or the number of seconds in ``RANKWISE_PROGRESS_INTERVAL`` (e.g. 60 for a quiet CI
    log, 0 for a line on every update); an unusable value falls back to the default."""
    raw = os.environ.get("RANKWISE_PROGRESS_INTERVAL", "").strip()
    try:
        value = float(raw) if raw else LOG_INTERVAL_S
    except ValueError:
        return LOG_INTERVAL_S
    return value if value >= 0 else LOG_INTERVAL_S

TTY_DELAY_S = 0.5
"""A terminal bar appears only once the work has run this long (quick calls stay clean)."""


def format_duration(seconds: float) -> str:
    """``"42s"``, ``"3m05s"``, ``"1h02m"``: short, fixed-width-ish durations for log lines."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or minimal stream is not a terminal
        return False


class ProgressReporter:
    """``reporter(done, total)`` with absolute counts (the library's callback shape), or ``advance(n)``.

    Args:
        desc: what is being done, e.g. ``"re-ranking 300 documents"``.
        unit: the unit of ``done``/``total`` (singular), e.g. ``"doc"``.
        enabled: False makes every call a no-op (``--no-progress``).
        stream: where to write (default: ``sys.stderr`` when the reporter is made).
        tty: force the terminal (True) or log-line (False) mode; default: ``stream.isatty()``.
        interval: seconds between log lines off a terminal (default :func:`log_interval`).
        prefix: put before each log line (``"rankwise eval"``), so a line in a mixed log says who wrote it.
        clock: a monotonic clock in seconds (tests pass a fake one instead of sleeping).
    """

    def __init__(
        self,
        desc: str,
        unit: str = "item",
        *,
        enabled: bool = True,
        stream: TextIO | None = None,
        tty: bool | None = None,
        interval: float | None = None,
        prefix: str = "rankwise",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.desc, self.unit, self.enabled, self.prefix = desc, unit, enabled, prefix
        self.stream = stream if stream is not None else sys.stderr
        self.tty = _is_tty(self.stream) if tty is None else tty
        self.interval, self.clock = (log_interval() if interval is None else interval), clock
        self.done, self.total = 0, 0
        self.lines = 0  # log lines written (off a terminal)
        self._started = clock()
        self._last_line = self._started
        self._done_at_last_line = 0
        self._bar: Any = None
        self._closed = False
        self._lock = threading.Lock()  # backends may report from worker threads

    # -- the callback ---------------------------------------------------------------------------------------------
    def __call__(self, done: int, total: int) -> None:
        """Record ``done`` of ``total`` (absolute counts) and show it if it is time to."""
        if not self.enabled or self._closed:
            return
        with self._lock:
            self.done, self.total = int(done), int(total)
            if self.tty:
                self._draw_bar()
            elif self.clock() - self._last_line >= self.interval:
                self._write_line(final=False)

    def advance(self, n: int = 1, total: int | None = None) -> None:
        """``n`` more units done (``total`` updates the total when given)."""
        self(self.done + n, self.total if total is None else total)

    def close(self) -> None:
        """End the bar; off a terminal, write a last line if any line was written (so logs show the end)."""
        if self._closed:
            return
        with self._lock:
            self._closed = True
            if self._bar is False and self.done < self.total:
                print(file=self.stream, flush=True)  # end the carriage-return counter's unfinished line
            elif self._bar is not None and self._bar is not False:
                self._bar.close()
            elif self.enabled and not self.tty and self.lines:
                self._write_line(final=True)  # the end, with the whole run's time and rate

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- output ---------------------------------------------------------------------------------------------------
    def line(self, final: bool = False) -> str:
        """The log line for the current state (without a newline).

        The rate (and the ETA from it) is the one since the previous line: the work's first steps are often much
        faster or slower than the rest (BM25 before the bi-encoder, a model warming up). The last line gives the
        whole run's rate.
        """
        now = self.clock()
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        if not final and self.lines and now > self._last_line:
            rate = max(self.done - self._done_at_last_line, 0) / (now - self._last_line)
        total = f"/{self.total}" if self.total else ""
        percent = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        text = f"{self.prefix}: {self.desc}: {self.done}{total} {plural(self.unit)}{percent}, {_rate(rate, self.unit)}"
        if final:
            return f"{text}, done in {format_duration(elapsed)}"
        eta = (self.total - self.done) / rate if rate > 0 and self.total >= self.done else None
        eta_text = format_duration(eta) if eta is not None else "unknown"
        return f"{text}, elapsed {format_duration(elapsed)}, ETA {eta_text}"

    def _write_line(self, final: bool) -> None:
        try:
            print(self.line(final), file=self.stream, flush=True)
        except (OSError, ValueError):  # a closed stderr must never break the work it reports on
            self.enabled = False
            return
        self.lines += 1
        self._last_line, self._done_at_last_line = self.clock(), self.done

    def _draw_bar(self) -> None:
        if self._bar is None:
            self._bar = _make_bar(self.desc, self.unit, self.stream)
        if self._bar is False:  # no tqdm: a bare carriage-return counter
            end = "\n" if self.total and self.done >= self.total else ""
            print(f"\r{self.desc}: {self.done}/{self.total} {plural(self.unit)}", end=end, file=self.stream, flush=True)
            return
        self._bar.total = self.total
        self._bar.update(self.done - self._bar.n)


def plural(unit: str) -> str:
    """``"doc"`` -> ``"docs"``, ``"query"`` -> ``"queries"``, ``"pass"`` -> ``"passes"``."""
    if unit.endswith("y") and unit[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        return unit[:-1] + "ies"
    return unit + ("es" if unit.endswith(("s", "x", "ch", "sh")) else "s")


def _rate(rate: float, unit: str) -> str:
    if rate >= 1 or rate == 0:
        return f"{rate:.1f} {plural(unit)}/s"
    return f"{1 / rate:.1f} s/{unit}"


def _make_bar(desc: str, unit: str, stream: TextIO) -> Any:
    """A tqdm bar, or False when tqdm is not installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        return False
    try:
        return tqdm(desc=desc, unit=unit, file=stream, leave=False, dynamic_ncols=True, delay=TTY_DELAY_S)
    except TypeError:  # tqdm < 4.62 has no delay
        return tqdm(desc=desc, unit=unit, file=stream, leave=False, dynamic_ncols=True)


class StagedProgress:
    """``progress(stage, done, total)`` for work in stages (index: ``"dense"``, ``"bm25"``; eval: per system).

    One :class:`ProgressReporter` per stage; a new stage closes the previous one.

    Args:
        describe: maps a stage name to ``(desc, unit)``; return None to hide a stage.
        **options: passed to each :class:`ProgressReporter` (``enabled``, ``stream``, ``tty``, ``prefix``...).
    """

    def __init__(self, describe: Callable[[str], tuple[str, str] | None] | None = None, **options: Any) -> None:
        self.describe = describe or (lambda stage: (stage, "item"))
        self.options = options
        self.stage: str | None = None
        self.current: ProgressReporter | None = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.close()
            self.stage = stage
            shown = self.describe(stage)
            if shown is not None:
                self.current = ProgressReporter(shown[0], shown[1], **self.options)
        if self.current is not None:
            self.current(done, total)

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
        self.current, self.stage = None, None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
