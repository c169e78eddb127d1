"""What every remote re-ranker shares: keys, URLs, calls split to the provider's per-call limit and run with bounded
concurrency, answers checked and merged in input order, the on-disk cache and the cost of each call.

A provider module (``cohere.py``, ``voyage.py``...) is a :class:`RemoteReranker` subclass that says where to POST, how
to write the request body for one call (:meth:`RemoteReranker._payload`) and where the answer keeps its scores and
billing units (class attributes read by :meth:`RemoteReranker._read`). Everything else is here, once:

* every call asks for the scores of all of its documents (``top_n``/``top_k`` = the call's size), and the answer must
  hold each document exactly once with a finite score (:func:`~._answers.read_scores`): never a partial ranking;
* documents over ``max_documents_per_call`` are split into calls, run on at most ``concurrency`` threads, and merged
  back in input order; identical texts of one query are sent once;
* HTTP goes through :class:`rankwise._http.RetryingHTTP` (429/5xx/resets/timeouts retried with backoff, honouring
  ``Retry-After``); a 401/403 is one :class:`~._answers.RemoteAuthError`, never retried;
* the API key comes from the argument or the provider's usual environment variables; it is sent as a bearer token and
  appears in no repr, log or error message;
* with ``cache_dir=`` scores are kept on disk (:class:`~._store.ScoreCache`), so a repeated pair costs no call;
* :meth:`RemoteReranker.rank_with_cost` returns each ranking with its :class:`RemoteCost`; :meth:`cost_total` sums
  them over the instance's life (thread-safe). Nothing per call is kept on the instance, so concurrent callers are safe.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from rankwise._validation import check_fields, check_query, check_scores, check_top_k
from rankwise.documents import DEFAULT_FIELDS, DocumentLike, document_text, model_text, to_documents
from rankwise.errors import InvalidInputError
from rankwise.rerankers.base import ProgressCallback, Reranker
from rankwise.rerankers.remote._answers import (
    RemoteAnswerError,
    RemoteAuthError,
    RemoteError,
    read_scores,
    units_of,
)
from rankwise.rerankers.remote._calls import check_url, join_url, positive_int, resolve_key, run_bounded
from rankwise.rerankers.remote._store import ScoreCache, digest
from rankwise.types import Document, RankedResults

REDACTED = "***"


@dataclass(frozen=True)
class RemoteCost:
    """What one ranking (or, from :meth:`RemoteReranker.cost_total`, an instance's whole life) cost.

    Attributes:
        calls: HTTP calls made (cache hits excluded; retries of one call count once).
        documents: documents sent to the provider.
        cached: documents answered from the on-disk cache.
        units: the provider's billing units where its answers carry them, summed: ``search_units`` (Cohere, rankwise),
            ``tokens`` (Jina, Voyage, Mixedbread, Infinity, rankwise).

    Example:
        >>> RemoteCost(1, 20, 0, {"search_units": 1}) + RemoteCost(1, 5, 3, {"search_units": 1})
        RemoteCost(calls=2, documents=25, cached=3, units={'search_units': 2.0})
    """

    calls: int = 0
    documents: int = 0
    cached: int = 0
    units: Mapping[str, float] = field(default_factory=dict)

    def __add__(self, other: RemoteCost) -> RemoteCost:
        units = dict(self.units)
        for name, value in other.units.items():
            units[name] = float(units.get(name, 0.0)) + float(value)
        return RemoteCost(
            self.calls + other.calls,
            self.documents + other.documents,
            self.cached + other.cached,
            {k: float(v) for k, v in units.items()},
        )


@dataclass(frozen=True)
class _Call:
    """One HTTP call: a query, the distinct texts sent, and where each text's score goes (group, position)."""

    query: str
    texts: list[str]
    targets: list[list[tuple[int, int]]]


class RemoteReranker(Reranker):
    """A re-ranker whose scores come from an HTTP API. Subclasses set the class attributes and implement
    :meth:`_payload`; see the module docstring for what is shared.

    Class attributes:
        provider: the backend's name (``"cohere"``), in names and messages.
        key_env: environment variables read for the API key, in order.
        default_max_documents: documents per call unless ``max_documents_per_call`` says otherwise.
        answer_items: the answer's key that holds the list of ``{index, score}`` objects (None: the answer is the
            list itself).
        answer_score: the key of the score in each of those objects.
        answer_units: billing units to report, as ``unit name -> path of keys`` in the answer (a missing one is left
            out).
    """

    provider: ClassVar[str] = "remote"
    key_env: ClassVar[tuple[str, ...]] = ()
    default_max_documents: ClassVar[int] = 1000
    independent_scores: ClassVar[bool] = True
    answer_items: ClassVar[str | None] = "results"
    answer_score: ClassVar[str] = "relevance_score"
    answer_units: ClassVar[Mapping[str, tuple[str, ...]]] = MappingProxyType({})

    def __init__(
        self,
        model: str | None,
        *,
        base_url: str,
        route: str,
        variant: str = "",
        key_required: bool = False,
        api_key: str | None = None,
        max_documents_per_call: int | None = None,
        concurrency: int = 4,
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        cache_dir: str | os.PathLike[str] | None = None,
        fields: Sequence[str] = DEFAULT_FIELDS,
        name: str | None = None,
    ) -> None:
        from rankwise import __version__
        from rankwise._http import RetryingHTTP

        if model is not None and (not isinstance(model, str) or not model.strip()):
            raise InvalidInputError(f"{self.provider}: model must be a non-empty string, got {model!r}.")
        self.model = model
        self.base_url = check_url(base_url, "base_url")
        self.url = join_url(self.base_url, route)
        self.fields = check_fields(fields)
        self.max_documents_per_call = positive_int(
            self.default_max_documents if max_documents_per_call is None else max_documents_per_call,
            "max_documents_per_call",
        )
        self.concurrency = positive_int(concurrency, "concurrency")
        self.name = name or f"{self.provider}:{model or self.base_url}"
        self._api_key = self._key(api_key, key_required)
        headers = {"Accept": "application/json", "User-Agent": f"rankwise/{__version__}"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        self._http = RetryingHTTP(
            timeout=timeout,
            max_retries=max_retries,
            backoff=backoff,
            headers=headers,
            max_connections=max(self.concurrency, 4),
            extra="remote",
            purpose=f"The {self.provider} re-ranker",
        )
        # the cache's namespace: everything that changes a score, never a key or a text
        self._space = digest("\x1f".join((self.provider, self.url, model or "", variant)))
        self.cache = None if cache_dir is None else ScoreCache(cache_dir)
        self._total = RemoteCost()
        self._total_lock = threading.Lock()

    # -- what a provider module writes
    def _payload(self, query: str, texts: list[str]) -> dict[str, Any]:
        """The JSON body of one call scoring every one of ``texts`` (ask for ``len(texts)`` results)."""
        raise NotImplementedError

    def _read(self, answer: Any, positions: Sequence[int]) -> tuple[list[float], dict[str, float]]:
        """One score per document of the call (in call order) and the billing units, from the decoded answer.
        ``positions`` are the caller's positions of the call's documents (for messages)."""
        scores = read_scores(answer, items=self.answer_items, score=self.answer_score, positions=positions,
                             provider=self.provider, url=self.url)
        return scores, units_of(answer, **self.answer_units)

    # -- keys and errors
    def _key(self, given: str | None, required: bool) -> str | None:
        """The key to send; None without one (``required``: a hosted API at its own URL, which refuses no key)."""
        key = resolve_key(given, self.key_env)
        if key is None and required:
            where = " or ".join(self.key_env)
            raise InvalidInputError(
                f"the {self.provider} backend needs an API key: set {where}, or pass api_key=... "
                f"(e.g. rankwise.load({self.model!r}, backend={self.provider!r}, api_key=...))."
            )
        return key

    def _scrub(self, text: str) -> str:
        """``text`` with the API key (should a server echo it) replaced by ``***``."""
        return text.replace(self._api_key, REDACTED) if self._api_key else text

    def _failure(self, exc: Exception) -> RemoteError:
        """The :class:`RemoteError` for an :class:`~rankwise._http.HTTPError` of a call to this provider."""
        status = getattr(exc, "status", None)
        where = f"{self.provider} at {self.url}"
        if status in (401, 403):
            sent = "the API key was refused" if self._api_key else "no API key was sent"
            env = " or ".join(self.key_env) or "the server's key"
            message = (
                f"{where} answered HTTP {status}: {sent} (body: {getattr(exc, 'body', '')!r}); set {env} or pass "
                "api_key=... with a valid key. Not retried."
            )
            return RemoteAuthError(self._scrub(message), provider=self.provider, url=self.url, status=status)
        return RemoteError(
            self._scrub(f"{self.provider}: {exc}"), provider=self.provider, url=self.url, status=status
        )

    # -- one call
    def _post(self, call: _Call, positions: Sequence[int]) -> tuple[list[float], dict[str, float]]:
        """POST one call and read its answer (runs in a worker thread)."""
        from rankwise._http import HTTPError

        try:
            response = self._http.request("POST", self.url, self._payload(call.query, call.texts))
        except HTTPError as exc:
            raise self._failure(exc) from None  # the chained HTTPError would repeat the message
        try:
            answer = response.json()
        except (ValueError, RecursionError):  # not JSON, cut short, not UTF-8, or nested beyond the parser
            raise RemoteAnswerError(
                self._scrub(
                    f"{self.provider} at {self.url} answered HTTP {response.status_code} with a body that is not "
                    f"complete JSON ({response.text[:120]!r}); check the URL (a proxy's page?) and retry."
                ),
                provider=self.provider,
                url=self.url,
                status=response.status_code,
            ) from None
        return self._read(answer, positions)

    # -- the shared path
    def _plan(self, groups: list[tuple[str, list[str]]], found: list[list[float | None]]) -> list[_Call]:
        """The calls for every text without a score: texts of one query merged (each distinct text once) and cut
        to the per-call limit. Scores that depend on the candidate list are never merged, deduplicated or split."""
        limit = self.max_documents_per_call
        if not self.independent_scores:
            for query, texts in groups:
                if len(texts) > limit:
                    raise InvalidInputError(
                        f"{len(texts)} documents is over {self.name}'s {limit} per call, and its scores depend on the "
                        "whole list, so it cannot be split; send fewer, or raise max_documents_per_call."
                    )
            return [
                _Call(q, list(t), [[(g, i)] for i in range(len(t))]) for g, (q, t) in enumerate(groups) if t
            ]
        wanted: dict[str, dict[str, list[tuple[int, int]]]] = {}
        for g, (query, texts) in enumerate(groups):
            per_text = wanted.setdefault(query, {})
            for i, text in enumerate(texts):
                if found[g][i] is None:
                    per_text.setdefault(text, []).append((g, i))
        calls = []
        for query, per_text in wanted.items():
            items = list(per_text.items())
            for start in range(0, len(items), limit):
                chunk = items[start : start + limit]
                calls.append(_Call(query, [t for t, _ in chunk], [targets for _, targets in chunk]))
        return calls

    def _cached(self, groups: list[tuple[str, list[str]]]) -> list[list[float | None]]:
        """Each text's stored score, or None (all None without a cache)."""
        if self.cache is None or not self.independent_scores:
            return [[None] * len(texts) for _, texts in groups]
        return [self.cache.get(self._space, digest(q), [digest(t) for t in texts]) for q, texts in groups]

    def _scored(
        self, groups: list[tuple[str, list[Document]]], progress: ProgressCallback | None
    ) -> tuple[list[list[float]], RemoteCost]:
        """Scores of each ``(model query, documents)`` group, in input order, and what they cost."""
        texts = [(query, [document_text(d, self.fields) for d in docs]) for query, docs in groups]
        found = self._cached(texts)
        hits = sum(s is not None for row in found for s in row)
        calls = self._plan(texts, found)
        total = sum(len(t) for _, t in texts)
        done = [hits]  # documents with a score, for progress
        made = [0, 0]  # calls answered and their documents, for the cost
        units: dict[str, float] = {}
        cache = self.cache if self.independent_scores else None

        def finished(k: int, result: tuple[list[float], dict[str, float]]) -> None:
            scores, call_units = result
            call = calls[k]
            made[0], made[1] = made[0] + 1, made[1] + len(call.texts)
            for text_scores, targets in zip(scores, call.targets):
                for g, i in targets:
                    found[g][i] = text_scores
            for unit, value in call_units.items():
                units[unit] = units.get(unit, 0.0) + value
            if cache is not None:  # at once: finished work is kept even if a later call fails
                cache.put(self._space, digest(call.query), {digest(t): s for t, s in zip(call.texts, scores)})
            done[0] += sum(len(targets) for targets in call.targets)
            if progress is not None:
                progress(done[0], total)

        try:
            run_bounded([self._task(call) for call in calls], self.concurrency, finished)
        finally:  # the calls that were answered are counted (and billed) even when the ranking fails
            cost = RemoteCost(made[0], made[1], hits, units)
            with self._total_lock:
                self._total = self._total + cost
        if progress is not None and not calls and total:
            progress(total, total)  # everything came from the cache
        return [[float(s) for s in row] for row in found], cost  # type: ignore[arg-type]  # every slot filled

    def _task(self, call: _Call) -> Callable[[], tuple[list[float], dict[str, float]]]:
        positions = [targets[0][1] for targets in call.targets]  # the caller's (first) position of each text
        return lambda: self._post(call, positions)

    # -- the Reranker interface
    def _score(self, query: str, documents: list[Document], progress: ProgressCallback | None) -> list[float]:
        return self._scored([(query, documents)], progress)[0][0]

    def score_groups(
        self,
        groups: Sequence[tuple[str, Sequence[DocumentLike]]],
        *,
        progress: ProgressCallback | None = None,
    ) -> list[np.ndarray]:
        """Scores of several ``(query, documents)`` groups, each equal to ``score(query, documents)``: the calls of
        every group run together (bounded by ``concurrency``), and documents of groups with the same query share
        calls (a server hands a long request over in chunks)."""
        prepared = [(model_text(check_query(query)), to_documents(docs)) for query, docs in groups]
        scores, _ = self._scored(prepared, progress)
        return [np.asarray(row, dtype=np.float64) for row in scores]

    def rank_with_cost(
        self,
        query: str,
        docs: Iterable[DocumentLike],
        top_k: int | None = None,
        *,
        progress: ProgressCallback | None = None,
    ) -> tuple[RankedResults, RemoteCost]:
        """:meth:`rank`, and what it cost (calls, documents sent, cache hits, provider units).

        Example:
            >>> import rankwise                                                  # doctest: +SKIP
            >>> ce = rankwise.load("rerank-v3.5", backend="cohere")              # doctest: +SKIP
            >>> ranked, cost = ce.rank_with_cost("lstm", ["gates", "pooling"])   # doctest: +SKIP
            >>> cost                                                             # doctest: +SKIP
            RemoteCost(calls=1, documents=2, cached=0, units={'search_units': 1.0})
        """
        query = check_query(query)
        top_k = check_top_k(top_k)
        documents = to_documents(docs)
        if not documents:
            return RankedResults(query=query, results=(), model=self.name), RemoteCost()
        rows, cost = self._scored([(model_text(query), documents)], progress)
        scores = check_scores(rows[0], documents, self.name)
        return RankedResults.from_scores(query, documents, scores, model=self.name, top_k=top_k), cost

    def cost_total(self) -> RemoteCost:
        """Everything this instance has cost so far (all callers, all threads)."""
        with self._total_lock:
            return RemoteCost(
                self._total.calls,
                self._total.documents,
                self._total.cached,
                MappingProxyType(dict(self._total.units)),
            )

    def close(self) -> None:
        """Close the connection pool and the cache file (a later call opens a new pool; the cache stays closed)."""
        self._http.close()
        if self.cache is not None:
            self.cache.close()

    def __repr__(self) -> str:
        where = self.base_url if self.model is None else f"{self.model!r} at {self.base_url}"
        return f"{type(self).__name__}({where}, max_documents_per_call={self.max_documents_per_call})"
