"""The LTR section of benchmarks/learning.py: LambdaMART over re-ranker scores + text features, per collection.

Protocols (never a test query in training or early stopping):

* scifact: train on qrels/train, early-stop on a seeded query-grouped 20% of train, test on qrels/test;
* nfcorpus: train on qrels/train, early-stop on qrels/dev, test on qrels/test;
* cranfield, medline, cisi, vaswani (one query set each): 5-fold cross-validation by query (seeded); each fold
  trains on 4/5 (early-stopping on a query-grouped 20% of those) and scores the held-out fifth; nDCG@10 is the
  mean over all queries of the pooled held-out folds.

Candidates: BM25 top-100 (``rankwise.evaluation.first_stage_run``, cached). Members: first-stage-score, bm25,
minilm-bi-encoder (+ ``extra_members[dataset]``), plus the text features, and with ``history=True`` the
judgment-history features (built from each fit's training queries only; a training query leaves its own judgments
out). Each member's scores are cached per
(dataset, split, member) under ``benchmarks/.cache/ltr`` and the bi-encoder reads the evaluation's embedding cache
(``benchmarks/.cache/embeddings``), so a rerun only trains. Per dataset the result holds LTR's nDCG@10, each member
alone, ``hybrid`` (z-score first-stage 1 : bi-encoder 2.5, from the same cached scores), training seconds (fit;
member scoring is reported separately, 0 when cached), scoring docs/s of the saved model loaded fresh (members
cold, no caches) on a few test queries, and the gain importances.

With a cross-encoder member, training and dev splits are capped at a seeded random 200 queries each (it scores every
candidate); over the offline members alone (``max_train_queries=None``) every query is used. Test splits are whole.

``quick=True``: the first 40 queries per split, 30 candidates, 3 folds, 100 rounds -- proves it runs, not a figure.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "benchmarks" / ".cache"
MEMBERS: tuple[str, ...] = ("first-stage-score", "bm25", "minilm-bi-encoder")
HYBRID = (("first-stage-score", 1.0), ("minilm-bi-encoder", 2.5))  # the `hybrid` preset
PROTOCOLS: dict[str, tuple[str, ...]] = {  # (train split, dev split or "", test split) or ("cv", split)
    "scifact": ("train", "", "test"),
    "nfcorpus": ("train", "dev", "test"),
    "cranfield": ("cv", "test"),
    "medline": ("cv", "test"),
    "cisi": ("cv", "test"),
    "vaswani": ("cv", "test"),
}
SEED = 0


@dataclass
class Split:
    """One split's candidates, labels and cached member scores (all judged queries, none dropped)."""

    name: str
    dataset: Any
    queries: list[str]
    docs: dict[str, list[Any]]
    labels: dict[str, np.ndarray]
    columns: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    scoring_seconds: float = 0.0


def _settings(quick: bool) -> dict[str, Any]:
    # train/dev splits are capped at a seeded random 200 queries: a cross-encoder member scores every candidate of
    # every query, and nfcorpus/train (2,590 queries x 100) alone would take hours on 2 CPU cores
    return {"depth": 30 if quick else 100, "max_queries": 40 if quick else None,
            "max_train_queries": 40 if quick else 200, "folds": 3 if quick else 5,
            "num_boost_round": 100 if quick else 1000, "early_stopping": 50, "valid_fraction": 0.2}


def load_split(name: str, split: str, members: Sequence[tuple[str, Any]], settings: Mapping[str, Any],
               training: bool = False) -> Split:
    from rankwise.evaluation import candidate_documents, first_stage_run, load_dataset

    dataset = load_dataset(DATA / name, split, candidates="bm25")
    queries = list(dataset.queries)[: settings["max_queries"]]
    cap = settings["max_train_queries"] if training else None
    if cap is not None and len(queries) > cap:  # a seeded random subset, kept in file order
        keep = set(np.random.default_rng(SEED).permutation(len(queries))[:cap].tolist())
        queries = [q for i, q in enumerate(queries) if i in keep]
    run = first_stage_run(dataset, settings["depth"], cache_dir=CACHE)
    docs = {q: candidate_documents(dataset, run[q]) for q in queries}
    labels = {q: np.array([max(int(dataset.qrels[q].get(d.id, 0)), 0) for d in docs[q]], dtype=np.int32)
              for q in queries}
    out = Split(f"{name}/{split}", dataset, queries, docs, labels)
    for label, member in members:
        out.columns[label] = _member_scores(out, label, member, settings["depth"])
    return out


