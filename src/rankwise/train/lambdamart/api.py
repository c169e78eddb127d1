"""``rankwise.train.ltr(...)``: learn a LambdaMART ranker from judgments (a BEIR folder) or clicks (a JSONL log).

Example:
    >>> import rankwise, rankwise.train                                                   # doctest: +SKIP
    >>> report = rankwise.train.ltr("data/scifact", "scifact-ltr", split="train",
    ...                             members=["first-stage-score", "bm25", "minilm-bi-encoder"])  # doctest: +SKIP
    >>> report["valid_ndcg@10"], report["feature_importance_gain"]                      # doctest: +SKIP
    >>> rankwise.load("scifact-ltr").rank("query", candidates)                          # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankwise.errors import InvalidInputError
from rankwise.rerankers.base import Reranker
from rankwise.train.lambdamart.data import Group, GroupSet, beir_groups, split_groups
from rankwise.train.lambdamart.features import FeatureExtractor
from rankwise.train.lambdamart.fit import Matrix, train_booster
from rankwise.train.lambdamart.history import (
    DEFAULT_NEIGHBOURS,
    HistoryFeatures,
    JudgmentHistory,
    query_encoder,
)
from rankwise.train.lambdamart.model import Manifest, MemberSpec, save_model

BEIR_MEMBERS: tuple[str, ...] = ("first-stage-score", "bm25", "minilm-bi-encoder")
CLICK_MEMBERS: tuple[str, ...] = ("bm25", "minilm-bi-encoder")


def member_spec(spec: str | Mapping[str, Any]) -> MemberSpec:
    """A member from a spec string or JSON object (the ``rankwise eval -r`` grammar); a local folder becomes an
    absolute path.

    Example:
        >>> member_spec("bm25:k1=1.2").to_dict()
        {'label': 'bm25:k1=1.2', 'name': 'bm25', 'backend': None, 'options': {'k1': 1.2}}
    """
    from rankwise.evaluation.spec import parse_spec

    parsed = parse_spec(spec)
    if parsed.name is None or any(key in parsed.options for key in ("members", "stages")):
        raise InvalidInputError(
            f"LTR member {parsed.label!r} must be a preset, a model or a folder (not a bare backend, fusion or "
            "cascade): list the parts as members (--member bm25 --member minilm-bi-encoder) and let the model learn "
            "how to combine them."
        )
    name = parsed.name
    if Path(name).exists():
        name = str(Path(name).resolve())
    return MemberSpec(label=parsed.label, name=name, backend=parsed.backend, options=dict(parsed.options))


def build_members(specs: Sequence[MemberSpec]) -> list[tuple[str, Reranker]]:
    """``(label, re-ranker)`` per member; a repeated label is an error (features are named by it)."""
    from rankwise.registry import load
    from rankwise.rerankers.ltr import build_member

    labels = [s.label for s in specs]
    if not specs or len(set(labels)) != len(labels):
        raise InvalidInputError(f"members must be one or more distinct re-ranker specs, got {labels!r}.")
    return [(s.label, build_member(s, load)) for s in specs]


def prepare_embeddings(members: Sequence[tuple[str, Reranker]], groups: Sequence[Group], dataset: str,
                       cache_dir: str | Path | None) -> None:
    """Load (or compute and store) the bi-encoder members' document vectors in the evaluation's embedding store,
    so thousands of candidates are embedded once across runs."""
    from rankwise.documents import document_text
    from rankwise.evaluation import default_cache_dir
    from rankwise.evaluation.embeddings import EmbeddingStore, bi_encoders

    store = EmbeddingStore(cache_dir if cache_dir is not None else default_cache_dir())
    for _, member in members:
        for bi in bi_encoders(member):
            store.prepare(bi, [document_text(d, bi.fields) for g in groups for d in g.documents], dataset)


def feature_blocks(
    extractor: FeatureExtractor,
    groups: Sequence[Group],
    columns: Callable[[Group], Sequence[np.ndarray] | None] | None = None,
    *,
    leave_out: bool = False,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(features, labels)`` per group; ``columns(group)`` may give cached member scores (None: compute);
    ``leave_out``: these are the training groups, whose own judgments the history features leave out."""
    blocks = []
    for g in groups:
        cached = columns(g) if columns is not None else None
        rows = extractor.matrix(g.query, list(g.documents), member_scores=cached,
                                leave_out=g.query_id if leave_out else None)
        blocks.append((rows, g.labels))
    return blocks


