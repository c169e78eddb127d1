"""Click logs as LTR training data.

One JSON object per line, one line per search session::

    {"query": "red boots", "shown": ["d3", "d7", "d9"], "clicked": ["d7"]}
    {"query": "red boots", "shown": [{"id": "d3", "text": "...", "title": "...", "price": 40}, ...], "clicked": []}

``shown`` lists the items in the order they were shown (position 1 first): ids of a corpus (``corpus=``: a BEIR
folder, a ``corpus.jsonl`` or any file :func:`rankwise.documents.read_corpus` reads) or whole documents (an ``id``,
``text``, optional ``title`` and any metadata keys). ``clicked`` lists the ids clicked in that session; each must
be one of ``shown``.

**Labels and position bias.** People click what they see, and they see the top first: a raw click count rewards
whatever was already ranked high. ``position_bias="skip-above"`` (the default) uses Joachims' rule (2002): in a
session, the items at or above the lowest click were examined, so an examined item that was not clicked is a
negative; items below the lowest click may never have been seen, so that session says nothing about them (they
are left out, and counted). A session without clicks says nothing either. ``position_bias="none"`` counts every
shown item as examined. We chose this rule over inverse-propensity weights because LambdaMART in LightGBM takes
integer graded labels and one weight per *query*, not per item, so per-position propensities have nowhere to go;
the skip-above rule corrects for position through *which* items get labels, which lambdarank takes as is.

Sessions of the same query text are pooled. Per (query, item): ``clicks`` and ``examined`` counts; the label is 0
(examined, never clicked), 1 (clicked, click rate under 1/2) or 2 (click rate 1/2 or more). Items never examined
are dropped. Candidates of a query are its examined items, in order of first appearance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from rankwise.documents import decode, json_lines, read_corpus, to_document
from rankwise.errors import InvalidInputError
from rankwise.train.lambdamart.data import Group, GroupSet, keep_judged
from rankwise.types import Document

PositionBias = Literal["skip-above", "none"]
POSITION_BIAS: tuple[str, ...] = ("skip-above", "none")


@dataclass(frozen=True)
class Session:
    """One parsed click-log line."""

    query: str
    shown: tuple[Document, ...]
    clicked: frozenset[str]


@dataclass
class _Tally:
    documents: dict[str, Document] = field(default_factory=dict)
    clicks: dict[str, int] = field(default_factory=dict)
    examined: dict[str, int] = field(default_factory=dict)


def _item(raw: Any, corpus: Mapping[str, Document] | None, where: str) -> Document:
    if isinstance(raw, (str, int)) and not isinstance(raw, bool):
        if corpus is None:
            raise InvalidInputError(
                f"{where}: shown item {raw!r} is an id but no corpus was given; pass corpus= (--corpus) or write "
                "whole documents ({\"id\": ..., \"text\": ...})."
            )
        doc = corpus.get(str(raw))
        if doc is None:
            raise InvalidInputError(f"{where}: shown id {raw!r} is not in the corpus.")
        return doc
    if isinstance(raw, Mapping):
        if raw.get("id") is None:
            raise InvalidInputError(f"{where}: a shown document needs an \"id\" (clicks refer to it), got {raw!r}.")
        doc = to_document(dict(raw), 0)
        return Document(text=doc.text, id=str(doc.id), title=doc.title, metadata=doc.metadata)
    raise InvalidInputError(f"{where}: a shown item must be an id or a document object, got {raw!r}.")


def parse_session(obj: Any, where: str, corpus: Mapping[str, Document] | None = None) -> Session:
    """One click-log object as a :class:`Session`; an :class:`InvalidInputError` naming ``where`` and the value
    otherwise."""
    if not isinstance(obj, Mapping):
        raise InvalidInputError(f"{where}: expected a JSON object with query, shown, clicked; got {obj!r}.")
    query, shown, clicked = obj.get("query"), obj.get("shown"), obj.get("clicked", [])
    if not isinstance(query, str) or not query.strip():
        raise InvalidInputError(f"{where}: \"query\" must be a non-empty string, got {query!r}.")
    if not isinstance(shown, list) or not shown:
        raise InvalidInputError(f"{where}: \"shown\" must be a non-empty list of ids or documents, got {shown!r}.")
    if not isinstance(clicked, list) or not all(isinstance(c, (str, int)) and not isinstance(c, bool) for c in clicked):
        raise InvalidInputError(f"{where}: \"clicked\" must be a list of shown ids, got {clicked!r}.")
    docs = tuple(_item(raw, corpus, where) for raw in shown)
    ids = [str(d.id) for d in docs]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise InvalidInputError(f"{where}: \"shown\" lists {', '.join(map(repr, repeated))} more than once.")
    not_shown = sorted({str(c) for c in clicked} - set(ids))
    if not_shown:
        raise InvalidInputError(
            f"{where}: clicked {', '.join(map(repr, not_shown))} not among the shown items; a click must be on a "
            "shown item."
        )
    return Session(query, docs, frozenset(str(c) for c in clicked))


def read_sessions(path: str | Path, corpus: Mapping[str, Document] | None = None) -> list[Session]:
    """Every session of a click-log JSONL file."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"click log {str(path)!r} does not exist.")
    text = decode(path.read_bytes(), str(path))
    return [parse_session(obj, f"{path}:{n}", corpus) for n, obj in json_lines(text, str(path))]


