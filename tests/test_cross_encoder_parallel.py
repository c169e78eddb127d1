"""Batches side by side (rankwise.rerankers.cross_encoder.parallel): order kept, bounded, no thread state leaks."""

import threading
import time

import pytest

from rankwise.rerankers.cross_encoder.parallel import ordered_map


def test_results_come_back_in_input_order_even_when_later_items_finish_first():
    def slow_first(x: int) -> int:
        time.sleep(0.02 if x % 3 == 0 else 0.0)
        return x * 10

    assert list(ordered_map(slow_first, iter(range(20)), workers=3)) == [x * 10 for x in range(20)]


def test_at_most_two_items_per_worker_are_in_flight():
    taken = []

    def source():
        for i in range(50):
            taken.append(i)
            yield i

    results = ordered_map(lambda x: x, source(), workers=2)
    assert next(results) == 0
    assert len(taken) <= 4  # the first result was handed back before more of the input was read


def test_an_error_in_a_worker_reaches_the_caller():
    def boom(x: int) -> int:
        if x == 5:
            raise ValueError("item 5 is bad")
        return x

    with pytest.raises(ValueError, match="item 5 is bad"):
        list(ordered_map(boom, iter(range(10)), workers=2))


def test_initializer_runs_in_the_workers_and_never_in_the_caller():
    seen = set()
    caller = threading.get_ident()
    out = list(ordered_map(lambda x: x, iter(range(6)), workers=1, initializer=lambda: seen.add(threading.get_ident())))
    assert out == list(range(6)) and seen and caller not in seen


def test_one_worker_without_initializer_runs_inline():
    caller = threading.get_ident()
    assert set(ordered_map(lambda _: threading.get_ident(), iter(range(3)), workers=1)) == {caller}
