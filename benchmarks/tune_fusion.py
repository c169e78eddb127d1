"""Tune the offline default (a lexical score fused with the bundled bi-encoder) on TRAIN/DEV judgements only.

Tuning sets: SciFact train (809 queries) and NFCorpus dev (324 queries) choose the configuration; NFCorpus
train (2,590 queries) is a held-out check of that choice. No test qrels are read. TREC DL has no train/dev
split here, so nothing is tuned on MS MARCO-like data.

Each member's scores are computed once by the real re-rankers (BM25Reranker over the candidates, the
first-stage BM25 score carried in metadata, BiEncoderReranker with embeddings cached on disk) and cached under
benchmarks/.cache/scores; configurations are then fused with rankwise.rerankers.fusion.fuse -- the very
function FusionReranker calls -- and the best few are re-checked with pytrec_eval through rankwise.evaluation.

    python benchmarks/tune_fusion.py                         # the grid, bi-encoder as shipped
    python benchmarks/tune_fusion.py --variant-check len512  # 256 vs 512-token window on a subset

Writes benchmarks/results/fusion_tuning.json (or fusion_variant_<V>.json) and prints the top configurations.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
from _report import code_version, machine_info, write_report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rankwise.evaluation import candidate_documents, evaluate_run, first_stage_run, load_dataset  # noqa: E402
from rankwise.evaluation.embeddings import EmbeddingStore  # noqa: E402
from rankwise.rerankers.fusion import fuse  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "benchmarks" / ".cache"
SELECT = [("scifact", "train"), ("nfcorpus", "dev")]  # choose on these
CHECK = [("nfcorpus", "train")]  # held-out check of the choice
VARIANTS = {  # bi-encoder input variants: rankwise.load("minilm-bi-encoder", **options)
    "default": {},
    "len512": {"max_length": 512},
    "text": {"fields": ["text"]},
}
WEIGHTS = [0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0]
DEPTHS = [10, 20, 30, 50, 100]
METHODS = ["zscore", "minmax", "rrf"]
LEXICAL = ["first-stage", "bm25", "first-stage+bm25"]


def member_scores(name: str, split: str, member: str, reranker_factory) -> dict[str, list[float]]:
    """Scores of one member for every query's candidates (first-stage order), cached on disk."""
    path = CACHE / "scores" / f"{name}-{split}-{member}.json"
    if path.is_file():
        return json.loads(path.read_text())
    data = load_dataset(DATA / name, split)
    run = first_stage_run(data, 100, cache_dir=CACHE)
    reranker = reranker_factory()
    if hasattr(reranker, "embed_documents"):
        from rankwise.documents import document_text

        texts = [document_text(data.corpus[d], reranker.fields) for r in run.values() for d, _ in r]
        EmbeddingStore(CACHE).prepare(reranker, texts, name)
    start = time.perf_counter()
    out = {
        q: reranker.score(data.queries[q], candidate_documents(data, r)) if r else [] for q, r in run.items()
    }
    print(f"  {name}/{split} {member}: {time.perf_counter() - start:.0f}s", file=sys.stderr, flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out))
    return out


def seed_long_window_store(name: str, split: str, max_queries: int | None, depth: int) -> None:
    """Fill the 512-token store cheaply: a document of <= 256 tokens embeds identically with a 256 or 512
    window (nothing is cut either way), so its 256-token vector is copied; only longer ones are embedded."""
    import rankwise
    from rankwise.documents import document_text
    from rankwise.evaluation.embeddings import _key

    data = load_dataset(DATA / name, split)
    run = first_stage_run(data, 100, cache_dir=CACHE)
    queries = list(run)[:max_queries]
    texts = list(
        dict.fromkeys(
            document_text(data.corpus[d], ("title", "text")) for q in queries for d, _ in run[q][:depth]
        )
    )
    short_bi, long_bi = rankwise.load("minilm-bi-encoder"), rankwise.load("minilm-bi-encoder", max_length=512)
    store = EmbeddingStore(CACHE)
    lengths = [len(ids) for ids in long_bi.model.tokenizer(texts, add_special_tokens=True)["input_ids"]]
    short = [t for t, n in zip(texts, lengths) if n <= 256]
    store.prepare(short_bi, short, name)  # from disk
    vectors = short_bi.embed_documents(short)
    store._write(store._path(long_bi, name), {_key(t): v for t, v in zip(short, vectors)})  # noqa: SLF001
    long_texts = [t for t, n in zip(texts, lengths) if n > 256]
    print(
        f"  {name}/{split}: {len(short)} short copied, {len(long_texts)} long to embed at 512",
        file=sys.stderr,
    )
    store.prepare(long_bi, long_texts, name, lambda d, t: print(f"    {d}/{t}", file=sys.stderr, flush=True))


