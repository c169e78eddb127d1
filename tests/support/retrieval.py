"""Helpers for the retrieval, pipeline and integration tests: BEIR collections from ../shared/data and indexes built
once per session (the dense ones embed with the session's bi-encoder)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import DATA

_BUILT: dict[str, object] = {}


def collection(name: str) -> Path:
    folder = DATA / name
    if not (folder / "corpus.jsonl").is_file():
        pytest.skip(f"evaluation data {folder} not found (set RANKWISE_DATA)")
    return folder


@cache
def queries(name: str) -> dict[str, str]:
    with (collection(name) / "queries.jsonl").open(encoding="utf-8") as f:
        return {str(o["_id"]): o["text"] for o in map(json.loads, f)}


@cache
def relevant(name: str) -> dict[str, frozenset[str]]:
    """query id -> ids of the documents judged relevant (grade > 0) in qrels/test.tsv."""
    out: dict[str, set[str]] = {}
    with (collection(name) / "qrels" / "test.tsv").open(encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    for q, d, grade in rows:
        if int(grade) > 0:
            out.setdefault(q, set()).add(d)
    return {q: frozenset(ds) for q, ds in out.items()}


def doc_ranking(hits: Sequence, k: int) -> list[str]:
    """Document ids in the order of their best passage, first ``k``."""
    return list(dict.fromkeys(h.passage.doc_id for h in hits))[:k]


def mean_recall(search: Callable[[str], Sequence], name: str, k: int) -> float:
    """Mean over judged queries of the share of relevant documents among the first ``k`` retrieved documents."""
    qs, rel = queries(name), relevant(name)
    total = 0.0
    for q, docs in rel.items():
        total += len(docs & set(doc_ranking(search(qs[q]), k))) / len(docs)
    return total / len(rel)


def built_index(key: str, factory: Callable[[], object]) -> object:
    """One index per key per test session (shared across test modules)."""
    if key not in _BUILT:
        _BUILT[key] = factory()
    return _BUILT[key]


def bm25_index(name: str):
    from rankwise.retrieval import Index, read_corpus

    return built_index(f"bm25:{name}", lambda: Index.build(read_corpus(collection(name) / "corpus.jsonl"), dense=False))


def hybrid_index(name: str, embedder):
    from rankwise.retrieval import Index, read_corpus

    return built_index(
        f"hybrid:{name}", lambda: Index.build(read_corpus(collection(name) / "corpus.jsonl"), embedder=embedder)
    )
