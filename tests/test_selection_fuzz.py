"""Fuzz ``select()``: any candidates (strings, dicts with odd keys and values, Documents, odd unicode) and any
criteria/weights either give a full ranking (every candidate exactly once, the caller's objects untouched) or a
clear InvalidInputError, never a crash."""

from __future__ import annotations

import copy
import math

from hypothesis import given
from hypothesis import strategies as st

import rankwise
from rankwise.errors import InvalidInputError
from rankwise.selection import BUILTIN_CRITERIA, Criterion, select
from rankwise.types import Document
from tests.support.fuzzing import fuzz_settings

BM25 = rankwise.load("bm25", fields=["title", "text", "tags"])
text = st.text(alphabet=st.characters(codec="utf-16", exclude_categories=("Cs",)) | st.sampled_from(
    ["\ud800", "\udfff", "\x00", "\u2028", "é", "🟩", " ", "\n"]), max_size=30)
values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), text,
                   st.lists(text, max_size=3), st.dictionaries(text, st.integers(), max_size=2))
dict_candidate = st.fixed_dictionaries(
    {"text": text},
    optional={"title": st.one_of(st.none(), text), "id": st.one_of(text, st.integers()), "tags": values,
              "metadata": st.dictionaries(text, values, max_size=2), "extra": values},
)
document = st.builds(Document, text, id=st.one_of(st.none(), text), title=st.one_of(st.none(), text),
                     metadata=st.dictionaries(text, values, max_size=2))
candidate = st.one_of(text, dict_candidate, document)
names = st.sampled_from([*BUILTIN_CRITERIA, "instruction-following", "Correctness", "speed", ""])
custom = st.builds(Criterion, st.sampled_from(["brevity", "tone"]), st.just("Judged by its words."),
                   st.floats(min_value=0, max_value=5) | st.integers(0, 3))
criteria = st.lists(st.one_of(names, custom), min_size=0, max_size=4)
weight = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.just(10**400), st.booleans())
weights = st.one_of(st.none(), st.lists(weight, max_size=4), st.dictionaries(names, weight, max_size=3))
judges = st.sampled_from(["token-f1", BM25])
prompts = st.one_of(text, st.sampled_from(["What is the capital of France?", "2+2?"]))


@fuzz_settings(150)
@given(prompt=prompts, candidates=st.lists(candidate, max_size=6), criteria=criteria, weights=weights,
       judge=judges, reference=st.one_of(st.none(), text))
def test_select_ranks_every_candidate_once_or_refuses_clearly(prompt, candidates, criteria, weights, judge,
                                                               reference):
    before = copy.deepcopy(candidates)
    try:
        result = select(prompt, candidates, criteria, weights, judge=judge, reference=reference)
    except InvalidInputError as exc:
        assert str(exc)  # a refusal names what was wrong...
        # ...and only ever concerns the prompt, the criteria, the weights or the reference: these candidates are
        # all well-formed (any text, empty included), so none of them may make a selection fail
        assert not _valid_request(prompt, criteria, weights, reference), exc
        return
    assert sorted(c.index for c in result) == list(range(len(candidates)))
    assert [c.rank for c in result] == list(range(1, len(candidates) + 1))
    assert all(math.isfinite(c.score) for c in result)
    assert [c.score for c in result] == sorted((c.score for c in result), reverse=True)
    for c in result:
        given_as = candidates[c.index]
        if isinstance(given_as, Document):
            assert c.document is given_as
        elif isinstance(given_as, str):
            assert c.document.text == given_as
        else:
            assert c.document.text == given_as["text"] and c.document.title == given_as.get("title")
    assert repr(candidates) == repr(before)  # nothing the caller passed was changed
    assert abs(sum(result.weights.values()) - 1.0) < 1e-9


def _valid_request(prompt, criteria, weights, reference) -> bool:
    from rankwise._validation import check_query
    from rankwise.selection import criteria_from

    try:
        check_query(prompt)
        criteria_from(criteria, weights)
    except InvalidInputError:
        return False
    return reference is None or bool(reference.strip())