class TuningSet:
    """Candidates, member scores and gains of one (dataset, split), ready for fast nDCG@10."""

    def __init__(self, name: str, split: str, variants: list[str]) -> None:
        import rankwise

        self.name, self.split = name, split
        data = load_dataset(DATA / name, split)
        self.qrels = data.qrels
        self.run = first_stage_run(data, 100, cache_dir=CACHE)
        self.queries = list(self.run)
        self.members = {
            "first-stage": {q: [s for _, s in r] for q, r in self.run.items()},
            "bm25": member_scores(name, split, "bm25", lambda: rankwise.load("bm25")),
        }
        for v in variants:
            self.members[f"bi:{v}"] = member_scores(
                name, split, f"bi-{v}", lambda v=v: rankwise.load("minilm-bi-encoder", **VARIANTS[v])
            )
        self.gains = {
            q: np.array([max(self.qrels[q].get(d, 0), 0) for d, _ in r], dtype=float)
            for q, r in self.run.items()
        }
        self.idcg = {}
        for q in self.queries:
            ideal = sorted((g for g in self.qrels[q].values() if g > 0), reverse=True)[:10]
            self.idcg[q] = sum(g / np.log2(i + 2) for i, g in enumerate(ideal))
        self.discount = 1.0 / np.log2(np.arange(2, 12))

    def fused(self, q: str, config: dict) -> np.ndarray:
        depth = config["depth"]
        lexical = config["lexical"].split("+")
        names = lexical + [f"bi:{config['variant']}"]
        weights = [1.0 / len(lexical)] * len(lexical) + [config["w_bi"]]
        scores = [np.asarray(self.members[m][q][:depth], dtype=float) for m in names]
        return fuse(scores, weights, config["method"], 60.0)

    def ndcg10(self, config: dict) -> float:
        total = 0.0
        for q in self.queries:
            if not self.run[q] or self.idcg[q] == 0:
                continue
            s = self.fused(q, config)
            order = np.lexsort((np.arange(len(s)), -s))[:10]
            total += float(self.gains[q][order] @ self.discount[: len(order)]) / self.idcg[q]
        return total / len(self.queries)

    def pytrec_ndcg10(self, config: dict) -> float:
        run = {}
        for q in self.queries:
            s = self.fused(q, config) if self.run[q] else []
            run[q] = [(d, float(x)) for (d, _), x in zip(self.run[q][: config["depth"]], s)]
        per_query = evaluate_run(run, self.qrels, ["ndcg@10"])["ndcg@10"]
        return sum(per_query.values()) / len(per_query)

    def single(self, member: str) -> float:
        run = {
            q: [(d, float(x)) for (d, _), x in zip(self.run[q], self.members[member][q])]
            for q in self.queries
        }
        per_query = evaluate_run(run, self.qrels, ["ndcg@10"])["ndcg@10"]
        return sum(per_query.values()) / len(per_query)


