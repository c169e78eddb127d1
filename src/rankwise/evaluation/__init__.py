"""Evaluation on judged test collections: load, retrieve (BM25), re-rank, measure, test, report.

``rankwise.evaluation.evaluate(...)`` is the API behind ``rankwise eval``; see docs/evaluation.md.

Example:
    >>> from rankwise.evaluation import evaluate, format_table              # doctest: +SKIP
    >>> report = evaluate("../shared/data/scifact", ["bm25", "default"])    # doctest: +SKIP
    >>> print(format_table(report))                                        # doctest: +SKIP
"""

from __future__ import annotations

from rankwise.documents import read_corpus
from rankwise.evaluation.api import candidate_documents, evaluate, evaluate_many, rerank_run
from rankwise.evaluation.first_stage import BM25Settings, default_cache_dir, first_stage_run
from rankwise.evaluation.loader import (
    DataFormatError,
    Dataset,
    Qrels,
    Run,
    load_dataset,
    read_qrels,
    read_queries,
    read_run,
    write_run,
)
from rankwise.evaluation.metrics import DEFAULT_METRICS, evaluate_run, mean_scores
from rankwise.evaluation.report import EvaluationReport, SystemResult, format_table, plot_deltas
from rankwise.evaluation.significance import Comparison, compare, paired_t_test, randomization_test
from rankwise.evaluation.spec import RerankerSpec, build_reranker, parse_spec

__all__ = [
    "DEFAULT_METRICS",
    "BM25Settings",
    "Comparison",
    "DataFormatError",
    "Dataset",
    "EvaluationReport",
    "Qrels",
    "RerankerSpec",
    "Run",
    "SystemResult",
    "build_reranker",
    "candidate_documents",
    "compare",
    "default_cache_dir",
    "evaluate",
    "evaluate_many",
    "evaluate_run",
    "first_stage_run",
    "format_table",
    "load_dataset",
    "mean_scores",
    "paired_t_test",
    "parse_spec",
    "plot_deltas",
    "randomization_test",
    "read_corpus",
    "read_qrels",
    "read_queries",
    "read_run",
    "rerank_run",
    "write_run",
]
