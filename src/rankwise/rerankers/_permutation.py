"""Read a listwise LLM's reply ("[3] > [1] > [2]") as a permutation, repairing whatever the model got wrong.

The output is always a permutation of ``range(n)``: numbers out of range are ignored, repeats are dropped, and
the numbers the model left out are appended in their previous order. Every repair is counted, never hidden.

Example:
    >>> from rankwise.rerankers._permutation import parse_permutation
    >>> perm, repairs = parse_permutation("[2] > [2] > [9] > [1]", 3)
    >>> perm, repairs.duplicates, repairs.out_of_range, repairs.missing
    ([1, 0, 2], 1, 1, 1)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BRACKETED = re.compile(r"\[\s*(\d+)\s*\]")
_LIST_ITEM = re.compile(r"^\s*(?:passage\s*)?(\d+)\s*[.):]", re.IGNORECASE | re.MULTILINE)
_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class PermutationRepairs:
    """What had to be fixed in one reply.

    Attributes:
        duplicates: numbers the reply repeated (later copies dropped).
        out_of_range: numbers outside ``1..n`` (ignored).
        missing: positions the reply left out (appended in their previous order).
        unparseable: True when the reply held no usable number at all (the window keeps its order).
    """

    duplicates: int = 0
    out_of_range: int = 0
    missing: int = 0
    unparseable: bool = False

    @property
    def repaired(self) -> bool:
        """Whether anything had to be fixed."""
        return bool(self.duplicates or self.out_of_range or self.missing or self.unparseable)


def extract_numbers(reply: str) -> list[int]:
    """The identifiers in a reply, from the most to the least explicit form that occurs in it:

    1. bracketed ids (``[3] > [1]``), the format the prompt asks for;
    2. else numbered list items at line starts (``1. ...`` / ``2) ...`` / ``Passage 3: ...``);
    3. else every bare integer (``3, 1, 2``).

    Preferring explicit forms keeps numbers from echoed passage text ("[2] was founded in 1998") out of the
    ranking.
    """
    found = _BRACKETED.findall(reply) or _LIST_ITEM.findall(reply) or _NUMBER.findall(reply)
    out = []
    for s in found:
        s = s.lstrip("0") or "0"
        out.append(int(s) if len(s) <= 9 else 10**9)  # absurd numbers are simply out of range
    return out


def parse_permutation(reply: str, n: int) -> tuple[list[int], PermutationRepairs]:
    """A 0-based permutation of ``range(n)`` from a 1-based ranking reply, and the repairs it took.

    Args:
        reply: the model's text, e.g. ``"[2] > [1] > [3]"``.
        n: how many items the prompt numbered (1..n).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    seen: set[int] = set()
    order: list[int] = []
    duplicates = out_of_range = 0
    numbers = extract_numbers(reply)
    for k in numbers:
        if not 1 <= k <= n:
            out_of_range += 1
            continue
        if k - 1 in seen:
            duplicates += 1
            continue
        seen.add(k - 1)
        order.append(k - 1)
    missing = [i for i in range(n) if i not in seen]
    order.extend(missing)
    unparseable = n > 0 and not seen
    return order, PermutationRepairs(duplicates, out_of_range, len(missing), unparseable)
