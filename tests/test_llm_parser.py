"""The listwise reply parser, fuzzed: whatever the model says, the output is a permutation and repairs are counted."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rankwise.rerankers._permutation import extract_numbers, parse_permutation

# replies built from the pieces real models emit: identifiers, separators, chatter, numbers in prose, junk
_piece = st.one_of(
    st.integers(min_value=-5, max_value=60).map(lambda k: f"[{k}]"),
    st.integers(min_value=0, max_value=10**12).map(str),
    st.sampled_from(
        [" > ", ">", ", ", " ", "\n", "Ranking: ", "I think ", "[", "]", "[ 3 ]", "[03]", "passage"]
    ),
    st.text(max_size=8),
)
replies = st.one_of(st.lists(_piece, max_size=40).map("".join), st.text(max_size=200))


@settings(max_examples=400, deadline=None)
@given(reply=replies, n=st.integers(min_value=0, max_value=30))
def test_any_reply_gives_a_permutation_with_counted_repairs(reply, n):
    perm, repairs = parse_permutation(reply, n)
    assert sorted(perm) == list(range(n))
    numbers = extract_numbers(reply)
    in_range = [k for k in numbers if 1 <= k <= n]
    distinct = list(dict.fromkeys(in_range))
    # every number the model wrote is accounted for: kept, dropped as duplicate, or ignored as out of range
    assert repairs.out_of_range == len(numbers) - len(in_range)
    assert repairs.duplicates == len(in_range) - len(distinct)
    assert repairs.missing == n - len(distinct)
    # the model's order is kept for what it named; the rest follows in the previous order
    assert perm[: len(distinct)] == [k - 1 for k in distinct]
    rest = perm[len(distinct) :]
    assert rest == sorted(rest)
    assert repairs.unparseable == (n > 0 and not distinct)
    assert repairs.repaired == bool(repairs.duplicates or repairs.out_of_range or repairs.missing)


@given(perm=st.permutations(list(range(1, 21))), sep=st.sampled_from([" > ", ">", ", ", " "]))
def test_a_clean_reply_needs_no_repair(perm, sep):
    reply = sep.join(f"[{k}]" for k in perm)
    out, repairs = parse_permutation(reply, 20)
    assert out == [k - 1 for k in perm] and not repairs.repaired


def test_examples():
    assert parse_permutation("[2] > [3] > [1]", 3)[0] == [1, 2, 0]
    perm, rep = parse_permutation("[2] > [2] > [7] > [1]", 3)
    assert perm == [1, 0, 2] and (rep.duplicates, rep.out_of_range, rep.missing) == (1, 1, 1)
    perm, rep = parse_permutation("I cannot rank these.", 4)
    assert perm == [0, 1, 2, 3] and rep.unparseable and rep.missing == 4
    # bracketed identifiers win over numbers in echoed prose
    perm, rep = parse_permutation("[2] (founded in 1998) > [1]", 2)
    assert perm == [1, 0] and not rep.repaired
    # numbered list items win over numbers inside the echoed text
    reply = "1. Vitamin D 25 mg trial (2004)\n3) Calcium and 2 other minerals\nPassage 2: Influenza H1N1"
    assert parse_permutation(reply, 3) == ([0, 2, 1], parse_permutation(reply, 3)[1])
    assert not parse_permutation(reply, 3)[1].repaired
    # bare numbers are read when there are no brackets
    assert parse_permutation("3, 1, 2", 3)[0] == [2, 0, 1]
    assert parse_permutation("", 0) == ([], parse_permutation("", 0)[1])
