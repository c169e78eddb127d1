"""The work of :class:`rankwise.distributed.ray.Scorer` on one batch: rows -> groups -> scores -> ranked rows.

Rows become groups with the batch job's own Parquet rules (:mod:`rankwise.batch._parquet`: ids, texts, duplicates,
``fields``), so a row gets the score ``rankwise batch`` would give it. Kept apart from the Ray code so that it is
plain pyarrow and tested without Ray.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rankwise.batch._parquet import _group as group_rows
from rankwise.batch.inputs import PARQUET_COLUMNS, Group, Reject
from rankwise.errors import InvalidInputError, RankwiseError, require
from rankwise.rerankers.base import Reranker
from rankwise.types import rank_order

OUTPUT_COLUMNS = ("score", "rank", "reject_reason")


def _pyarrow() -> Any:
    return require("pyarrow", "ray", "rankwise.distributed.ray.Scorer")


def to_table(batch: Any) -> Any:
    """A Ray Data batch (pyarrow Table, pandas DataFrame, or a dict of numpy arrays / lists) as a pyarrow Table.

    Example:
        >>> to_table({"query_id": ["q1"], "doc_id": ["d1"]}).column_names
        ['query_id', 'doc_id']
    """
    pa = _pyarrow()
    if isinstance(batch, pa.Table):
        return batch
    if isinstance(batch, Mapping):
        return pa.table({str(k): (v.tolist() if hasattr(v, "tolist") else list(v)) for k, v in batch.items()})
    if hasattr(batch, "columns") and hasattr(batch, "to_dict"):  # a pandas DataFrame (pandas is not imported here)
        return pa.Table.from_pandas(batch, preserve_index=False)
    raise InvalidInputError(
        f"Scorer takes a batch as a pyarrow Table, a pandas DataFrame or a dict of columns, got "
        f"{type(batch).__name__}; pass batch_format='pyarrow' to map_groups/map_batches."
    )


def _check_columns(table: Any, keep_columns: bool) -> None:
    missing = [c for c in PARQUET_COLUMNS if c not in table.column_names]
    if missing:
        raise InvalidInputError(
            f"Scorer needs the columns {', '.join(PARQUET_COLUMNS)}; the batch has no {', '.join(missing)} (it has "
            f"{', '.join(table.column_names) or 'none'}). Rename them, e.g. ds.rename_columns({{'id': 'doc_id'}})."
        )
    clash = [c for c in OUTPUT_COLUMNS if c in table.column_names]
    if clash and keep_columns:
        raise InvalidInputError(
            f"the batch already has column(s) {', '.join(clash)}, which Scorer adds; rename or drop them first "
            "(ds.rename_columns / ds.drop_columns), or pass keep_columns=False."
        )


def _by_query(records: list[dict[str, Any]]) -> list[list[int]]:
    """Row positions of each query id, queries in order of first appearance, rows in input order."""
    groups: dict[Any, list[int]] = {}
    for i, record in enumerate(records):
        key = record.get("query_id")
        try:
            hash(key)
        except TypeError:  # an id that is a list or a map: still grouped (and then rejected), never dropped
            key = repr(key)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def _row(where: str) -> int:
    return int(where.rpartition(":")[2])  # group_rows(name="") writes ":<row>"


class _Out:
    """The output rows: input row positions, and the columns Scorer adds."""

    def __init__(self) -> None:
        self.take: list[int] = []
        self.score: list[float | None] = []
        self.rank: list[int | None] = []
        self.reason: list[str | None] = []

    def ranked(self, rows: Sequence[int], scores: Sequence[float], top_k: int | None) -> None:
        for rank, i in enumerate(rank_order(scores)[:top_k], start=1):
            self.take.append(rows[i])
            self.score.append(float(scores[i]))
            self.rank.append(rank)
            self.reason.append(None)

    def rejected(self, row: int, reason: str) -> None:
        self.take.append(row)
        self.score.append(None)
        self.rank.append(None)
        self.reason.append(reason)


def _score_group(reranker: Reranker, group: Group, out: _Out, top_k: int | None) -> None:
    rows = [_row(w) for w in group.rows or ()]
    try:
        scores = reranker.score(group.query, group.documents)
    except RankwiseError as exc:  # as in a batch job: the group's rows are rejected with the re-ranker's message
        for row in rows:
            out.rejected(row, f"the re-ranker refused this group: {exc}")
        return
    out.ranked(rows, scores, top_k)


def score_table(
    reranker: Reranker, table: Any, fields: tuple[str, ...] | None, top_k: int | None, keep_columns: bool
) -> Any:
    """``table``'s rows ranked per query, with ``score``, ``rank`` and ``reject_reason`` added (see Scorer)."""
    pa = _pyarrow()
    _check_columns(table, keep_columns)
    records = table.to_pylist()
    out = _Out()
    for positions in _by_query(records):
        rejects: list[Reject] = []
        for item in group_rows([(i, records[i]) for i in positions], "", {}, fields):
            if isinstance(item, Reject):
                rejects.append(item)
            else:
                _score_group(reranker, item, out, top_k)
        for reject in rejects:
            out.rejected(_row(reject.where), reject.reason)
    base = table if keep_columns else table.select(["query_id", "doc_id"])
    result = base.take(pa.array(out.take, pa.int64()))
    result = result.append_column("score", pa.array(out.score, pa.float64()))
    result = result.append_column("rank", pa.array(out.rank, pa.int32()))
    return result.append_column("reject_reason", pa.array(out.reason, pa.string()))
