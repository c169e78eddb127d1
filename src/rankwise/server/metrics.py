"""Prometheus metrics of one app, in a registry of its own (several apps in one process never collide).

Exposed at ``GET /metrics``:

* ``rankwise_requests_total{endpoint,status}`` and ``rankwise_request_duration_seconds{endpoint}`` (histogram);
* ``rankwise_errors_total{endpoint,type}``: 4xx/5xx by error type;
* ``rankwise_requests_in_flight``;
* per model: ``rankwise_batch_pairs`` and ``rankwise_batch_requests`` (histograms of what one model call merged),
  ``rankwise_batch_duration_seconds``, ``rankwise_queue_pairs`` and ``rankwise_queue_requests`` (waiting work),
  ``rankwise_pairs_scored_total``, ``rankwise_cancelled_requests_total`` (client gone, or request timeout passed,
  before its work ran);
* per remote model (a gateway, ``docs/remote.md``): ``rankwise_remote_calls_total``, ``rankwise_remote_documents_total``
  (sent to the provider), ``rankwise_remote_cached_documents_total`` (answered from the on-disk cache) and
  ``rankwise_remote_units_total{model,unit}`` (the provider's billing units), read from the model at each scrape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from rankwise.errors import require

KNOWN_ENDPOINTS = frozenset(
    {
        "/v1/rerank",
        "/v2/rerank",
        "/rerank",
        "/health",
        "/ready",
        "/metrics",
        "/v1/models",
        "/info",
        "/docs",
        "/redoc",
        "/openapi.json",
    }
)
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


class ServerMetrics:
    """The collectors one app updates.

    Example:
        >>> m = ServerMetrics()
        >>> m.requests.labels("/v2/rerank", "200").inc()
        >>> b"rankwise_requests_total" in m.render()[0]
        True
    """

    def __init__(self) -> None:
        prom = require("prometheus_client", "server", "The server's /metrics")
        self._prom = prom
        self.registry = prom.CollectorRegistry(auto_describe=True)
        self._http_metrics()
        self._model_metrics()
        self._queue_metrics()
        self._remote: dict[str, Callable[[], Any]] = {}

    def _http_metrics(self) -> None:
        """Per HTTP request: counts by status, latency, error types, requests in flight."""
        prom, r = self._prom, self.registry
        self.requests = prom.Counter(
            "rankwise_requests",
            "HTTP requests by endpoint and status code.",
            ["endpoint", "status"],
            registry=r,
        )
        self.latency = prom.Histogram(
            "rankwise_request_duration_seconds",
            "Time from request start to the last byte of the response.",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = prom.Counter(
            "rankwise_errors", "Error responses by endpoint and error type.", ["endpoint", "type"], registry=r
        )
        self.in_flight = prom.Gauge("rankwise_requests_in_flight", "Requests being handled now.", registry=r)

    def _model_metrics(self) -> None:
        """Per model call: documents, requests sharing it, its duration, and pairs scored."""
        prom, r = self._prom, self.registry
        self.batch_pairs = prom.Histogram(
            "rankwise_batch_pairs",
            "Documents scored in one model call (merged across requests).",
            ["model"],
            buckets=_SIZE_BUCKETS,
            registry=r,
        )
        self.batch_requests = prom.Histogram(
            "rankwise_batch_requests",
            "Requests that shared one model call.",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=r,
        )
        self.batch_seconds = prom.Histogram(
            "rankwise_batch_duration_seconds",
            "Time of one model call.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.pairs_scored = prom.Counter(
            "rankwise_pairs_scored", "(query, document) pairs scored.", ["model"], registry=r
        )

    def _queue_metrics(self) -> None:
        """Per model queue: what waits, and the requests cancelled before their work finished."""
        prom, r = self._prom, self.registry
        self.queue_pairs = prom.Gauge(
            "rankwise_queue_pairs",
            "Documents waiting for the model (not yet in a model call).",
            ["model"],
            registry=r,
        )
        self.queue_requests = prom.Gauge(
            "rankwise_queue_requests", "Requests waiting for or in the model.", ["model"], registry=r
        )
        self.cancelled = prom.Counter(
            "rankwise_cancelled_requests",
            "Requests whose client left, or whose request_timeout_s passed, before their work finished.",
            ["model"],
            registry=r,
        )

    def watch_remote(self, name: str, cost_total: Callable[[], Any]) -> None:
        """Export the cumulative cost of remote model ``name`` (``cost_total()``: a ``RemoteCost``) at each scrape."""
        if not self._remote:
            self.registry.register(_RemoteCosts(self._remote))
        self._remote[name] = cost_total

    @staticmethod
    def endpoint_label(path: str) -> str:
        """The path for known routes, ``other`` for the rest (so label values stay bounded)."""
        return path if path in KNOWN_ENDPOINTS else "other"

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return self._prom.generate_latest(self.registry), self._prom.CONTENT_TYPE_LATEST


class _RemoteCosts:
    """A Prometheus collector of remote models' costs, read from each model when scraped (the model keeps the
    counts; the server never mirrors them)."""

    def __init__(self, sources: dict[str, Callable[[], Any]]) -> None:
        self.sources = sources

    def _families(self) -> tuple[Any, ...]:
        from prometheus_client.core import CounterMetricFamily

        return (
            CounterMetricFamily("rankwise_remote_calls", "HTTP calls to a remote re-ranker (cache hits excluded).",
                                labels=["model"]),
            CounterMetricFamily("rankwise_remote_documents", "Documents sent to a remote re-ranker.", labels=["model"]),
            CounterMetricFamily("rankwise_remote_cached_documents",
                                "Documents a remote model answered from its on-disk cache.", labels=["model"]),
            CounterMetricFamily("rankwise_remote_units", "Billing units a remote re-ranker reported (search_units, "
                                "tokens).", labels=["model", "unit"]),
        )

    def describe(self) -> Iterator[Any]:
        return iter(self._families())

    def collect(self) -> Iterator[Any]:
        calls, documents, cached, units = self._families()
        for name, read in list(self.sources.items()):
            cost = read()
            calls.add_metric([name], cost.calls)
            documents.add_metric([name], cost.documents)
            cached.add_metric([name], cost.cached)
            for unit, value in sorted(cost.units.items()):
                units.add_metric([name, unit], value)
        return iter((calls, documents, cached, units))