def history_features(groups: Sequence[Group], encoder: MemberSpec, members: Sequence[tuple[str, Reranker]],
                     neighbours: int = DEFAULT_NEIGHBOURS) -> HistoryFeatures:
    """The judgment history of the training ``groups`` (every document judged relevant for them: all of a qrels
    file's judgments, or a click log's clicked items), with the bi-encoder that embeds queries: the member of the
    same spec when there is one, else ``encoder`` built."""
    reused = [r for label, r in members if label == encoder.label]
    model = query_encoder(reused[0] if reused else build_members([encoder])[0][1])
    vectors = np.array([model.embed_query(g.query) for g in groups], dtype=np.float32).reshape(len(groups), -1)
    judged = [g.relevant() for g in groups]
    if not any(judged):
        raise InvalidInputError(
            "history features need candidates with ids (Document.id / an 'id' field): no training candidate "
            "judged relevant has one; give ids, or train without --history."
        )
    return HistoryFeatures(JudgmentHistory.build([g.query_id for g in groups], vectors, judged, neighbours), model)


def load_groups(
    data: str | Path, *, split: str, depth: int, candidates: str | Path | None, corpus: str | Path | None,
    position_bias: str, cache_dir: str | Path | None, max_queries: int | None,
) -> GroupSet:
    """Groups from a BEIR folder (a directory) or a click log (a file)."""
    path = Path(data)
    if path.is_dir():
        return beir_groups(path, split, depth=depth, candidates=candidates, cache_dir=cache_dir,
                           max_queries=max_queries)
    if path.is_file():
        from rankwise.train.lambdamart.clicks import click_groups, read_click_corpus, read_sessions

        table = read_click_corpus(corpus) if corpus is not None else None
        return click_groups(read_sessions(path, table), position_bias, source=str(path))
    raise InvalidInputError(
        f"training data {str(path)!r} does not exist; give a BEIR-layout folder or a click-log JSONL file."
    )


def ltr(
    data: str | Path,
    out: str | Path,
    *,
    members: Sequence[str | Mapping[str, Any]] | None = None,
    metadata_fields: Sequence[str] = (),
    text_features: bool = True,
    split: str = "train",
    valid_split: str | None = None,
    valid_fraction: float = 0.2,
    depth: int = 100,
    candidates: str | Path | None = None,
    corpus: str | Path | None = None,
    position_bias: str = "skip-above",
    seed: int = 0,
    num_boost_round: int = 500,
    early_stopping: int = 50,
    params: Mapping[str, Any] | None = None,
    prior: str | Mapping[str, float] | None = "auto",
    history: bool = False,
    history_encoder: str | Mapping[str, Any] = "minilm-bi-encoder",
    history_neighbours: int = DEFAULT_NEIGHBOURS,
    cache_dir: str | Path | None = None,
    max_queries: int | None = None,
) -> dict[str, Any]:
    """Train a LambdaMART ranker and save it to the folder ``out`` (``rankwise.load(out)`` serves it).

    Args:
        data: a BEIR-layout folder (qrels, queries, corpus, optional ``*.run`` candidates) or a click-log JSONL
            file (:mod:`rankwise.train.lambdamart.clicks`).
        out: the model folder to write.
        members: re-ranker specs whose scores are features (default: first-stage-score, bm25, minilm-bi-encoder
            for a BEIR folder; bm25, minilm-bi-encoder for clicks).
        metadata_fields: numeric metadata fields used as features (missing -> LightGBM's missing value).
        text_features: add the lexical text features (lengths, title/body coverage, phrase match).
        split, valid_split: qrels splits to train on and to early-stop on; without ``valid_split``, a seeded
            ``valid_fraction`` of the training queries (grouped by query) is held out instead.
        depth, candidates: candidates per query: the folder's run file, or BM25 top-``depth``.
        corpus: for a click log whose ``shown`` items are ids: where the documents are.
        position_bias: click labels: ``"skip-above"`` (default) or ``"none"``.
        seed, num_boost_round, early_stopping, params: LightGBM settings (``params`` over the defaults).
        prior: what boosting starts from (:mod:`rankwise.train.lambdamart.prior`): ``"auto"`` (default:
            ``"fit"`` on small training sets -- constant leaves -- else ``None``), ``"fit"`` (the z-score fusion
            of the members that ranks the training queries best), ``{member label: weight}``, or ``None`` (from
            zero, plain LambdaMART).
        history: add the judgment-history features (:mod:`rankwise.train.lambdamart.history`): the grades the
            ``history_neighbours`` most similar training queries gave each candidate, and its popularity; the
            training judgments are stored in the model folder. Needs candidates with ids.
        history_encoder: the bi-encoder that embeds queries for it (a member with the same spec is reused).
        history_neighbours: how many of the most similar training queries the ``history:neighbours`` feature reads.
        cache_dir: first-stage runs and document embeddings (default: the evaluation cache).
        max_queries: train on the first N judged queries only (quick runs).

    Returns:
        the training report (also in ``out/ltr.json``): counts, best iteration, train/valid nDCG@10, feature
        importances (gain), timings.
    """
    start = time.perf_counter()
    clicks = _is_click_log(data, valid_split)
    load = {"depth": depth, "candidates": candidates, "corpus": corpus, "position_bias": position_bias,
            "cache_dir": cache_dir, "max_queries": max_queries}
    train_set, valid_set, train_groups, valid_groups = _training_groups(data, split, valid_split, valid_fraction,
                                                                        seed, load)
    specs = [member_spec(m) for m in (members if members is not None else (CLICK_MEMBERS if clicks else BEIR_MEMBERS))]
    built = build_members(specs)
    encoder, judged = _judgment_history(history, history_encoder, history_neighbours, train_groups, built)
    extractor = FeatureExtractor(built, [_field(f) for f in metadata_fields], text_features, judged)
    if not clicks:
        prepare_embeddings(extractor.members, [*train_groups, *valid_groups], Path(data).resolve().name, cache_dir)
    t_features = time.perf_counter()
    train_m = Matrix.stack(feature_blocks(extractor, train_groups, leave_out=True), len(extractor.names))
    valid_m = Matrix.stack(feature_blocks(extractor, valid_groups), len(extractor.names))
    features_seconds = time.perf_counter() - t_features
    result = train_booster(train_m, valid_m, extractor.names, params=params, num_boost_round=num_boost_round,
                           early_stopping=early_stopping, seed=seed, prior=prior)
    report = {
        "data": train_set.source,
        "valid": valid_set.source if valid_set is not None else f"{len(valid_groups)} held-out training queries",
        "counts": train_set.counts,
        "members": [s.label for s in specs],
        "feature_names": extractor.names,
        "history": judged.history.summary() if judged is not None else None,
        **result.report,
        "features_seconds": round(features_seconds, 3),
        "total_seconds": round(time.perf_counter() - start, 3),
    }
    _save(out, specs, extractor, result, report, encoder)
    return {"model": str(out), **report}


