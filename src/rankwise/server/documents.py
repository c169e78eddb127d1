"""Request documents -> the texts a model scores: field selection (``rank_fields``) and per-request truncation.

The text of an object document is the library's own (:func:`rankwise.documents.document_text` over
:func:`~rankwise.documents.field_text`): the same input scores the same through ``Reranker.score`` and through the
server, bit for bit. Truncation happens here, on the text, never by changing the shared model: a cross-encoder's own
tokenizer says where token ``n`` ends (character offsets), so ``max_tokens_per_doc=200`` keeps exactly the first 200
tokens. Models without a tokenizer (BM25, bi-encoders, fusion) are cut after ``n`` whitespace-separated words instead.
Tokenizing is real work on long texts: the routes run :meth:`Truncator.fit` and :meth:`Truncator.count_tokens` in a
thread, never on the event loop.

Example:
    >>> request_texts(["plain", {"title": "T", "text": "body"}], rank_fields=["title", "text"])
    ['plain', 'T\\nbody']
    >>> Truncator(None).cut(["one two three"], 2)
    (['one two'], 1)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from rankwise.documents import document_text, field_text, model_text, to_document
from rankwise.errors import InvalidInputError
from rankwise.rerankers.base import Reranker, TokenWindow
from rankwise.types import Document

_WORD = re.compile(r"\S+")
_SURROGATE = re.compile("[\\ud800-\\udfff]")


def tokenizable(text: str) -> str:
    """``text`` with each lone UTF-16 surrogate replaced by U+FFFD, which a tokenizer can encode.

    One code point for one, so character offsets into the result are offsets into ``text``.

    Example:
        >>> tokenizable("a\\ud800b") == "a\\ufffdb"
        True
    """
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub("\ufffd", text)


def utf8_length(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (a lone surrogate counts its 3 bytes instead of failing).

    Example:
        >>> utf8_length("é"), utf8_length("\\ud800")
        (2, 3)
    """
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def _object_text(doc: dict[str, Any], fields: Sequence[str], position: int) -> str:
    """The library's text of an object document for ``fields``; the per-field rule where the library refuses the
    object (e.g. a non-string ``text`` that ``rank_fields`` does not read), so the server still ranks it."""
    try:
        return document_text(to_document(doc, position), fields)
    except InvalidInputError:
        parts = [field_text(doc[f]) for f in fields if doc.get(f) is not None and doc.get(f) != ""]
        return tokenizable("\n".join(parts))
    except RecursionError:  # a field nested thousands deep: json.dumps cannot write it
        raise InvalidInputError(
            f"documents[{position}] has a field nested too deeply to turn into text; flatten it, or leave it out "
            "of rank_fields."
        ) from None


def _has_any(doc: dict[str, Any], fields: Sequence[str]) -> bool:
    nested = doc.get("metadata")
    return any(f in doc or (isinstance(nested, Mapping) and f in nested) for f in fields)


def request_texts(documents: Sequence[str | dict[str, Any]], rank_fields: Sequence[str] | None) -> list[str]:
    """One text per document: a string as is; an object's ``text``, or its ``rank_fields`` joined by newlines.

    With ``rank_fields`` an object's text is ``document_text(to_document(doc), rank_fields)``, what
    ``Reranker.score`` reads for that object from a model built with ``fields=rank_fields``: values as
    :func:`~rankwise.documents.field_text` writes them (JSON for objects and lists), missing or empty fields
    skipped, a field also found in the object's ``metadata``.
    """
    texts: list[str] = []
    for i, doc in enumerate(documents):
        if isinstance(doc, str):
            texts.append(doc)
            continue
        if rank_fields:
            if not _has_any(doc, rank_fields):
                raise InvalidInputError(
                    f"documents[{i}] has none of the rank_fields {list(rank_fields)} (its keys: {sorted(doc)[:10]})."
                )
            texts.append(_object_text(doc, rank_fields, i))
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


def request_metadata(documents: Sequence[str | dict[str, Any]]) -> list[Mapping[str, Any]] | None:
    """Each object document's metadata as the library reads it (its other keys, and its ``metadata`` object's), for
    models that score by a field (``first-stage-score``, ``hybrid``); None when every document is a string."""
    if all(isinstance(doc, str) for doc in documents):
        return None
    out: list[Mapping[str, Any]] = []
    for i, doc in enumerate(documents):
        if isinstance(doc, str):
            out.append({})
            continue
        try:
            out.append(to_document(doc, i).metadata)
        except InvalidInputError:  # an object the library refuses: its plain keys, as far as they go
            out.append({k: v for k, v in doc.items() if k not in ("text", "id", "title", "metadata")})
    return out


def _field_sets(reranker: Any) -> Iterator[tuple[str, ...]]:
    """The ``fields`` of a model and, for a composite (fusion), of each of its :meth:`~rankwise.Reranker.members`
    (recursively)."""
    fields = getattr(reranker, "fields", None)
    if isinstance(fields, tuple) and fields and all(isinstance(f, str) for f in fields):
        yield fields
    members = reranker.members() if isinstance(reranker, Reranker) else ()
    for member in members:
        yield from _field_sets(member)


Carrier = Callable[[str, Mapping[str, Any]], "str | Document"]


