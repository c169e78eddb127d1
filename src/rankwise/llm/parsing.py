"""Turn OpenAI-style JSON (chat completions, stream chunks, logprobs) into :class:`ChatResult` values.

Shared by the HTTP client and the local llama.cpp client (llama-cpp-python returns the same shapes). Anything
that is not a chat completion raises :class:`~rankwise.llm.LLMResponseError` naming the URL and what was
missing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rankwise.llm.base import ChatResult, LLMResponseError, TokenLogprob


def _preview(data: Any) -> str:
    text = repr(data)
    return text if len(text) <= 160 else text[:157] + "..."


def parse_logprobs(raw: Any) -> list[TokenLogprob] | None:
    """Read logprobs in the chat format (``{"content": [{token, logprob, top_logprobs: [...]}]}``) or the
    completions format (``{"tokens", "token_logprobs", "top_logprobs": [{token: logprob}]}``); None if absent.
    """
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise TypeError(f"logprobs is a {type(raw).__name__}, not an object")
    content = raw.get("content")
    if isinstance(content, list):
        out = []
        for item in content:
            top = {}
            for alt in item.get("top_logprobs") or []:
                top.setdefault(str(alt["token"]), _finite(alt["logprob"]))
            out.append(TokenLogprob(str(item["token"]), _finite(item["logprob"]), top))
        return out
    tokens = raw.get("tokens")
    if isinstance(tokens, list):
        lps = raw.get("token_logprobs") or [None] * len(tokens)
        tops = raw.get("top_logprobs") or [None] * len(tokens)
        return [
            TokenLogprob(str(t), _finite(lp), {str(k): _finite(v) for k, v in (top or {}).items()})
            for t, lp, top in zip(tokens, lps, tops)
        ]
    if content is None and not tokens:
        return None
    raise ValueError("logprobs has neither 'content' nor 'tokens'")


def _finite(value: Any) -> float:
    """A logprob as float; None or -inf (a token the server could not score) becomes a very small number."""
    if value is None:
        return -1e4
    v = float(value)
    return v if math.isfinite(v) else -1e4


def parse_chat_completion(data: Any, *, url: str, default_model: str = "") -> ChatResult:
    """A chat-completion response body -> :class:`ChatResult`; also accepts a text-completion body."""
    if isinstance(data, Mapping) and "error" in data and "choices" not in data:
        raise LLMResponseError(f"{url} returned an error instead of a completion: {_preview(data['error'])}.")
    try:
        choice = data["choices"][0]
        if "message" in choice:
            text = choice["message"].get("content") or ""
        else:
            text = choice["text"]
        if not isinstance(text, str):
            raise TypeError(f"content is a {type(text).__name__}")
        logprobs = parse_logprobs(choice.get("logprobs"))
        usage_raw = data.get("usage") or {}
        usage = {
            "prompt_tokens": int(usage_raw.get("prompt_tokens") or 0),
            "completion_tokens": int(usage_raw.get("completion_tokens") or 0),
        }
        model = str(data.get("model") or default_model)
        finish = choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise LLMResponseError(
            f"{url} answered with something that is not a chat completion ({type(exc).__name__}: {exc}): "
            f"{_preview(data)}; is base_url an OpenAI-compatible API root (usually ending in /v1)?"
        ) from exc
    return ChatResult(text=text, logprobs=logprobs, usage=usage, model=model, finish_reason=finish)


def parse_stream_chunk(chunk: Any, *, url: str) -> str:
    """The text delta of one streamed chunk ("" when the chunk carries none, e.g. the role or the final usage)."""
    try:
        choices = chunk.get("choices") or []
        if not choices:
            return ""
        choice = choices[0]
        if "delta" in choice:
            return choice["delta"].get("content") or ""
        return choice.get("text") or ""
    except (AttributeError, TypeError) as exc:
        raise LLMResponseError(
            f"{url} streamed a chunk that is not a completion delta: {_preview(chunk)}."
        ) from exc
