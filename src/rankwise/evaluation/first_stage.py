"""First stage for full collections: BM25 over the whole corpus (bm25s), cached on disk.

Re-ranker experiments re-rank the same candidates many times, so the BM25 run of a (corpus, queries, settings,
depth) is written once as a TREC run file under the cache folder and read back on later calls. The run is
always read back from that file, so a cached and a fresh call give the very same scores.

For re-ranking pools (a dataset with a given run) the first stage is that run, cut to ``depth``.

Example:
    >>> from rankwise.evaluation import load_dataset, first_stage_run   # doctest: +SKIP
    >>> run = first_stage_run(load_dataset("../shared/data/scifact"), depth=100)  # doctest: +SKIP
    >>> len(run["1"])                                                  # doctest: +SKIP
    100
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from rankwise.documents import document_text
from rankwise.errors import InvalidInputError, require
from rankwise.evaluation.loader import Dataset, Run, read_run, write_run


@dataclass(frozen=True)
class BM25Settings:
    """BM25 over the corpus. Defaults: Anserini's k1=0.9, b=0.4 (BEIR's BM25 baselines), English Snowball
    stemming, bm25s's English stop words, title + text."""

    k1: float = 0.9
    b: float = 0.4
    stemmer: str | None = "english"
    stopwords: str | None = "en"
    fields: tuple[str, ...] = ("title", "text")


def default_cache_dir() -> Path:
    """``$RANKWISE_CACHE/eval``, else ``$XDG_CACHE_HOME/rankwise/eval``, else ``~/.cache/rankwise/eval``."""
    if os.environ.get("RANKWISE_CACHE"):
        return Path(os.environ["RANKWISE_CACHE"]) / "eval"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rankwise" / "eval"


def _cache_key(dataset: Dataset, depth: int, settings: BM25Settings) -> str:
    corpus_file = (dataset.path / "corpus.jsonl").resolve()
    stat = corpus_file.stat()
    queries = hashlib.sha256(json.dumps(sorted(dataset.queries.items())).encode()).hexdigest()
    bm25s = require("bm25s", "retrieval", "BM25 first-stage retrieval")
    key = {
        "corpus": [str(corpus_file), stat.st_size, stat.st_mtime_ns],
        "queries": queries,
        "depth": depth,
        "settings": asdict(settings),
        "bm25s": getattr(bm25s, "__version__", "?"),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def bm25_corpus_run(dataset: Dataset, depth: int = 100, settings: BM25Settings = BM25Settings()) -> Run:
    """BM25 top-``depth`` over ``dataset.corpus`` for each of ``dataset.queries`` (uncached).

    Documents that share no term with the query (score 0) are not returned, as a BM25 engine would not return
    them. A query with no terms left after stop-wording gets an empty candidate list.
    """
    bm25s = require("bm25s", "retrieval", "BM25 first-stage retrieval")
    stemmer = None
    if settings.stemmer is not None:
        stemmer = require("Stemmer", "retrieval", "BM25 stemming (PyStemmer)").Stemmer(settings.stemmer)
    doc_ids = list(dataset.corpus)
    texts = [document_text(dataset.corpus[d], settings.fields) for d in doc_ids]

    def tokenize(items: list[str]) -> list[list[str]]:
        return bm25s.tokenize(
            items, stopwords=settings.stopwords or [], stemmer=stemmer, return_ids=False, show_progress=False
        )

    index = bm25s.BM25(k1=settings.k1, b=settings.b)
    index.index(tokenize(texts), show_progress=False)
    query_ids = list(dataset.queries)
    query_tokens = tokenize([dataset.queries[q] for q in query_ids])
    vocab = index.vocab_dict
    run: Run = {q: [] for q in query_ids}
    keep = [i for i, toks in enumerate(query_tokens) if any(t in vocab for t in toks)]
    if keep:
        k = min(depth, len(doc_ids))
        hits, scores = index.retrieve(
            [[t for t in query_tokens[i] if t in vocab] for i in keep], k=k, show_progress=False
        )
        for row, i in enumerate(keep):
            run[query_ids[i]] = [(doc_ids[int(h)], float(s)) for h, s in zip(hits[row], scores[row]) if s > 0]
    return run


def first_stage_run(
    dataset: Dataset,
    depth: int = 100,
    settings: BM25Settings = BM25Settings(),
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> Run:
    """The candidates to re-rank: the pool's run for pools, BM25 over the corpus (cached) for collections.

    Args:
        dataset: from :func:`~rankwise.evaluation.load_dataset`.
        depth: candidates per query (>= 1).
        settings: BM25 settings (collections only).
        cache_dir: where BM25 runs are kept (default :func:`default_cache_dir`).
        use_cache: False = always recompute (and do not write).
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise InvalidInputError(f"depth must be an int >= 1, got {depth!r}.")
    if dataset.pool is not None:
        return {q: dataset.pool.get(q, [])[:depth] for q in dataset.queries}
    if not use_cache:
        return bm25_corpus_run(dataset, depth, settings)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = (
        folder
        / "runs"
        / f"bm25-{dataset.name}-{dataset.split}-d{depth}-{_cache_key(dataset, depth, settings)}.run"
    )
    if not path.is_file():
        run = bm25_corpus_run(dataset, depth, settings)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        write_run(run, tmp, tag="bm25")
        os.replace(tmp, path)
    cached = read_run(path)
    return {q: cached.get(q, []) for q in dataset.queries}
