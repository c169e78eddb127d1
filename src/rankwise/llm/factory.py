"""One function that turns "which LLM" (a client, a GGUF path, a URL, a model name, or nothing) into a client.

Example:
    >>> from rankwise.llm import make_client
    >>> make_client("http://127.0.0.1:9/v1", model="m").base_url
    'http://127.0.0.1:9/v1'
"""

from __future__ import annotations

import os
from typing import Any

from rankwise.errors import InvalidInputError
from rankwise.llm.base import ChatClient


def make_client(spec: ChatClient | str | os.PathLike[str] | None = None, **options: Any) -> ChatClient:
    """Build a chat client.

    Args:
        spec: ``None`` -> the bundled SmolLM2 GGUF via llama.cpp; a ``.gguf`` path ->
        :class:`LlamaCppChatClient`;
            an ``http(s)://`` URL -> :class:`OpenAIChatClient` with that ``base_url``; any other string -> an
            :class:`OpenAIChatClient` for that model name (``base_url`` from ``options`` or
            ``OPENAI_BASE_URL``);
            a :class:`ChatClient` -> returned as is (``options`` must then be empty).
        options: constructor arguments of the chosen client (``base_url``, ``api_key``, ``cache``,
        ``n_ctx``...).
    """
    if isinstance(spec, ChatClient):
        if options:
            raise InvalidInputError(
                f"got a ready client ({spec!r}) and client options {sorted(options)}; configure the client itself."
            )
        return spec
    options = {k: v for k, v in options.items() if v is not None}
    if spec is None:
        if "base_url" in options or "model" in options:
            from rankwise.llm.openai import OpenAIChatClient

            return OpenAIChatClient(**options)
        from rankwise.llm.llamacpp import LlamaCppChatClient

        return LlamaCppChatClient(**options)
    if not isinstance(spec, (str, os.PathLike)):
        raise InvalidInputError(
            f"LLM must be a ChatClient, a .gguf path, an http(s) URL or a model name, got {type(spec).__name__}."
        )
    text = os.fspath(spec)
    if text.startswith(("http://", "https://")):
        from rankwise.llm.openai import OpenAIChatClient

        return OpenAIChatClient(base_url=text, **options)
    if text.lower().endswith(".gguf") or os.path.isfile(text):
        from rankwise.llm.llamacpp import LlamaCppChatClient

        return LlamaCppChatClient(model_path=text, **options)
    from rankwise.llm.openai import OpenAIChatClient

    return OpenAIChatClient(model=text, **options)
