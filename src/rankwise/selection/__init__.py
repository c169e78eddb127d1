"""Response selection: rank an LLM's candidate answers by correctness, safety, helpfulness, instruction
following, agreement (self-consistency) or custom criteria, each scored by a judge (an LLM prompt or any rankwise
re-ranker as a reward model) that reads whole candidates; best-of-n generation; chosen/rejected preference pairs
(JSONL) for DPO-style training. docs/selection.md has the measured defaults.

Example:
    >>> from rankwise.selection import select
    >>> r = select("2 + 2 = ?", ["5", "4", "22"], criteria=["correctness"], reference="4", judge="token-f1")
    >>> r.best.text, r.best.reasons["correctness"]
    ('4', 'token F1 1.00 with the reference answer (exact match)')
"""

from __future__ import annotations

from rankwise.selection.core import best_of_n, generate_candidates, preference_pairs, select
from rankwise.selection.criteria import (
    BEST_OF_N_CRITERIA,
    BUILTIN_CRITERIA,
    DEFAULT_CRITERIA,
    Criterion,
    CriterionScore,
    SelectedCandidate,
    SelectionResult,
    criteria_from,
)
from rankwise.selection.judges import (
    AgreementJudge,
    Judge,
    LLMJudge,
    RerankerJudge,
    TokenF1Judge,
    Verdict,
    as_judge,
    token_f1,
)

__all__ = [
    "BEST_OF_N_CRITERIA",
    "BUILTIN_CRITERIA",
    "DEFAULT_CRITERIA",
    "AgreementJudge",
    "Criterion",
    "CriterionScore",
    "Judge",
    "LLMJudge",
    "RerankerJudge",
    "SelectedCandidate",
    "SelectionResult",
    "TokenF1Judge",
    "Verdict",
    "as_judge",
    "best_of_n",
    "criteria_from",
    "generate_candidates",
    "preference_pairs",
    "select",
    "token_f1",
]
