"""The one hypothesis profile of the fuzz tests (tests/test_fuzz_*.py).

CI runs a small sample pinned by ``derandomize=True``: the same examples on every run and machine. Set
``RANKWISE_FUZZ_EXAMPLES=2000`` for a longer run. Time is never what a fuzz test checks (``deadline=None``).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings


def fuzz_settings(default_examples: int) -> settings:
    """Pinned hypothesis settings: ``RANKWISE_FUZZ_EXAMPLES`` examples per test, else ``default_examples``."""
    return settings(
        max_examples=int(os.environ.get("RANKWISE_FUZZ_EXAMPLES", str(default_examples))),
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    )