def _judgment_history(
    history: bool, encoder_spec: str | Mapping[str, Any], neighbours: int, train_groups: Sequence[Group],
    members: Sequence[tuple[str, Reranker]],
) -> tuple[MemberSpec | None, HistoryFeatures | None]:
    """The history encoder's spec and the history features when ``history`` is on, else ``(None, None)``."""
    if not isinstance(history, bool):
        raise InvalidInputError(f"history must be True or False, got {history!r}.")
    if not history:
        return None, None
    encoder = member_spec(encoder_spec)
    return encoder, history_features(train_groups, encoder, members, neighbours)


def _training_groups(
    data: str | Path, split: str, valid_split: str | None, valid_fraction: float, seed: int, load: dict[str, Any]
) -> tuple[GroupSet, GroupSet | None, list[Group], list[Group]]:
    """The training and validation group sets, and the groups to train and to early-stop on: the dev split's, or a
    seeded query-grouped ``valid_fraction`` of the training queries."""
    train_set = load_groups(data, split=split, **load)
    valid_set = load_groups(data, split=valid_split, **load) if valid_split is not None else None
    if valid_set is not None:
        return train_set, valid_set, list(train_set.groups), list(valid_set.groups)
    train_groups, valid_groups = split_groups(train_set.groups, valid_fraction, seed)
    return train_set, None, list(train_groups), list(valid_groups)


def _save(out: str | Path, specs: Sequence[MemberSpec], extractor: FeatureExtractor, result: Any,
          report: dict[str, Any], encoder: MemberSpec | None) -> None:
    """Write the model folder: the manifest (members, features, prior, parameters, report), the trees and the
    judgment history."""
    judged = extractor.history
    history = None if judged is None or encoder is None else {"encoder": encoder.to_dict(), **judged.history.summary()}
    manifest = Manifest(tuple(specs), tuple(extractor.metadata_fields), extractor.text_features,
                        tuple(extractor.names), result.params, result.best_iteration, report, result.prior,
                        result.trees, history)
    save_model(out, manifest, result.booster, judged.history if judged is not None else None)


def _is_click_log(data: str | Path, valid_split: str | None) -> bool:
    """Whether ``data`` is a click log (a file) rather than a BEIR folder; a qrels dev split needs a folder."""
    clicks = Path(data).is_file()
    if clicks and valid_split is not None:
        raise InvalidInputError(
            f"valid_split={valid_split!r} names a qrels split, but {str(data)!r} is a click log; hold out queries "
            "with valid_fraction (--valid-fraction) instead."
        )
    return clicks


def _field(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"metadata fields must be non-empty strings, got {name!r}.")
    return name
