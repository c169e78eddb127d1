"""Joining Ray: one rule for the batch engine and the Serve command.

* Ray already initialised in this process (a test, a notebook, a user's own driver): use it, and leave it running.
* ``address`` given (``ray://...``, ``host:port`` or ``auto``): join that cluster; disconnect when done.
* Neither: start a local Ray on this machine, and stop it when done. ``address="local"`` is passed to ``ray.init``
  on purpose: with no address Ray would silently join whatever cluster ``ray start`` last recorded under /tmp/ray,
  which on a shared machine may be someone else's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rankwise.errors import InvalidInputError, require

logger = logging.getLogger(__name__)


def ray_module(purpose: str) -> Any:
    """``import ray``, or the one-line error that names ``pip install 'rankwise[ray]'``."""
    return require("ray", "ray", purpose)


@contextmanager
def ray_session(
    address: str | None, *, num_cpus: float | None = None, purpose: str = "The Ray engine"
) -> Iterator[bool]:
    """Connect to Ray for the ``with`` block; yields whether this call started (and so will stop) the connection.

    ``num_cpus`` only applies when a local Ray is started (a cluster has its own resources).

    Example:
        >>> with ray_session(None, num_cpus=2) as started:      # doctest: +SKIP
        ...     import ray; ray.cluster_resources()["CPU"]
        2.0
    """
    ray = ray_module(purpose)
    if ray.is_initialized():
        yield False
        return
    if address is not None and (not isinstance(address, str) or not address.strip()):
        raise InvalidInputError(
            f"ray_address must be a Ray address such as '10.0.0.5:6379', 'ray://head:10001' or 'auto', got "
            f"{address!r}; leave it out to start a local Ray."
        )
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING}
    if address is None:
        kwargs.update(address="local", include_dashboard=False, num_cpus=num_cpus)
    else:
        kwargs["address"] = address.strip()
    try:
        ray.init(**kwargs)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray"
        reason = f"{exc} ({exc.__cause__})" if exc.__cause__ is not None else str(exc)  # Ray's hint is in the cause
        raise InvalidInputError(
            f"cannot start or join {where}: {reason}. Check the address (`ray status` on the head node prints it), "
            "or leave ray_address out to start a local Ray."
        ) from exc
    try:
        yield True
    finally:
        ray.shutdown()
