"""Fuzz the click-log reader: any line is a session or one InvalidInputError naming the line; labels follow the
documented skip-above rule on any well-formed log."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from rankwise.errors import InvalidInputError
from rankwise.train.lambdamart.clicks import click_groups, parse_session, read_sessions
from rankwise.types import Document
from tests.support.fuzzing import fuzz_settings

CORPUS = {k: Document(text=f"text {k}", id=k) for k in ("a", "b", "c", "d", "e")}
ids = st.sampled_from(sorted(CORPUS))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
items = ids | st.builds(lambda i, t: {"id": i, "text": t}, ids, st.text(max_size=10)) | json_values
lines = st.fixed_dictionaries(
    {},
    optional={
        "query": st.text(max_size=12) | json_values,
        "shown": st.lists(items, max_size=5) | json_values,
        "clicked": st.lists(ids | json_values, max_size=3) | json_values,
    },
) | json_values


@fuzz_settings(300)
@given(lines)
def test_any_line_parses_or_is_one_named_error(obj: object) -> None:
    try:
        session = parse_session(obj, "log.jsonl:3", CORPUS)
    except InvalidInputError as exc:
        assert str(exc).startswith("log.jsonl:3: ")
        return
    shown = [str(d.id) for d in session.shown]
    assert session.query.strip() and shown and len(set(shown)) == len(shown)
    assert session.clicked <= set(shown)


def _expected(raw: list[tuple[str, list[str], set[str]]]) -> dict[str, tuple[set[str], set[str]]]:
    """Per query: (examined ids, clicked ids) by the skip-above rule, written out independently."""
    out: dict[str, tuple[set[str], set[str]]] = {}
    for query, order, clicked in raw:
        examined, clicks = out.setdefault(query, (set(), set()))
        if clicked:
            examined.update(order[: 1 + max(order.index(c) for c in clicked)])
            clicks.update(clicked)
    return out


@fuzz_settings(150)
@given(st.lists(st.tuples(st.sampled_from(["q1", "q2"]), st.permutations(sorted(CORPUS)),
                          st.sets(ids, max_size=3)), min_size=1, max_size=8))
def test_labels_follow_skip_above(raw: list[tuple[str, list[str], set[str]]]) -> None:
    sessions = [parse_session({"query": q, "shown": order, "clicked": sorted(c)}, "x", CORPUS) for q, order, c in raw]
    expected = {q: v for q, v in _expected(raw).items() if v[1] and len(v[0]) > 1}
    try:
        result = click_groups(sessions)
    except InvalidInputError:
        assert not expected
        return
    assert {g.query for g in result.groups} == set(expected)
    for group in result.groups:
        examined, clicked = expected[group.query]
        assert {d.id for d in group.documents} == examined
        assert all((label > 0) == (d.id in clicked) for d, label in zip(group.documents, group.labels.tolist()))


@fuzz_settings(100)
@given(st.binary(max_size=200))
def test_any_file_reads_or_is_one_error(tmp_path_factory, data: bytes) -> None:  # noqa: ANN001 - pytest fixture
    path = Path(tmp_path_factory.mktemp("clicks")) / "log.jsonl"
    path.write_bytes(data)
    try:
        sessions = read_sessions(path, CORPUS)
    except InvalidInputError as exc:
        assert str(path) in str(exc)
        return
    assert all(isinstance(s.query, str) for s in sessions)
