"""What an evaluation returns: base vs re-rankers, per metric and per query, and ways to show it.

* :meth:`EvaluationReport.to_dict` / JSON -- everything, per-query scores included;
* :meth:`EvaluationReport.save` -- ``report.json``, one TREC run file per system, ``table.md`` and
``delta.png``;
* :func:`format_table` -- a readable markdown table (the CLI prints it);
* :func:`plot_deltas` -- per-query change of the headline metric for each re-ranker (matplotlib, Agg backend).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rankwise.evaluation.loader import Run, write_run
from rankwise.evaluation.significance import Comparison

SIGNIFICANCE_LEVEL = 0.05


@dataclass
class SystemResult:
    """One ranking of the dataset: the base (first stage) or a re-ranker over its candidates."""

    label: str
    model: str
    spec: dict[str, Any] | None
    run: Run
    per_query: dict[str, dict[str, float]]  # metric -> query id -> value
    means: dict[str, float]
    cost: dict[str, Any]

    def to_dict(self, per_query: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "label": self.label,
            "model": self.model,
            "spec": self.spec,
            "metrics": self.means,
            "cost": self.cost,
        }
        if per_query:
            out["per_query"] = self.per_query
        return out


@dataclass
class EvaluationReport:
    """Base vs every re-ranker on one dataset split."""

    dataset: dict[str, Any]
    settings: dict[str, Any]
    base: SystemResult
    systems: list[SystemResult]
    comparisons: dict[str, dict[str, Comparison]]  # label -> metric -> comparison with the base
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def headline(self) -> str:
        return self.settings["metrics"][0]

    def system(self, label: str) -> SystemResult:
        for s in [self.base, *self.systems]:
            if s.label == label:
                return s
        raise KeyError(f"no system {label!r}; have {[s.label for s in [self.base, *self.systems]]}")

    def to_dict(self, per_query: bool = True) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "settings": self.settings,
            "environment": self.environment,
            "base": self.base.to_dict(per_query),
            "systems": [s.to_dict(per_query) for s in self.systems],
            "comparisons": {k: {m: c.to_dict() for m, c in v.items()} for k, v in self.comparisons.items()},
        }

    def to_json(self, per_query: bool = True) -> str:
        return json.dumps(self.to_dict(per_query), indent=2, ensure_ascii=False)

    def save(self, folder: str | Path, plot: bool = True, runs: bool = True) -> dict[str, Path]:
        """Write ``report.json``, ``table.md``, (``runs``) ``runs/<system>.run`` and (``plot``)
        ``delta.png``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = {"report": folder / "report.json", "table": folder / "table.md"}
        written["report"].write_text(self.to_json() + "\n", encoding="utf-8")
        written["table"].write_text(format_table(self) + "\n", encoding="utf-8")
        for system in [self.base, *self.systems] if runs else []:
            written[f"run:{system.label}"] = write_run(
                system.run, folder / "runs" / f"{slug(system.label)}.run", tag=slug(system.label)
            )
        if plot and self.systems:
            written["plot"] = plot_deltas(self, folder / "delta.png")
        return written


def slug(label: str) -> str:
    """A file-name-safe form of a label."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_")[:80] or "system"


def _marker(c: Comparison) -> str:
    both = c.t_test_p < SIGNIFICANCE_LEVEL and c.randomization_p < SIGNIFICANCE_LEVEL
    return "*" if both else ""


def format_table(report: EvaluationReport) -> str:
    """A markdown table: one row per system, each metric with its change against the base.

    ``*`` marks a change significant at p < 0.05 under both the paired t-test and the randomization test.
    """
    metrics = report.settings["metrics"]
    d, s = report.dataset, report.settings
    lines = [
        (
            f"dataset {d['name']} ({d['kind']}), split {s['split']}: "
            f"{s['queries_evaluated']} judged queries evaluated, "
            f"{d['documents']} documents; candidates: {s['candidates']} (depth {s['depth']})"
        ),
        (
            f"binary metrics count grade >= {s['relevance_threshold']} as relevant "
            f"({s['relevance_threshold_source']})"
        ),
        "skipped: "
        + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in d["skipped"].items() if k != "queries_in_file"),
        "",
        "| system | " + " | ".join(metrics) + f" | W/T/L ({report.headline}) | docs/s | s/query |",
        "|---|" + "---:|" * (len(metrics) + 3),
    ]
    for system in [report.base, *report.systems]:
        cells = []
        for m in metrics:
            value = f"{system.means[m]:.4f}"
            comp = report.comparisons.get(system.label, {}).get(m)
            if comp is not None:
                value += f" ({comp.delta:+.4f}{_marker(comp)})"
            cells.append(value)
        comp = report.comparisons.get(system.label, {}).get(report.headline)
        wtl = f"{comp.wins}/{comp.ties}/{comp.losses}" if comp is not None else ""
        cost = system.cost
        dps = f"{cost['documents_per_second']:.0f}" if cost.get("documents_per_second") else ""
        spq = f"{cost['seconds_per_query']:.3f}" if cost.get("seconds_per_query") is not None else ""
        lines.append(f"| {system.label} | " + " | ".join(cells) + f" | {wtl} | {dps} | {spq} |")
    lines.append("")
    lines.append(
        "(+delta vs the first row; * = p < 0.05 in both the paired t-test and the paired randomization test)"
    )
    return "\n".join(lines)


def plot_deltas(report: EvaluationReport, path: str | Path, metric: str | None = None) -> Path:
    """A PNG with one panel per re-ranker: per-query change of ``metric`` (default the headline), sorted."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    metric = metric or report.headline
    base = report.base.per_query[metric]
    systems = report.systems
    fig, axes = plt.subplots(
        len(systems), 1, figsize=(9, 2.4 * len(systems) + 0.6), sharey=True, squeeze=False
    )
    for ax, system in zip(axes[:, 0], systems):
        deltas = sorted((system.per_query[metric][q] - base[q] for q in base), reverse=True)
        colors = ["#2a9d8f" if x > 0 else "#e76f51" if x < 0 else "#999999" for x in deltas]
        ax.bar(range(len(deltas)), deltas, width=1.0, color=colors)
        ax.axhline(0, color="black", linewidth=0.6)
        c = report.comparisons[system.label][metric]
        ax.set_title(
            f"{system.label}: mean {c.delta:+.4f}, W/T/L {c.wins}/{c.ties}/{c.losses}, "
            f"p(t)={c.t_test_p:.3g}, p(rand)={c.randomization_p:.3g}",
            fontsize=9,
        )
        ax.set_ylabel(f"delta {metric}", fontsize=8)
        ax.set_xlim(-0.5, len(deltas) - 0.5)
    axes[-1, 0].set_xlabel(f"queries, sorted by change against {report.base.label}", fontsize=8)
    fig.suptitle(f"{report.dataset['name']} ({report.settings['split']})", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
