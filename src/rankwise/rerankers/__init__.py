"""Re-ranking backends, one module each, all implementing :class:`rankwise.rerankers.base.Reranker`."""