def _member_scores(split: Split, label: str, member: Any, depth: int) -> dict[str, np.ndarray]:
    """``{query: scores}`` of one member, from ``.cache/ltr`` when stored for the same candidates."""
    ids_key = hashlib.sha1("|".join(f"{q}:{','.join(str(d.id) for d in split.docs[q])}"
                                    for q in split.queries).encode()).hexdigest()[:12]
    stem = f"{split.name.replace('/', '-')}-d{depth}-{hashlib.sha1(label.encode()).hexdigest()[:10]}"
    path = CACHE / "ltr" / f"{stem}-{ids_key}.npz"  # one file per query set: capped and whole splits coexist
    for stored_path in (path, CACHE / "ltr" / f"{stem}.npz"):  # the second: the layout before the query-set key
        if stored_path.is_file():
            with np.load(stored_path, allow_pickle=False) as stored:
                if str(stored["ids_key"]) == ids_key:
                    return {q: stored[f"q_{i}"] for i, q in enumerate(split.queries)}
    from rankwise.train.lambdamart.api import prepare_embeddings
    from rankwise.train.lambdamart.data import Group

    groups = [Group(q, split.dataset.queries[q], tuple(split.docs[q]), split.labels[q]) for q in split.queries]
    prepare_embeddings([(label, member)], groups, split.dataset.name, CACHE)
    start = time.perf_counter()
    scores = {q: np.asarray(member.score(split.dataset.queries[q], split.docs[q]), dtype=np.float64) if split.docs[q]
              else np.zeros(0) for q in split.queries}
    split.scoring_seconds += time.perf_counter() - start
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, ids_key=np.array(ids_key), **{f"q_{i}": scores[q] for i, q in enumerate(split.queries)})
    return scores


def _blocks(extractor: Any, split: Split, queries: Sequence[str], train: bool) -> Any:
    """Training or early-stopping rows; each query leaves its own judgments out of the history features (a no-op for
    a query the history does not hold: validation and dev queries never are in it)."""
    from rankwise.train.lambdamart.fit import Matrix

    blocks = []
    for q in queries:
        if train and (len(split.docs[q]) < 2 or not split.labels[q].any()):
            continue  # teaches lambdarank nothing (as rankwise.train.ltr drops them)
        if not split.docs[q]:
            continue
        cols = [split.columns[label][q] for label, _ in extractor.members]
        rows = extractor.matrix(split.dataset.queries[q], split.docs[q], member_scores=cols, leave_out=q)
        blocks.append((rows, split.labels[q]))
    return Matrix.stack(blocks, len(extractor.names))


def _with_history(extractor: Any, split: Split, train_q: Sequence[str]) -> Any:
    """``extractor`` plus judgment-history features built from ``train_q``'s qrels (every relevant judgment), as
    ``rankwise.train.ltr(history=True)`` builds them (the bi-encoder member embeds the queries)."""
    from rankwise.train.lambdamart.features import FeatureExtractor
    from rankwise.train.lambdamart.history import HistoryFeatures, JudgmentHistory

    encoder = dict(extractor.members)["minilm-bi-encoder"]
    vectors = np.array([encoder.embed_query(split.dataset.queries[q]) for q in train_q], dtype=np.float32)
    judged = [{str(d): int(g) for d, g in split.dataset.qrels[q].items() if g > 0} for q in train_q]  # all qrels
    history = JudgmentHistory.build(list(train_q), vectors, judged)
    return FeatureExtractor(extractor.members, extractor.metadata_fields, extractor.text_features,
                            HistoryFeatures(history, encoder))


def _fit(extractor: Any, train: Split, train_q: Sequence[str], valid: Split, valid_q: Sequence[str],
         settings: Mapping[str, Any]) -> Any:
    from rankwise.train.lambdamart.fit import train_booster

    return train_booster(_blocks(extractor, train, train_q, True), _blocks(extractor, valid, valid_q, True),
                         extractor.names, num_boost_round=settings["num_boost_round"],
                         early_stopping=settings["early_stopping"], seed=SEED)


def _run(split: Split, queries: Sequence[str], scores: Mapping[str, np.ndarray]) -> dict[str, list[tuple[str, float]]]:
    return {q: [(str(d.id), float(s)) for d, s in zip(split.docs[q], scores[q])] for q in queries}