def read_click_corpus(path: str | Path) -> dict[str, Document]:
    """The documents shown ids refer to: a BEIR folder's ``corpus.jsonl`` or a corpus file."""
    path = Path(path)
    file = path / "corpus.jsonl" if path.is_dir() and (path / "corpus.jsonl").is_file() else path
    return {str(d.id): d for d in read_corpus(file, require_ids=True)}


def _examined(session: Session, position_bias: str) -> int:
    """How many of the session's top items count as examined (see the module docs)."""
    if position_bias == "none":
        return len(session.shown)
    positions = [i for i, d in enumerate(session.shown) if str(d.id) in session.clicked]
    return positions[-1] + 1 if positions else 0


def click_groups(sessions: Iterable[Session], position_bias: str = "skip-above", source: str = "clicks") -> GroupSet:
    """Judged groups from sessions: labels from clicks with the ``position_bias`` rule (module docs)."""
    if position_bias not in POSITION_BIAS:
        raise InvalidInputError(f"position_bias must be one of {', '.join(POSITION_BIAS)}, got {position_bias!r}.")
    tallies: dict[str, _Tally] = {}
    counts = {"sessions": 0, "sessions_without_clicks": 0, "impressions_not_examined": 0}
    for session in sessions:
        counts["sessions"] += 1
        counts["sessions_without_clicks"] += not session.clicked
        seen = _examined(session, position_bias)
        counts["impressions_not_examined"] += len(session.shown) - seen
        tally = tallies.setdefault(session.query, _Tally())
        for doc in session.shown[:seen]:
            key = str(doc.id)
            tally.documents.setdefault(key, doc)
            tally.examined[key] = tally.examined.get(key, 0) + 1
            tally.clicks[key] = tally.clicks.get(key, 0) + (key in session.clicked)
    if not counts["sessions"]:
        raise InvalidInputError(f"{source}: the click log has no sessions.")
    groups = [_group(i, query, tally) for i, (query, tally) in enumerate(tallies.items())]
    kept = keep_judged(groups, counts)
    if not kept:
        raise InvalidInputError(
            f"{source}: no query has a clicked item with at least one other examined item to rank it against; "
            "training needs sessions with clicks."
        )
    return GroupSet(kept, source, {"position_bias": position_bias, **counts})


def _group(i: int, query: str, tally: _Tally) -> Group:
    ids = list(tally.documents)
    rates = [tally.clicks[k] / tally.examined[k] for k in ids]
    labels = np.array([0 if r == 0 else (2 if r >= 0.5 else 1) for r in rates], dtype=np.int32)
    return Group(f"clicks-{i}", query, tuple(tally.documents[k] for k in ids), labels)
