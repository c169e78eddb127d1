"""Request documents -> the texts a model scores: field selection (``rank_fields``) and per-request truncation.

Truncation happens here, on the text, never by changing the shared model: a cross-encoder's own tokenizer says
where token ``n`` ends (character offsets), so ``max_tokens_per_doc=200`` keeps exactly the first 200 tokens. Models
without a tokenizer (BM25, bi-encoders, fusion) are cut after ``n`` whitespace-separated words instead.

Example:
    >>> request_texts(["plain", {"title": "T", "text": "body"}], rank_fields=["title", "text"])
    ['plain', 'T\\nbody']
    >>> Truncator(None).cut(["one two three"], 2)
    (['one two'], 1)
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from rankwise.errors import InvalidInputError

_WORD = re.compile(r"\S+")


def _field_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def request_texts(documents: Sequence[str | dict[str, Any]], rank_fields: Sequence[str] | None) -> list[str]:
    """One text per document: a string as is; an object's ``text``, or its ``rank_fields`` joined by newlines."""
    texts: list[str] = []
    for i, doc in enumerate(documents):
        if isinstance(doc, str):
            texts.append(doc)
            continue
        if rank_fields:
            present = [f for f in rank_fields if doc.get(f) not in (None, "")]
            if not present and not any(f in doc for f in rank_fields):
                raise InvalidInputError(
                    f"documents[{i}] has none of the rank_fields {list(rank_fields)} (its keys: {sorted(doc)[:10]})."
                )
            texts.append("\n".join(_field_text(doc[f]) for f in present))
            continue
        text = doc.get("text")
        if not isinstance(text, str):
            what = "has no 'text' field" if text is None else f"has a 'text' that is a {type(text).__name__}"
            raise InvalidInputError(
                f"documents[{i}] {what} (keys: {sorted(doc)[:10]}); send {{'text': '...'}} or name the fields to "
                "rank with rank_fields."
            )
        texts.append(text)
    return texts


class Truncator:
    """Cuts texts to a token count with a re-ranker's tokenizer, or to a word count when it has none.

    Args:
        reranker: a served model; a cross-encoder's ``encoder.tokenizer`` (a ``tokenizers.Tokenizer``) is used.
    """

    def __init__(self, reranker: Any) -> None:
        self.encoder = getattr(reranker, "encoder", None)
        self.tokenizer = getattr(self.encoder, "tokenizer", None)

    @property
    def unit(self) -> str:
        return "tokens" if self.tokenizer is not None else "words"

    def needs_cut(self, texts: Sequence[str], max_tokens: int) -> bool:
        """Cheap check: no token covers less than one UTF-8 byte, so shorter texts never need a cut."""
        return any(len(t) > max_tokens and len(t.encode("utf-8")) > max_tokens for t in texts)

    def window(self, query: str) -> int | None:
        """Document tokens that fit next to ``query`` in one model input (None without a tokenizer)."""
        if self.tokenizer is None:
            return None
        encoder = self.encoder
        query_tokens = len(self.tokenizer.encode(query, add_special_tokens=False).ids)
        query_tokens = min(query_tokens, encoder.max_query_tokens)
        return max(1, encoder.max_length - encoder.template.n_special - query_tokens)

    def count_tokens(self, query: str, texts: Sequence[str]) -> int:
        """Tokens the model reads for ``texts``: per text, the query's tokens plus the text's (Jina's ``usage``).

        Special tokens and the overlap of long documents' passages are not counted; the query counts up to the
        encoder's query cap. A cross-encoder's document token ids come from its encoder's cache (filled when the
        texts were scored), so this is cheap. Without a tokenizer: whitespace-separated words.

        Example:
            >>> Truncator(None).count_tokens("two words", ["one", "three more words"])  # (2 + 1) + (2 + 3)
            8
        """
        if self.tokenizer is None:
            query_words = len(_WORD.findall(query))
            return sum(query_words + len(_WORD.findall(t)) for t in texts)
        query_tokens = len(self.tokenizer.encode(query, add_special_tokens=False).ids)
        query_tokens = min(query_tokens, self.encoder.max_query_tokens)
        ids = getattr(self.encoder, "document_ids", None)
        if callable(ids):
            lengths = [len(d) for d in ids(list(texts))]
        else:
            lengths = [len(e.ids) for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]
        return query_tokens * len(lengths) + sum(lengths)

    def cut(self, texts: Sequence[str], max_tokens: int, *, left: bool = False) -> tuple[list[str], int]:
        """``texts`` with each cut to ``max_tokens`` (kept from the end when ``left``), and how many were cut."""
        if max_tokens < 1:
            raise InvalidInputError(f"max_tokens must be >= 1, got {max_tokens}.")
        out = list(texts)
        long = [i for i, t in enumerate(texts) if len(t) > max_tokens and len(t.encode("utf-8")) > max_tokens]
        if not long:
            return out, 0
        cut = 0
        if self.tokenizer is not None:
            encodings = self.tokenizer.encode_batch([texts[i] for i in long], add_special_tokens=False)
            for i, enc in zip(long, encodings):
                offsets = enc.offsets
                if len(offsets) <= max_tokens:
                    continue
                text = texts[i]
                out[i] = text[offsets[-max_tokens][0] :] if left else text[: offsets[max_tokens - 1][1]]
                cut += 1
            return out, cut
        for i in long:
            words = list(_WORD.finditer(texts[i]))
            if len(words) <= max_tokens:
                continue
            text = texts[i]
            out[i] = text[words[-max_tokens].start() :] if left else text[: words[max_tokens - 1].end()]
            cut += 1
        return out, cut