def _ndcg_per_query(split: Split, run: Mapping[str, Any], queries: Sequence[str]) -> dict[str, float]:
    from rankwise.evaluation import evaluate_run

    qrels = {q: split.dataset.qrels[q] for q in queries}
    return evaluate_run(run, qrels, ["ndcg@10"], split.dataset.relevance_threshold)["ndcg@10"]


def _predict(result: Any, extractor: Any, split: Split, queries: Sequence[str]) -> dict[str, np.ndarray]:
    out = {}
    for q in queries:
        if not split.docs[q]:
            out[q] = np.zeros(0)
            continue
        cols = [split.columns[label][q] for label, _ in extractor.members]
        out[q] = result.predict(extractor.matrix(split.dataset.queries[q], split.docs[q], member_scores=cols))
    return out


def _baselines(split: Split, queries: Sequence[str]) -> dict[str, float]:
    """nDCG@10 of each member alone and of `hybrid`, from the cached scores."""
    from rankwise.rerankers.fusion import fuse

    out = {}
    for label, cols in split.columns.items():
        out[label] = float(np.mean(list(_ndcg_per_query(split, _run(split, queries, cols), queries).values())))
    if all(label in split.columns for label, _ in HYBRID):
        fused = {q: fuse([split.columns[label][q] for label, _ in HYBRID], [w for _, w in HYBRID], "zscore")
                 if len(split.docs[q]) else np.zeros(0) for q in queries}
        out["hybrid"] = float(np.mean(list(_ndcg_per_query(split, _run(split, queries, fused), queries).values())))
    return out


def _docs_per_second(result: Any, extractor: Any, specs: Sequence[Any], split: Split, quick: bool) -> float:
    """The saved model, loaded fresh (cold members, no caches), scoring the first few test queries."""
    import rankwise
    from rankwise.train.lambdamart.api import member_spec
    from rankwise.train.lambdamart.model import Manifest, save_model

    history = extractor.history.history if extractor.history is not None else None
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Manifest(tuple(specs), (), True, tuple(extractor.names), result.params, result.best_iteration,
                            prior=result.prior, trees=result.trees,
                            history=None if history is None else {"encoder": member_spec("minilm-bi-encoder").to_dict(),
                                                                  **history.summary()})
        save_model(tmp, manifest, result.booster, history)
        model = rankwise.load(tmp)
        model.score("warm up", [{"text": "loads the models", "first_stage_score": 1.0}])  # load time is not scoring
        sample = [q for q in split.queries if split.docs[q]][: 2 if quick else 5]
        start = time.perf_counter()
        n = sum(len(model.score(split.dataset.queries[q], split.docs[q])) for q in sample)
        return round(n / max(time.perf_counter() - start, 1e-9), 1)


def _measure_one(name: str, extra: Sequence[str], settings: Mapping[str, Any], quick: bool) -> dict[str, Any]:
    from rankwise.train.lambdamart.api import build_members, member_spec
    from rankwise.train.lambdamart.features import FeatureExtractor

    specs = [member_spec(m) for m in (*MEMBERS, *extra)]
    members = build_members(specs)
    extractor = FeatureExtractor(members, (), True)
    protocol = PROTOCOLS[name]
    if protocol[0] == "cv":
        return _cross_validate(name, protocol[1], members, specs, extractor, settings, quick)
    train = load_split(name, protocol[0], members, settings, training=True)
    test = load_split(name, protocol[2], members, settings)
    if protocol[1]:
        valid = load_split(name, protocol[1], members, settings, training=True)
        train_q, valid_q = train.queries, valid.queries
    else:
        valid, (train_q, valid_q) = train, _holdout(train.queries, settings["valid_fraction"], SEED)
    if settings["history"]:
        extractor = _with_history(extractor, train, train_q)
    result = _fit(extractor, train, train_q, valid, valid_q, settings)
    per_query = _ndcg_per_query(test, _run(test, test.queries, _predict(result, extractor, test, test.queries)),
                                test.queries)
    return _summary(float(np.mean(list(per_query.values()))), _baselines(test, test.queries), [result],
                    train.scoring_seconds + valid.scoring_seconds,
                    _docs_per_second(result, extractor, specs, test, quick),
                    {"protocol": f"train {protocol[0]}, early stop on {protocol[1] or '20% of train'}, test "
                     f"{protocol[2]}", "train_queries": len(train_q), "test_queries": len(test.queries)})


