"""Training data for LTR: judged groups (one query, its candidates, a graded label per candidate).

From a BEIR-layout folder (:func:`beir_groups`): the candidates of each judged query are the folder's run file when
it has one (a re-ranking pool, e.g. TREC DL's ``bm25_top100.run``) or BM25 top-``depth`` over the corpus
(:func:`rankwise.evaluation.first_stage_run`, cached), each with ``first_stage_score`` / ``first_stage_rank`` in its
metadata, as ``rankwise eval`` gives them. Labels are the qrels grades (unjudged = 0, negative grades = 0). A query
none of whose candidates is judged relevant teaches lambdarank nothing (every ordering of its list is equally good),
so it is dropped and counted in ``dropped_queries_without_relevant``.

From a click log: :mod:`rankwise.train.lambdamart.clicks`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rankwise.errors import InvalidInputError
from rankwise.types import Document

MAX_LABEL = 30  # LightGBM's default label_gain covers grades 0..30


@dataclass(frozen=True)
class Group:
    """One judged query: its candidates and one integer label per candidate (higher = more relevant)."""

    query_id: str
    query: str
    documents: tuple[Document, ...]
    labels: np.ndarray
    judged: Mapping[str, int] | None = None  # every relevant judgment of the query (qrels), candidates or not

    def relevant(self) -> dict[str, int]:
        """``{document id: grade}`` of the documents judged relevant: every judgment of the query when known (a
        qrels file), else its candidates' labels (candidates without an id are left out)."""
        if self.judged is not None:
            return {str(d): int(g) for d, g in self.judged.items() if g > 0}
        return {str(d.id): int(y) for d, y in zip(self.documents, self.labels) if y > 0 and d.id is not None}

    def has_relevant(self) -> bool:
        return bool(np.any(self.labels > 0))


@dataclass
class GroupSet:
    """Groups and what was left out building them (reported)."""

    groups: list[Group]
    source: str
    counts: dict[str, Any] = field(default_factory=dict)


def check_label(grade: Any, where: str) -> int:
    """A qrels or click grade as a lambdarank label (0..30); an error naming it otherwise."""
    if isinstance(grade, bool) or not isinstance(grade, (int, np.integer)) or grade > MAX_LABEL:
        raise InvalidInputError(
            f"{where}: relevance grade {grade!r} is not an integer in 0..{MAX_LABEL} (LightGBM lambdarank labels); "
            "map the grades to small integers."
        )
    return max(int(grade), 0)


def keep_judged(groups: Sequence[Group], counts: dict[str, Any]) -> list[Group]:
    """The groups with at least one relevant candidate; the others are counted as dropped."""
    kept = [g for g in groups if g.has_relevant() and len(g.documents) > 1]
    counts["dropped_queries_without_relevant"] = sum(1 for g in groups if not g.has_relevant())
    counts["dropped_queries_single_candidate"] = sum(1 for g in groups if g.has_relevant() and len(g.documents) <= 1)
    counts["queries"] = len(kept)
    counts["candidates"] = sum(len(g.documents) for g in kept)
    return kept


def beir_groups(
    folder: str | Path,
    split: str,
    *,
    depth: int = 100,
    candidates: str | Path | None = None,
    cache_dir: str | Path | None = None,
    max_queries: int | None = None,
) -> GroupSet:
    """The judged groups of ``folder``'s ``split`` (see the module docs); ``max_queries`` keeps the first N."""
    from rankwise.evaluation import candidate_documents, first_stage_run, load_dataset

    dataset = load_dataset(folder, split, candidates)
    if max_queries is not None:
        keep = list(dataset.queries)[:max_queries]
        dataset = _subset(dataset, keep)
    run = first_stage_run(dataset, depth, cache_dir=cache_dir)
    groups = []
    for query_id, ranked in run.items():
        docs = candidate_documents(dataset, ranked)
        judged = dataset.qrels.get(query_id, {})
        labels = np.array(
            [check_label(judged.get(d.id, 0), f"qrels/{split}.tsv, query {query_id!r}, document {d.id!r}")
             for d in docs],
            dtype=np.int32,
        )
        relevant = {str(d): int(g) for d, g in judged.items() if isinstance(g, (int, np.integer)) and g > 0}
        groups.append(Group(query_id, dataset.queries[query_id], tuple(docs), labels, relevant))
    if not groups:
        raise InvalidInputError(f"{folder}: split {split!r} has no judged queries; check qrels/{split}.tsv.")
    counts: dict[str, Any] = {"judged_queries": len(groups), "depth": depth}
    kept = keep_judged(groups, counts)
    source = f"{dataset.name}/{split}"
    if not kept:
        raise InvalidInputError(
            f"{source}: none of the {len(groups)} judged queries has a relevant document among its top-{depth} "
            "candidates; raise --depth or check the qrels."
        )
    return GroupSet(kept, source, counts)


def _subset(dataset: Any, keep: list[str]) -> Any:
    from dataclasses import replace

    return replace(
        dataset,
        queries={q: dataset.queries[q] for q in keep},
        qrels={q: dataset.qrels[q] for q in keep},
        pool=None if dataset.pool is None else {q: dataset.pool[q] for q in keep},
    )


def split_groups(groups: Sequence[Group], fraction: float, seed: int) -> tuple[list[Group], list[Group]]:
    """A seeded, query-grouped split: ``(train, valid)`` with ``round(fraction * n)`` queries in valid (none when
    fewer than 5 queries or ``fraction == 0``: early stopping then needs an explicit dev split)."""
    if not 0.0 <= fraction < 1.0:
        raise InvalidInputError(f"valid_fraction must be in [0, 1), got {fraction!r}.")
    n_valid = round(fraction * len(groups))
    if len(groups) < 5 or n_valid == 0:
        return list(groups), []
    order = np.random.default_rng(seed).permutation(len(groups))
    valid = set(order[:n_valid].tolist())
    return [g for i, g in enumerate(groups) if i not in valid], [g for i, g in enumerate(groups) if i in valid]