def text_carrier(reranker: Any) -> Carrier:
    """How to hand the server's text (and the document's metadata) to a model that reads documents by ``fields``.

    ``Reranker.score`` reads each document's ``fields``: a plain string is ``Document(text=s)``, which a model built
    with ``fields=("name", "price")`` would read as empty. So the text goes in the one field every member reads
    first: ``text`` when they all read it (the default), else their common first field. The metadata goes along
    without the keys any member reads as text (the text already holds what the request chose), so a member that
    scores by a metadata field (``first-stage-score``) finds it. Where that Document would be ``Document(text=s)``
    the carrier returns ``s`` itself, which every model reads the same (and which costs nothing to build).

    Example:
        >>> class M: fields = ("name", "price")
        >>> text_carrier(M())("boots", {"price": 5, "first_stage_score": 1.5}).metadata
        {'first_stage_score': 1.5, 'name': 'boots'}
    """
    field_sets = list(_field_sets(reranker))
    reserved = {f for fields in field_sets for f in fields}
    firsts = {f[0] for f in field_sets}
    key = "text" if all("text" in f for f in field_sets) or len(firsts) != 1 else firsts.pop()

    def carry(text: str, metadata: Mapping[str, Any]) -> Document:
        kept = {k: v for k, v in metadata.items() if k not in reserved} if metadata else {}
        if key == "text":
            return Document(text=text, metadata=kept) if kept else text
        if key == "title":
            return Document(text="", title=text, metadata=kept)
        return Document(text="", metadata={**kept, key: text})

    return carry


class Truncator:
    """Cuts texts to a token count with a re-ranker's tokenizer, or to a word count when it has none.

    Args:
        reranker: a served model; its :attr:`~rankwise.Reranker.token_window` (a cross-encoder's tokenizer and
            window) is used when it has one. None: words.
    """

    def __init__(self, reranker: Reranker | None) -> None:
        self.token_window: TokenWindow | None = reranker.token_window if reranker is not None else None
        self.tokenizer = self.token_window.tokenizer if self.token_window is not None else None

    @property
    def unit(self) -> str:
        return "tokens" if self.tokenizer is not None else "words"

    def may_cut(self, texts: Sequence[str], max_tokens: int) -> bool:
        """O(number of texts): whether any text is long enough (in characters) that it might need a cut."""
        return any(len(t) > max_tokens for t in texts)

    def needs_cut(self, texts: Sequence[str], max_tokens: int) -> bool:
        """Cheap check: no token covers less than one UTF-8 byte, so shorter texts never need a cut."""
        return any(len(t) > max_tokens and utf8_length(t) > max_tokens for t in texts)

    def _query_tokens(self, query: str) -> int:
        """Tokens of ``query`` the model reads (lone surrogates encoded as U+FFFD, as the model does)."""
        assert self.tokenizer is not None and self.token_window is not None
        count = len(self.tokenizer.encode(tokenizable(query), add_special_tokens=False).ids)
        return min(count, self.token_window.max_query_tokens)

    def window(self, query: str) -> int | None:
        """Document tokens that fit next to ``query`` in one model input (None without a tokenizer)."""
        if self.token_window is None:
            return None
        window = self.token_window
        return max(1, window.max_length - window.n_special - self._query_tokens(query))

    def fit(
        self, query: str, texts: Sequence[str], max_tokens: int, *, left: bool = False, window: bool = False
    ) -> tuple[list[str], int]:
        """``texts`` cut to ``max_tokens`` (and, with ``window``, to what fits next to ``query`` in one model
        input), and how many were cut. All of a request's tokenizing in one call, to run in a thread."""
        if window and query.strip():
            fits = self.window(query)
            max_tokens = min(max_tokens, fits) if fits else max_tokens
        if not self.needs_cut(texts, max_tokens):
            return list(texts), 0
        return self.cut(texts, max_tokens, left=left)

    def count_tokens(self, query: str, texts: Sequence[str]) -> int:
        """Tokens the model reads for ``texts``: per text, the query's tokens plus the text's (Jina's ``usage``).

        Special tokens and the overlap of long documents' passages are not counted; the query counts up to the
        model's query cap. A cross-encoder's document token ids come from its own cache (``token_window.token_ids``,
        filled when the texts were scored), so this is cheap. Without a tokenizer: whitespace-separated words.

        Example:
            >>> Truncator(None).count_tokens("two words", ["one", "three more words"])  # (2 + 1) + (2 + 3)
            8
        """
        if self.token_window is None:
            query_words = len(_WORD.findall(query))
            return sum(query_words + len(_WORD.findall(t)) for t in texts)
        # model_text, as the model read them: the engine's cache keys, so the ids scored a moment ago are reused
        # (tokenizable() keeps a surrogate pair as two U+FFFD, a key the cache never saw)
        lengths = [len(ids) for ids in self.token_window.token_ids([model_text(t) for t in texts])]
        return self._query_tokens(query) * len(lengths) + sum(lengths)

    def cut(self, texts: Sequence[str], max_tokens: int, *, left: bool = False) -> tuple[list[str], int]:
        """``texts`` with each cut to ``max_tokens`` (kept from the end when ``left``), and how many were cut."""
        if max_tokens < 1:
            raise InvalidInputError(f"max_tokens must be >= 1, got {max_tokens}.")
        out = list(texts)
        long = [i for i, t in enumerate(texts) if len(t) > max_tokens and utf8_length(t) > max_tokens]
        if not long:
            return out, 0
        cut = 0
        if self.tokenizer is not None:
            # offsets of the surrogate-free copy are offsets into the original (one code point for one)
            clean = [tokenizable(texts[i]) for i in long]
            encodings = self.tokenizer.encode_batch(clean, add_special_tokens=False)
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
