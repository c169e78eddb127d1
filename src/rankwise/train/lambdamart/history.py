"""Judgment-history features: what the training judgments say about a candidate, for queries like this one.

Search teams rank with "what did people who searched for something like this find useful" (historical clicks of
similar queries, an item's popularity) next to text relevance. An LTR model trained with ``history=True`` keeps a
**judgment history** -- every training query's embedding and the documents judged relevant for it (all its qrels,
in or out of its candidates; for a click log, the clicked items) -- in its folder (``history.npz``), and adds two features per candidate, matched by document id:

* ``history:neighbours`` -- the grades the ``neighbours`` (default 20) training queries most similar to this query
  gave this document, each weighted by ``max(cosine, 0) ** 2``: a document relevant to several close queries scores
  high, one relevant to a loosely related query a little.
* ``history:popularity`` -- ``log(1 + the sum of its grades over all training queries)``: how often it was relevant
  at all.

A candidate without an id, or a model whose history does not know it, gets 0 popularity and 0 neighbours when it
has an id, and NaN (LightGBM's *missing*) for both when it has none: no id, no history, never a made-up number.

**Leave-one-out at training.** A training query's own judgments are in the history; computed naively, its relevant
candidates would carry their own labels as features and the trees would learn to trust the history blindly. So a
training query's features leave its own judgments out (:meth:`JudgmentHistory.features` ``leave_out``), exactly as
an unseen query sees the history at serving. Validation queries are never in the history.

Where it helps: collections whose queries share relevant documents. Chosen on nfcorpus/dev (LTR over the offline
members, trained on 80% of nfcorpus/train, early-stopped on the rest): 0.321 nDCG@10 without history, 0.349 with a
history of the training queries' relevant *candidates* only, 0.366 with all their judgments (hence all), 0.369 with
50 neighbours instead of 20 (not worth a 2.5x wider read). On test splits (benchmarks/learning.py): nfcorpus 0.353
-> 0.399, scifact 0.754 -> 0.797 (64% of scifact's test-relevant abstracts are judged relevant for some training
claim, 99.9% of nfcorpus's), within +-0.008 on the four small classic collections. Where the documents of new
queries were never judged relevant before, the features are zero and add nothing. The judgments are stored in the model
folder: a model trained on private click logs carries them.

Example:
    >>> import numpy as np
    >>> h = JudgmentHistory.build(["q1", "q2"], np.eye(2, dtype=np.float32), [{"d1": 2}, {"d1": 1, "d2": 1}])
    >>> h.features(np.array([1.0, 0.0]), ["d1", "d2", "d3", None]).round(3).tolist()
    [[2.0, 1.386], [0.0, 0.693], [0.0, 0.0], [nan, nan]]
    >>> h.features(np.array([1.0, 0.0]), ["d1", "d2"], leave_out="q1").round(3).tolist()  # as q1 itself, training
    [[0.0, 0.693], [0.0, 0.693]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rankwise.errors import InvalidInputError

HISTORY_FEATURES: tuple[str, ...] = ("history:neighbours", "history:popularity")
HISTORY_FILE = "history.npz"
DEFAULT_NEIGHBOURS = 20


@dataclass(frozen=True, eq=False)
class JudgmentHistory:
    """Training queries' unit embeddings and the documents judged relevant for each (CSR: ``offsets`` into
    ``doc_ids``/``grades``), plus every document's grade total."""

    query_ids: tuple[str, ...]
    vectors: np.ndarray  # (queries, dim) float32, unit length
    offsets: np.ndarray  # (queries + 1,) int64
    doc_ids: np.ndarray  # (judgments,) str
    grades: np.ndarray  # (judgments,) float64, > 0
    neighbours: int = DEFAULT_NEIGHBOURS

    @classmethod
    def build(cls, query_ids: Sequence[str], vectors: np.ndarray, judgments: Sequence[Mapping[str, float]],
              neighbours: int = DEFAULT_NEIGHBOURS) -> JudgmentHistory:
        """From one ``{document id: grade}`` per query (grades <= 0 are dropped: only relevance is history)."""
        if isinstance(neighbours, bool) or not isinstance(neighbours, int) or neighbours < 1:
            raise InvalidInputError(f"history neighbours must be an integer >= 1, got {neighbours!r}.")
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(query_ids) or len(judgments) != len(query_ids):
            raise InvalidInputError(
                f"a judgment history needs one vector and one judgment set per query: {len(query_ids)} queries, "
                f"vectors of shape {vectors.shape}, {len(judgments)} judgment sets."
            )
        ids: list[str] = []
        grades: list[float] = []
        offsets = [0]
        for judged in judgments:
            for doc, grade in judged.items():
                if grade > 0:
                    ids.append(str(doc))
                    grades.append(float(grade))
            offsets.append(len(ids))
        return cls(tuple(map(str, query_ids)), vectors, np.array(offsets, dtype=np.int64),
                   np.array(ids, dtype=str), np.array(grades, dtype=np.float64), neighbours)

    def __post_init__(self) -> None:
        totals: dict[str, float] = {}
        for doc, grade in zip(self.doc_ids.tolist(), self.grades.tolist()):
            totals[doc] = totals.get(doc, 0.0) + grade
        object.__setattr__(self, "_totals", totals)
        object.__setattr__(self, "_index", {q: i for i, q in enumerate(self.query_ids)})

    def judged(self, i: int) -> dict[str, float]:
        """The ``{document id: grade}`` of history query ``i``."""
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        return dict(zip(self.doc_ids[lo:hi].tolist(), self.grades[lo:hi].tolist()))

    def features(self, query_vector: np.ndarray, doc_ids: Sequence[str | None],
                 leave_out: str | None = None) -> np.ndarray:
        """``(len(doc_ids), 2)``: the :data:`HISTORY_FEATURES` of each candidate (module docs); ``leave_out`` is
        a training query's id, whose own judgments are left out (training only)."""
        out = np.full((len(doc_ids), len(HISTORY_FEATURES)), np.nan)
        if not len(doc_ids):
            return out
        left = self._index.get(leave_out) if leave_out is not None else None
        near = self._near(np.asarray(query_vector, dtype=np.float32), left)
        own = self.judged(left) if left is not None else {}
        totals: dict[str, float] = self._totals  # type: ignore[attr-defined]
        for row, doc in enumerate(doc_ids):
            if doc is None:
                continue
            key = str(doc)
            out[row, 0] = near.get(key, 0.0)
            out[row, 1] = np.log1p(max(totals.get(key, 0.0) - own.get(key, 0.0), 0.0))
        return out

    def _near(self, query_vector: np.ndarray, left: int | None) -> dict[str, float]:
        """Similarity-weighted grades of the closest history queries' documents."""
        if not len(self.query_ids):
            return {}
        sims = self.vectors @ query_vector
        if left is not None:
            sims[left] = -np.inf
        k = min(self.neighbours, len(sims))
        closest = np.argpartition(-sims, k - 1)[:k]
        acc: dict[str, float] = {}
        for i in closest[np.argsort(-sims[closest], kind="stable")].tolist():
            weight = max(float(sims[i]), 0.0) ** 2
            if weight == 0.0:
                continue
            for doc, grade in self.judged(i).items():
                acc[doc] = acc.get(doc, 0.0) + weight * grade
        return acc

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / HISTORY_FILE
        np.savez(path, query_ids=np.array(self.query_ids, dtype=str), vectors=self.vectors, offsets=self.offsets,
                 doc_ids=self.doc_ids, grades=self.grades, neighbours=np.array(self.neighbours))
        return path

    @classmethod
    def load(cls, folder: str | Path) -> JudgmentHistory:
        path = Path(folder) / HISTORY_FILE
        if not path.is_file():
            raise InvalidInputError(f"{str(folder)!r} was trained with history features but has no {HISTORY_FILE}; "
                                    "copy the whole model folder, or retrain it.")
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(tuple(z["query_ids"].tolist()), z["vectors"], z["offsets"], z["doc_ids"], z["grades"],
                           int(z["neighbours"]))
        except (OSError, KeyError, ValueError) as exc:
            raise InvalidInputError(f"{path} cannot be read ({exc}); retrain the model.") from exc

    def summary(self) -> dict[str, Any]:
        return {"queries": len(self.query_ids), "judgments": len(self.doc_ids), "documents": len(self._totals),  # type: ignore[attr-defined]
                "neighbours": self.neighbours}


def query_encoder(model: Any) -> Any:
    """``model`` when it can embed queries for a history (a bi-encoder re-ranker: ``embed_query``), else an error."""
    if not callable(getattr(model, "embed_query", None)):
        raise InvalidInputError(
            f"the history encoder must be a bi-encoder (it embeds queries), got {type(model).__name__}; "
            "use history_encoder='minilm-bi-encoder' or another sentence-transformers model."
        )
    return model


class HistoryFeatures:
    """A :class:`JudgmentHistory` with the encoder that embeds queries for it (a bi-encoder re-ranker: anything
    with ``embed_query``)."""

    def __init__(self, history: JudgmentHistory, encoder: Any) -> None:
        self.history = history
        self.encoder = query_encoder(encoder)

    def rows(self, query: str, doc_ids: Sequence[str | None], leave_out: str | None = None) -> np.ndarray:
        vector = self.encoder.embed_query(query) if len(doc_ids) else np.zeros(0)
        return self.history.features(vector, doc_ids, leave_out)