def variant_check(variant: str, max_queries: int, depth: int, out: Path) -> dict:
    """The bi-encoder as shipped vs ``variant`` on the first ``max_queries`` queries of each selection set,
    their top ``depth``: alone and in the chosen fusion family (z-score with the first-stage score, w_bi
    1..3).
    A cheaper design than the full grid (embedding 512-token windows costs ~2x and every abstract is long)."""
    import rankwise
    from rankwise.documents import document_text

    results: dict = {"variant": variant, "max_queries": max_queries, "depth": depth, "sets": {}}
    for name, split in SELECT:
        if variant == "len512":
            seed_long_window_store(name, split, max_queries, depth)
        data = load_dataset(DATA / name, split)
        run = first_stage_run(data, 100, cache_dir=CACHE)
        queries = list(run)[:max_queries]
        sub = {q: run[q][:depth] for q in queries}
        qrels = {q: data.qrels[q] for q in queries}
        scores = {}
        for label, options in (("default", {}), (variant, VARIANTS[variant])):
            bi = rankwise.load("minilm-bi-encoder", **options)
            texts = [document_text(data.corpus[d], bi.fields) for r in sub.values() for d, _ in r]
            EmbeddingStore(CACHE).prepare(bi, texts, name)
            scores[label] = {
                q: bi.score(data.queries[q], candidate_documents(data, r)) for q, r in sub.items()
            }
        row = {}
        for label, per_q in scores.items():
            for w in (None, 1.0, 1.5, 2.0, 2.5, 3.0):
                fused = {
                    q: (
                        per_q[q]
                        if w is None
                        else fuse([[s for _, s in sub[q]], per_q[q]], [1.0, w], "zscore").tolist()
                    )
                    for q in queries
                }
                ranked = {q: [(d, float(x)) for (d, _), x in zip(sub[q], fused[q])] for q in queries}
                value = evaluate_run(ranked, qrels, ["ndcg@10"])["ndcg@10"]
                row[f"{label} {'alone' if w is None else f'zscore first-stage + {w}x bi'}"] = sum(
                    value.values()
                ) / len(value)
        results["sets"][f"{name}/{split}"] = row
        print(json.dumps({f"{name}/{split}": row}, indent=1), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default="default", help="bi-encoder variants: " + ",".join(VARIANTS))
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a shared 2-core machine 2 threads thrash)",
    )
    parser.add_argument(
        "--variant-check",
        default=None,
        metavar="VARIANT",
        help="instead of the grid: compare the shipped bi-encoder with VARIANT (len512, text) on "
        "a subset (--check-queries, --check-depth); writes results/fusion_variant_<V>.json",
    )
    parser.add_argument("--check-queries", type=int, default=150)
    parser.add_argument("--check-depth", type=int, default=30)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fusion_tuning.json"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.variant_check:
        out = ROOT / "benchmarks" / "results" / f"fusion_variant_{args.variant_check}.json"
        variant_check(args.variant_check, args.check_queries, args.check_depth, out)
        return 0
    variants = [v for v in args.variants.split(",") if v]
    sets = {f"{n}/{s}": TuningSet(n, s, variants) for n, s in SELECT + CHECK}
    select_keys = [f"{n}/{s}" for n, s in SELECT]
    singles = {k: {m: ts.single(m) for m in ts.members} for k, ts in sets.items()}
    rows = []
    for lexical, method, w_bi, depth, variant in itertools.product(
        LEXICAL, METHODS, WEIGHTS, DEPTHS, variants
    ):
        config = {"lexical": lexical, "method": method, "w_bi": w_bi, "depth": depth, "variant": variant}
        scores = {k: ts.ndcg10(config) for k, ts in sets.items()}
        rows.append({**config, "ndcg@10": scores, "select": float(np.mean([scores[k] for k in select_keys]))})
    rows.sort(key=lambda r: -r["select"])
    for row in rows[:10]:  # re-check the best with trec_eval's own code
        row["ndcg@10_pytrec_eval"] = {k: sets[k].pytrec_ndcg10(row) for k in sets}
    best_by_lexical = {lex: next(r for r in rows if r["lexical"] == lex) for lex in LEXICAL}
    result = {
        "select_on": select_keys,
        "best_by_lexical": best_by_lexical,
        "check_on": [f"{n}/{s}" for n, s in CHECK],
        "single_members": singles,
        "best": rows[0],
        "top": rows[:25],
        "all": rows,
        "machine": machine_info("cpu"),
        "code": code_version(),
    }
    write_report(result, args.out, indent=1, show={"single_members": singles, "top": rows[:10]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
