"""Length-sorted, token-budget batching of (query, passage) token sequences.

Cross-encoders spend their time on padding when a batch mixes short and long pairs. Sorting by length and filling
batches up to a token budget (``batch_size * padded_length <= max_tokens``) keeps padding near zero and keeps memory
flat whatever the lengths are. Pure numpy: the torch and ONNX backends share it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Batch:
    """Padded model inputs for some pairs; ``rows`` are the pairs' positions in the caller's pair list."""

    rows: np.ndarray
    input_ids: np.ndarray
    attention_mask: np.ndarray
    token_type_ids: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """The model inputs by their usual graph input names (a graph may take only some of them)."""
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask,
                "token_type_ids": self.token_type_ids}


def plan_batches(lengths: Sequence[int], max_batch_size: int, max_tokens: int) -> list[np.ndarray]:
    """Group pair indices into batches of similar length.

    Pairs are sorted by length (longest first, so a batch that does not fit in memory fails on the first batch, not
    the last); a batch grows while ``count * longest <= max_tokens`` and ``count <= max_batch_size``. A single pair
    longer than the budget still gets a batch of its own.
    """
    if max_batch_size < 1 or max_tokens < 1:
        raise ValueError(f"max_batch_size and max_tokens must be >= 1, got {max_batch_size} and {max_tokens}.")
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = int(lengths[order[start]])
        fit = max(1, min(max_batch_size, max_tokens // max(longest, 1)))
        batches.append(order[start : start + fit])
        start += fit
    return batches


def pad_batch(
    rows: np.ndarray,
    input_ids: Sequence[np.ndarray],
    token_type_ids: Sequence[np.ndarray],
    pad_id: int,
    pad_to_multiple_of: int | None = None,
) -> Batch:
    """Right-pad the selected sequences into int64 matrices (the dtype both torch and ONNX BERT graphs take)."""
    width = max(len(input_ids[r]) for r in rows)
    if pad_to_multiple_of:
        width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    types = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        n = len(input_ids[r])
        ids[i, :n] = input_ids[r]
        types[i, :n] = token_type_ids[r]
        mask[i, :n] = 1
    return Batch(rows=np.asarray(rows), input_ids=ids, attention_mask=mask, token_type_ids=types)


def iter_batches(
    input_ids: Sequence[np.ndarray],
    token_type_ids: Sequence[np.ndarray],
    pad_id: int,
    max_batch_size: int,
    max_tokens: int,
    pad_to_multiple_of: int | None = None,
) -> Iterator[Batch]:
    """Plan and pad every batch for the given sequences, lazily (so padding can overlap model work)."""
    for rows in plan_batches([len(x) for x in input_ids], max_batch_size, max_tokens):
        yield pad_batch(rows, input_ids, token_type_ids, pad_id, pad_to_multiple_of)


def max_per_owner(passage_scores: np.ndarray, owners: np.ndarray, n_owners: int) -> np.ndarray:
    """Max-passage aggregation: each document's score is the best score among its passages."""
    out = np.full(n_owners, -np.inf, dtype=np.float64)
    np.maximum.at(out, owners, passage_scores.astype(np.float64))
    return out