def _holdout(queries: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    order = np.random.default_rng(seed).permutation(len(queries))
    held = {queries[i] for i in order[: round(fraction * len(queries))]}
    return [q for q in queries if q not in held], [q for q in queries if q in held]


def _cross_validate(name: str, split_name: str, members: Any, specs: Any, extractor: Any,
                    settings: Mapping[str, Any], quick: bool) -> dict[str, Any]:
    split = load_split(name, split_name, members, settings)
    k = settings["folds"]
    order = np.random.default_rng(SEED).permutation(len(split.queries))
    folds = [[split.queries[i] for i in order[f::k]] for f in range(k)]
    pooled: dict[str, float] = {}
    results, extractors = [], []
    for f, held in enumerate(folds):
        rest = [q for q in split.queries if q not in set(held)]
        train_q, valid_q = _holdout(rest, settings["valid_fraction"], SEED + f)
        fold_extractor = _with_history(extractor, split, train_q) if settings["history"] else extractor
        result = _fit(fold_extractor, split, train_q, split, valid_q, settings)
        results.append(result)
        extractors.append(fold_extractor)
        pooled.update(_ndcg_per_query(split, _run(split, held, _predict(result, fold_extractor, split, held)), held))
    return _summary(float(np.mean(list(pooled.values()))), _baselines(split, split.queries), results,
                    split.scoring_seconds, _docs_per_second(results[0], extractors[0], specs, split, quick),
                    {"protocol": f"{k}-fold cross-validation by query on {split_name} (seed {SEED})",
                     "queries": len(split.queries)})


def _summary(ltr: float, baselines: dict[str, float], results: Sequence[Any], member_seconds: float,
             docs_per_second: float, protocol: dict[str, Any]) -> dict[str, Any]:
    singles = {k: v for k, v in baselines.items() if k != "hybrid"}
    best_single = max(singles, key=singles.get) if singles else None
    return {
        **protocol,
        "ndcg@10": {"ltr": round(ltr, 4), **{k: round(v, 4) for k, v in baselines.items()}},
        "ltr_minus_hybrid": round(ltr - baselines["hybrid"], 4) if "hybrid" in baselines else None,
        "ltr_minus_best_single": round(ltr - singles[best_single], 4) if best_single else None,
        "best_single": best_single,
        "fit_seconds": round(sum(r.report["fit_seconds"] for r in results), 2),
        "member_scoring_seconds": round(member_seconds, 2),
        "best_iterations": [r.best_iteration for r in results],
        "priors": [r.prior for r in results],
        "trees_kept": [r.trees for r in results],
        "scoring_docs_per_second": docs_per_second,
        "feature_importance_gain": results[0].report["feature_importance_gain"],
    }


CAPPED = object()  # max_train_queries left at the settings' cap


def measure_ltr(datasets: Sequence[str] | None = None, extra_members: Mapping[str, list[str]] | None = None,
                quick: bool = False, max_train_queries: Any = CAPPED, history: bool = False) -> dict[str, Any]:
    """LTR vs each member alone and vs ``hybrid`` on ``datasets`` (default: all six); see the module docs.
    ``max_train_queries``: None trains on every training query (cheap members only); ``history``: with the
    judgment-history features (``rankwise train ltr --history``) built from each fit's training queries."""
    datasets = list(datasets) if datasets is not None else list(PROTOCOLS)
    unknown = [d for d in datasets if d not in PROTOCOLS]
    if unknown:
        raise ValueError(f"no LTR protocol for {unknown}; known: {', '.join(PROTOCOLS)}.")
    settings = {**_settings(quick), "history": history}
    if max_train_queries is not CAPPED:
        settings["max_train_queries"] = max_train_queries
    out: dict[str, Any] = {"settings": {**settings, "quick": quick, "members": list(MEMBERS),
                                        "extra_members": dict(extra_members or {}), "text_features": True,
                                        "seed": SEED}, "datasets": {}}
    for name in datasets:
        out["datasets"][name] = _measure_one(name, (extra_members or {}).get(name, []), settings, quick)
    return out


if __name__ == "__main__":  # a quick look: python benchmarks/_learning_ltr.py (the lead's learning.py runs it all)
    import json
    import sys

    sys.path.insert(0, str(ROOT / "src"))
    print(json.dumps(measure_ltr(sys.argv[1:] or ["scifact", "cisi"], quick=True), indent=2))
