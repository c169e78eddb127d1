"""rankwise on a cluster: batch re-ranking on Ray Data, the HTTP service on Ray Serve (``pip install 'rankwise[ray]'``).

* :mod:`rankwise.distributed.ray`: the Ray engine of ``rankwise batch --engine ray``
  (:func:`~rankwise.distributed.ray.run_shards`) and :class:`~rankwise.distributed.ray.Scorer`, an actor class for
  your own Ray Data pipelines.
* :mod:`rankwise.distributed.ray_serve`: ``rankwise serve --ray`` and the ``serve run`` target.

Nothing here is imported by ``import rankwise``; Ray is imported only when one of these is used.
"""
