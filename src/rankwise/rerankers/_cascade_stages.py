"""A cascade's stages as written: ``"bm25:100,default:30"``, ``"name:keep"`` texts or
``(reranker_or_name, keep)`` pairs, parsed and checked (the names are re-exported by
:mod:`rankwise.rerankers.cascade`)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from rankwise._validation import preview
from rankwise.errors import InvalidInputError
from rankwise.rerankers.base import Reranker

StageLike = str | tuple[Reranker | str, int | None] | Sequence[Any]
"""A stage: ``(reranker_or_name, keep)``, or the text ``"name:keep"`` (``"name"`` alone keeps all)."""
ALL = "all"
"""The keep that passes every document on, as written in a stage's text (``"default:all"``)."""


def parse_stage(text: str) -> tuple[str, int | None]:
    """``"bm25:100"`` -> ``("bm25", 100)``; ``"default:all"`` and ``"default"`` -> ``("default", None)``.

    The keep follows the *last* colon, so a name keeps its own colons (``"my/model:onnx:10"`` in an evaluation
    spec). Raises :class:`InvalidInputError` for an empty name or a keep that is not a whole number >= 1 or ``all``.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError(f"a cascade stage must look like NAME:KEEP (e.g. 'bm25:100'), got {preview(text)}.")
    name, sep, raw = text.strip().rpartition(":")
    if not sep:
        return raw, None
    if not name.strip():
        raise InvalidInputError(f"cascade stage {text!r} names no re-ranker before ':'; write NAME:KEEP.")
    raw = raw.strip()
    if raw.lower() == ALL:
        return name.strip(), None
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidInputError(
            f"cascade stage {text!r}: keep {raw!r} must be a whole number >= 1 (documents passed to the next "
            "stage) or 'all', e.g. 'bm25:100'."
        )
    return name.strip(), int(raw)


def parse_stages(stages: str | Sequence[StageLike]) -> list[tuple[Reranker | str, int | None]]:
    """Stages as ``(reranker_or_name, keep)`` pairs, from ``"bm25:100,default:30"`` or a list of pairs/texts.

    Raises:
        InvalidInputError: not a non-empty list of stages, a malformed stage or keep (named), keeps that grow, or
            a stage before the last that keeps all.
    """
    if isinstance(stages, str):
        stages = [s for s in stages.split(",") if s.strip()] or [stages]
    if isinstance(stages, Mapping) or not isinstance(stages, Sequence) or not stages:
        raise InvalidInputError(
            "stages must be a non-empty list of (reranker_or_name, keep) pairs or 'name:keep' texts, e.g. "
            f"[('bm25', 100), ('default', 30)] or 'bm25:100,default:30'; got {preview(stages)}."
        )
    out = [_one_stage(stage) for stage in stages]
    _check_keeps([keep for _, keep in out])
    return out


def _one_stage(stage: Any) -> tuple[Reranker | str, int | None]:
    if isinstance(stage, str):
        return parse_stage(stage)
    if not (isinstance(stage, Sequence) and len(stage) == 2 and isinstance(stage[0], (Reranker, str))):
        raise InvalidInputError(
            f"a cascade stage must be (reranker_or_name, keep) or 'name:keep', got {preview(stage)}."
        )
    member, keep = stage
    if isinstance(member, str) and not member.strip():
        raise InvalidInputError(f"cascade stage {preview(stage)} names no re-ranker; pass a name or a Reranker.")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
        raise InvalidInputError(
            f"cascade stage {preview(stage)}: keep {keep!r} must be an int >= 1 (documents passed to the next "
            "stage) or None (keep all; last stage only)."
        )
    return member, keep


def _check_keeps(keeps: list[int | None]) -> None:
    for i, keep in enumerate(keeps[:-1]):
        if keep is None:  # the next stage would re-score everything: pure cost, surely a slip
            raise InvalidInputError(
                f"cascade stage {i + 1} of {len(keeps)} keeps all documents, so the next stage re-scores all of "
                "them; give it a keep (e.g. 'bm25:100') or drop it. Only the last stage may keep all."
            )
    given = [k for k in keeps if k is not None]
    for before, after in itertools.pairwise(given):
        if after > before:
            raise InvalidInputError(
                f"cascade keeps must not grow: a stage keeps {after} after one that kept {before} (keeps "
                f"{[ALL if k is None else k for k in keeps]}); a stage can only pass on what it received."
            )
