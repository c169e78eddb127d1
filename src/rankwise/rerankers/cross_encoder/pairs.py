"""Fast (query, document) pair encoding for cross-encoders, with long-document chunking.

The hot path avoids tokenizing each pair as a string pair. Instead:

* the query is tokenized once per call and each distinct document once (and cached, keyed by a hash of the text and
  bounded in entries and bytes: candidates repeat across queries);
* pairs are joined in numpy using the model's own special-token template (``[CLS] q [SEP] d [SEP]`` for BERT,
  ``<s> q </s></s> d </s>`` for XLM-R), read once from the tokenizer's post-processor, so any Hugging Face
  tokenizer works without per-model code;
* a document that does not fit next to the query is split into overlapping passages (max-passage scoring), or cut,
  when the caller asked for truncation. The query itself is never cut below half of ``max_length``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from rankwise._cache import MB, BoundedLRU, check_bound
from rankwise.errors import InvalidInputError, require

if TYPE_CHECKING:
    from tokenizers import Tokenizer

Overflow = Literal["chunk", "truncate"]

TOKEN_CACHE_BYTES = 64 * MB
"""Default bound of a :class:`PairEncoder`'s token-id cache: 16 M int32 ids (~4,000 abstracts, or thirty 2 MB texts)."""


def load_fast_tokenizer(model_dir: str | Path) -> Tokenizer:
    """A ``tokenizers.Tokenizer`` for a model folder, with its own truncation and padding switched off.

    Some ``tokenizer.json`` files ship with truncation and fixed padding enabled (all-MiniLM-L6-v2 cuts at 128), which
    would silently drop text; rankwise does its own truncation and padding.
    """
    tokenizers = require("tokenizers", "onnx", "Fast tokenization")
    path = Path(model_dir) / "tokenizer.json"
    if path.is_file():
        tok = tokenizers.Tokenizer.from_file(str(path))
    else:  # slow-only checkpoints: let transformers convert, then keep the Rust tokenizer
        transformers = require("transformers", "torch", "Loading a tokenizer without tokenizer.json")
        tok = transformers.AutoTokenizer.from_pretrained(str(model_dir), use_fast=True).backend_tokenizer
    tok.no_truncation()
    tok.no_padding()
    return tok


@dataclass(frozen=True)
class PairTemplate:
    """Special tokens around the two segments, and the token type of each segment."""

    prefix: np.ndarray
    middle: np.ndarray
    suffix: np.ndarray
    type_a: int
    type_b: int

    @property
    def n_special(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    @classmethod
    def from_tokenizer(cls, tokenizer: Tokenizer) -> PairTemplate:
        pair = tokenizer.encode("query", "document", add_special_tokens=True)
        ids, seq, types = np.asarray(pair.ids), pair.sequence_ids, pair.type_ids
        first = [i for i, s in enumerate(seq) if s == 0]
        second = [i for i, s in enumerate(seq) if s == 1]
        if not first or not second:
            raise InvalidInputError("this tokenizer has no pair template; it cannot drive a cross-encoder.")
        return cls(
            prefix=ids[: first[0]],
            middle=ids[first[-1] + 1 : second[0]],
            suffix=ids[second[-1] + 1 :],
            type_a=int(types[first[0]]),
            type_b=int(types[second[0]]),
        )


@dataclass(frozen=True)
class EncodedPairs:
    """Token ids of every (query, passage) pair and the document each passage belongs to."""

    input_ids: list[np.ndarray]
    token_type_ids: list[np.ndarray]
    owners: np.ndarray
    n_documents: int


class PairEncoder:
    """Turns a query and document texts into model-ready pairs. Thread-safe for concurrent calls.

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` (see :func:`load_fast_tokenizer`).
        max_length: tokens per pair, special tokens included.
        overflow: ``"chunk"`` (default) splits long documents into overlapping passages; ``"truncate"`` cuts them.
        stride: tokens shared by consecutive passages when chunking (default ``max_length // 8``: 64 at 512).
        cache_size: documents whose token ids are kept (LRU); 0 disables the cache.
        cache_bytes: most bytes of token ids kept (default 64 MB; ids are stored as int32); 0 disables the cache.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        max_length: int = 512,
        overflow: Overflow = "chunk",
        stride: int | None = None,
        cache_size: int = 100_000,
        cache_bytes: int = TOKEN_CACHE_BYTES,
    ) -> None:
        if overflow not in ("chunk", "truncate"):
            raise InvalidInputError(f"overflow must be 'chunk' or 'truncate', got {overflow!r}.")
        self.tokenizer = tokenizer
        self.template = PairTemplate.from_tokenizer(tokenizer)
        if max_length < self.template.n_special + 8:
            raise InvalidInputError(f"max_length={max_length} is too small for this model; use at least 64.")
        self.max_length = max_length
        self.overflow = overflow
        stride = max_length // 8 if stride is None else stride
        self.stride = stride
        self.max_query_tokens = (max_length - self.template.n_special) // 2
        if not 0 <= stride < self.max_query_tokens:
            raise InvalidInputError(
                f"stride={stride} must be >= 0 and below {self.max_query_tokens} (half of max_length={max_length}, "
                "less the special tokens)."
            )
        self.cache_size = check_bound("cache_size", cache_size)
        self.cache_bytes = check_bound("cache_bytes", cache_bytes)
        self._cache: BoundedLRU[np.ndarray] = BoundedLRU(cache_size, cache_bytes)

    def _tokenize(self, texts: list[str]) -> list[np.ndarray]:
        """Token ids without special tokens, as int32 (half the memory of int64; every vocabulary fits)."""
        encs = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.int32) for e in encs]

    def document_ids(self, texts: list[str]) -> list[np.ndarray]:
        """Token ids of each text (no special tokens), through the LRU cache; each distinct text is tokenized once."""
        found: dict[str, np.ndarray] = {}
        for text in dict.fromkeys(texts):
            ids = self._cache.get(text)
            if ids is not None:
                found[text] = ids
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            for text, ids in zip(missing, self._tokenize(missing)):
                found[text] = ids
                self._cache.put(text, ids)
        return [found[t] for t in texts]

    def encode(self, query: str, texts: list[str]) -> EncodedPairs:
        t = self.template
        q = self._tokenize([query])[0][: self.max_query_tokens]
        head = np.concatenate([t.prefix, q, t.middle])
        head_types = np.full(len(head), t.type_a, dtype=np.int64)
        passage_tokens = self.max_length - len(head) - len(t.suffix)  # document tokens that fit next to this query
        step = passage_tokens - self.stride
        ids_out: list[np.ndarray] = []
        types_out: list[np.ndarray] = []
        owners: list[int] = []
        for owner, d in enumerate(self.document_ids(texts)):
            if len(d) <= passage_tokens or self.overflow == "truncate":
                starts = [0]
            else:
                starts = list(range(0, len(d) - passage_tokens + step, step))
            for s in starts:
                piece = d[s : s + passage_tokens]
                tail = np.concatenate([piece, t.suffix])
                ids_out.append(np.concatenate([head, tail]))
                types_out.append(np.concatenate([head_types, np.full(len(tail), t.type_b, dtype=np.int64)]))
                owners.append(owner)
        return EncodedPairs(ids_out, types_out, np.asarray(owners, dtype=np.int64), len(texts))
