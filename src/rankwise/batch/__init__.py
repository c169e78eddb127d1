"""Batch re-ranking of large datasets: resumable, bounded memory, on this machine or on a Ray cluster.

``rerank_dataset(input, output_dir, model, ...)`` (and ``rankwise batch``) reads a BEIR folder, JSONL groups or
Parquet pairs, scores each query's candidates together, and writes Parquet shards ``(query_id, doc_id, score,
rank)`` with a manifest, so a killed job resumes where it stopped. See docs/batch.md.

Names are imported lazily: ``import rankwise.batch`` does not import pyarrow.

Example:
    >>> from rankwise.batch import rerank_dataset                                # doctest: +SKIP
    >>> rerank_dataset("groups.jsonl", "out", "bm25", top_k=10).summary()        # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rankwise._lazy import by_name, lazy_attributes

_LAZY: dict[str, str] = by_name(
    {
        "rankwise.batch.run": ("rerank_dataset", "BatchReport"),
        "rankwise.batch.progress": ("BatchProgress",),
        "rankwise.batch.inputs": ("InputSource", "open_input"),
        "rankwise.batch.shards": ("ShardSpec", "ShardSummary", "plan_shards", "process_shard", "read_shard"),
        "rankwise.batch._manifest": ("SettingsMismatchError",),
    }
)

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals(), __all__)

if TYPE_CHECKING:  # for type checkers and IDEs only
    from rankwise.batch._manifest import SettingsMismatchError
    from rankwise.batch.inputs import InputSource, open_input
    from rankwise.batch.progress import BatchProgress
    from rankwise.batch.run import BatchReport, rerank_dataset
    from rankwise.batch.shards import ShardSpec, ShardSummary, plan_shards, process_shard, read_shard
