"""``rankwise index DOCS --out DIR``: split documents into passages and build (or extend) a BM25 + dense index."""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext
from pathlib import Path

from rankwise.cli._args import non_negative_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("docs", metavar="DOCS", help="a .jsonl / .json file, a .txt / .md file, or a folder of them")
    p.add_argument("--out", "-o", required=True, metavar="DIR", help="the index folder to write")
    p.add_argument("--add", action="store_true", help="add DOCS to the existing index in DIR (no rebuild)")
    p.add_argument("--passage-words", type=non_negative_int, default=160, help="words per passage (default 160; 0 = whole docs)")
    p.add_argument("--overlap", type=non_negative_int, default=32, help="words shared by consecutive passages (default 32)")
    p.add_argument("--no-dense", action="store_true", help="BM25 only (no embedding model, fast)")
    p.add_argument("--no-bm25", action="store_true", help="dense only")
    p.add_argument("--embedding-model", default=None,
                   help="sentence-transformers model name or folder (default: bundled all-MiniLM-L6-v2, offline)")
    p.add_argument("--text-field", default="text", help="JSON key of the text (default: text)")
    p.add_argument("--title-field", default="title", help="JSON key of the title (default: title)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress on standard error (default: a bar on a terminal, else a line every 10 s)")


def _stage(stage: str) -> tuple[str, str] | None:
    """How ``rankwise index`` shows a stage: embedding is the long one; BM25 reports only its end."""
    return ("embedding passages", "passage") if stage == "dense" else None


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def run(args: argparse.Namespace) -> int:
    from rankwise._hub import hub_errors
    from rankwise.documents import read_corpus
    from rankwise.errors import InvalidInputError
    from rankwise.progress import StagedProgress
    from rankwise.retrieval import DenseIndex, Index, PassageSplitter

    if args.no_dense and args.no_bm25:
        raise InvalidInputError("--no-dense and --no-bm25 leave nothing to index; drop one of them.")
    started = time.perf_counter()
    docs = read_corpus(args.docs, text_field=args.text_field, title_field=args.title_field)
    progress = StagedProgress(_stage, enabled=not args.no_progress, prefix="rankwise index")
    # a hub embedding model that cannot be reached: the same one-line error as a re-ranker's
    loading = hub_errors(args.embedding_model, "an embedding model") if args.embedding_model else nullcontext()
    try:
        with loading:
            if args.add:
                index = Index.load(args.out)
                added = index.add(docs, progress=progress)
                action = f"added {len(docs)} documents ({added} passages) to"
            else:
                splitter = PassageSplitter(max_words=args.passage_words or None, overlap=args.overlap)
                dense = False if args.no_dense else DenseIndex(model=args.embedding_model)
                index = Index.build(docs, splitter=splitter, bm25=not args.no_bm25, dense=dense, progress=progress)
                action = "built"
    finally:
        progress.close()
    folder = index.save(args.out)
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in index.timings.items() if v)
    print(f"{action} {folder}: {len(index.doc_ids)} documents, {len(index)} passages, "
          f"{_size(folder) / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s ({timings})")
    if index.dense is not None:
        print(f"dense: {index.dense.model} ({index.dense.dim}-d vectors)")
    return 0
