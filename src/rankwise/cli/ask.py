"""``rankwise ask DIR "question"``: retrieve, re-rank, and answer with an LLM that cites the passages.

The answer streams to standard output as it is generated, then the sources (the numbered context; the cited ones
marked) and the time each stage took. The LLM is the bundled SmolLM2-135M GGUF through llama.cpp by default (offline);
``--llm-base-url`` / ``--llm-model`` (or ``OPENAI_BASE_URL`` / ``RANKWISE_LLM_MODEL``) use any OpenAI-compatible
server instead (OpenAI, vLLM, Ollama, llama.cpp's server).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from rankwise.cli._args import positive_int
from rankwise.cli._io import json_line, write
from rankwise.cli.search import add_retrieval_arguments, build_reranker, load_models  # noqa: F401 - re-exported


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_retrieval_arguments(p)
    p.add_argument("--top-k", type=positive_int, default=30, help="passages retrieved and re-ranked (default 30)")
    p.add_argument("--top-n", type=positive_int, default=5, help="passages given to the LLM at most (default 5)")
    p.add_argument("--context-tokens", type=positive_int, default=1500, help="token budget of the passages (default 1500)")
    p.add_argument("--merge", choices=("merge", "dedupe", "none"), default="merge",
                   help="passages of one document: merge them (default), keep the best, or keep all")
    p.add_argument("--rerank", default="default", metavar="PRESET",
                   help="re-ranker preset or model folder (default: 'default'); 'none' skips re-ranking")
    llm = p.add_argument_group("LLM (default: bundled SmolLM2-135M GGUF, offline)")
    llm.add_argument("--llm-base-url", default=None, help="OpenAI-compatible API root (env OPENAI_BASE_URL)")
    llm.add_argument("--llm-model", default=None, help="model name at that server (env RANKWISE_LLM_MODEL)")
    llm.add_argument("--llm-api-key", default=None, help="API key (env OPENAI_API_KEY)")
    llm.add_argument("--llm-timeout", type=float, default=60.0, help="seconds per LLM request attempt (default 60)")
    llm.add_argument("--gguf", default=None, metavar="PATH", help="a local GGUF model run by llama.cpp")
    llm.add_argument("--max-tokens", type=positive_int, default=256, help="answer length limit in tokens (default 256)")
    llm.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default 0: greedy)")
    p.add_argument("--format", "-f", choices=("text", "json"), default="text",
                   help="text (streamed answer, sources, timings) or json (everything, at the end)")


def make_generator(args: argparse.Namespace) -> Any:
    from rankwise.rag.generation import Generator

    options: dict[str, Any] = {"max_tokens": args.max_tokens, "temperature": args.temperature}
    remote = args.llm_base_url or args.llm_model or os.environ.get("OPENAI_BASE_URL")
    if args.gguf and remote:
        from rankwise.errors import InvalidInputError

        raise InvalidInputError("give either --gguf (local model) or --llm-base-url/--llm-model (server), not both.")
    if args.gguf:
        return Generator(args.gguf, **options)
    if remote:
        from rankwise.llm.openai import OpenAIChatClient

        client = OpenAIChatClient(
            model=args.llm_model, base_url=args.llm_base_url, api_key=args.llm_api_key, timeout=args.llm_timeout,
        )
        return Generator(client, **options)
    return Generator(None, **options)


def print_sources(result: Any, out: Any = None, load_seconds: float | None = None) -> None:
    """The numbered sources (cited ones marked with ``*``) and the time of each stage."""
    out = out or sys.stdout
    cited = {c.number for c in result.citations}
    print("\nSources:", file=out)
    for c in result.passages:
        mark = "*" if c.number in cited else " "
        title = f" {' '.join(c.title.split())[:60]}" if c.title else ""
        scores = " ".join(f"{k}={v:.3f}" for k, v in c.scores.items())
        print(f"{mark}[{c.number}] {c.doc_id} ({', '.join(c.parts)}){title}  {scores}", file=out)
    if result.invalid_citations:
        print(f"  (the answer cites passages that do not exist: {sorted(set(result.invalid_citations))})", file=out)
    if result.passages and not result.citations:
        print("  (the answer cites no passage)", file=out)
    stages = " · ".join(f"{k} {v:.2f} s" for k, v in result.timings.items())
    loading = f" (loading the index and models before: {load_seconds:.2f} s)" if load_seconds is not None else ""
    print(f"\nTimings: {stages}{loading}", file=out)


def run(args: argparse.Namespace) -> int:
    from rankwise.rag.pipeline import Pipeline

    _index, retriever, reranker, load_seconds = load_models(args)
    generator = make_generator(args)
    pipeline = Pipeline(
        retriever, reranker, generator, top_k=args.top_k, top_n=args.top_n, context_tokens=args.context_tokens,
        merge=args.merge,
    )
    if args.format == "json":
        data = {**pipeline.run(args.query).to_dict(), "load_seconds": load_seconds}  # loading is not a stage
        write(json_line(data, indent=2))
        return 0

    def show(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    result = pipeline.run(args.query, on_token=show)
    print()
    print_sources(result, load_seconds=load_seconds)
    return 0
