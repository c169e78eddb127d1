"""Response selection: crafted candidate sets where one answer is plainly right, weights, custom criteria,
judges (token F1, a re-ranker as reward model, the real SmolLM2 as LLM judge), best-of-n, preference pairs,
the CLI."""

from __future__ import annotations

import json

import pytest

import rankwise
from rankwise.cli import main
from rankwise.errors import InvalidInputError
from rankwise.selection import (
    AgreementJudge,
    Criterion,
    Judge,
    LLMJudge,
    RerankerJudge,
    TokenF1Judge,
    Verdict,
    best_of_n,
    preference_pairs,
    select,
    token_f1,
)
from tests.support.llm import smollm2_client  # noqa: F401 - fixture

PROMPT = "What is the boiling point of water at sea level in degrees Celsius?"
CANDIDATES = [
    "Water boils at 50 degrees Celsius at sea level.",
    "At sea level water boils at 100 degrees Celsius.",
    "I like turtles.",
    "Water freezes at 0 degrees Celsius.",
]
REFERENCE = "Water boils at 100 degrees Celsius at sea level."


class KeywordJudge(Judge):
    """A deterministic judge for tests: 1.0 when the response contains ``word``, else 0.0."""

    def __init__(self, word: str) -> None:
        self.word, self.name = word, f"keyword:{word}"

    def judge(self, criterion, prompt, responses, reference):
        return [
            Verdict(float(self.word in r), f"contains {self.word!r}: {self.word in r}", None)
            for r in responses
        ]


def test_reference_based_correctness_picks_the_plainly_right_answer():
    result = select(PROMPT, CANDIDATES, criteria=["correctness"], reference=REFERENCE, judge="token-f1")
    assert result.best.index == 1 and result.best.rank == 1
    assert result.best.scores["correctness"] == pytest.approx(token_f1(CANDIDATES[1], REFERENCE))
    assert "token F1" in result.best.reasons["correctness"]
    assert [c.rank for c in result] == [1, 2, 3, 4] and sorted(c.index for c in result) == [0, 1, 2, 3]
    assert result.candidates[-1].index == 2  # "I like turtles." shares nothing with the reference
    ranked = result.to_ranked_results()
    assert ranked.query == PROMPT and ranked[0].index == 1


def test_a_reranker_as_reward_model_picks_the_plainly_right_answer():
    judge = RerankerJudge(rankwise.load("bm25"))
    result = select(PROMPT, CANDIDATES, criteria=["correctness"], reference=REFERENCE, judge=judge)
    assert result.best.index == 1
    assert (
        result.best.scores["correctness"] == 1.0
        and "against the reference answer" in result.best.reasons["correctness"]
    )
    helpful = select(
        PROMPT, CANDIDATES, criteria=["helpfulness"], judge="bm25"
    )  # preset name -> reward model
    assert helpful.best.index in (0, 1) and helpful.candidates[-1].index == 2
    assert helpful.best.criteria["helpfulness"].judge == "reranker:bm25"


def test_agreement_is_its_own_criterion_and_correctness_without_reference_asks_the_judge():
    answers = [
        "Paris is the capital of France.",
        "The capital of France is Paris.",
        "Paris, the capital of France.",
        "Berlin is the capital of Germany.",
    ]
    result = select("Capital of France?", answers, criteria=["agreement"], judge="token-f1")
    assert result.candidates[-1].index == 3
    assert result.best.criteria["agreement"].judge == "agreement:token-f1"
    bm25 = rankwise.load("bm25")
    with_rm = select("Capital of France?", answers, criteria=["agreement"], judge=RerankerJudge(bm25))
    assert with_rm.candidates[-1].index == 3 and with_rm.best.criteria["agreement"].judge == "agreement:bm25"
    # a re-ranker named for agreement is its similarity, never a relevance judge of the prompt
    named = select("Capital of France?", answers, criteria=["agreement"], judges={"agreement": bm25}, judge="llm")
    assert named.best.criteria["agreement"].judge == "agreement:bm25"
    own = Criterion("agreement", "Agrees.", judge=TokenF1Judge())
    assert select("q?", answers, criteria=[own], reference="Paris").candidates[-1].index == 3
    # without a reference, correctness is the judge's own verdict: a re-ranker ranks as rank() does
    direct = select("Which city is the capital of France?", answers, criteria=["correctness"], judge=bm25)
    assert [c.index for c in direct] == [r.index for r in bm25.rank("Which city is the capital of France?", answers)]
    assert direct.best.criteria["correctness"].judge == "reranker:bm25"
    # token F1 has nothing to compare with but the other candidates: it says so in its reasons
    f1 = select("Capital of France?", answers, criteria=["correctness"], judge="token-f1")
    assert f1.candidates[-1].index == 3 and "agreement:token-f1" in f1.best.reasons["correctness"]


def test_criteria_a_reranker_answers_alike_are_scored_once():
    calls = []

    class Counting(rankwise.BM25Reranker):
        def _score(self, query, documents, progress):
            calls.append(query)
            return super()._score(query, documents, progress)

    judge = Counting()
    result = select(PROMPT, CANDIDATES, criteria=["correctness", "helpfulness", "safety"], judge=judge)
    assert len(calls) == 1  # one query (the prompt) for all three criteria
    assert [c.index for c in result] == [r.index for r in judge.rank(PROMPT, CANDIDATES)]
    calls.clear()
    select(PROMPT, CANDIDATES, criteria=["correctness", "helpfulness"], reference=REFERENCE, judge=judge)
    assert calls == [REFERENCE, PROMPT]


def test_default_criteria_are_the_measured_ones():
    from rankwise.selection import BEST_OF_N_CRITERIA, DEFAULT_CRITERIA

    assert DEFAULT_CRITERIA == ("correctness",) and BEST_OF_N_CRITERIA == ("agreement",)
    result = select(PROMPT, CANDIDATES, judge="bm25")
    assert list(result.weights) == list(DEFAULT_CRITERIA)


def test_weights_and_custom_criteria_combine():
    brevity = Criterion("brevity", "The response is short.", judge=KeywordJudge("short"))
    answers = ["a long detailed right answer", "short wrong", "short right"]
    judges = {"correctness": KeywordJudge("right")}
    even = select("q?", answers, criteria=["correctness", brevity], judges=judges)
    assert even.best.index == 2 and even.best.score == pytest.approx(1.0)
    assert even.weights == {"correctness": 0.5, "brevity": 0.5}
    tilted = select(
        "q?", answers[:2], criteria=["correctness", brevity], weights={"brevity": 3}, judges=judges
    )
    assert tilted.best.index == 1 and tilted.best.score == pytest.approx(0.75)
    by_position = select("q?", answers[:2], criteria=["correctness", brevity], weights=[3, 1], judges=judges)
    assert by_position.best.index == 0
    assert set(even.best.reasons) == {"correctness", "brevity"}


def test_instruction_following_and_safety_names_and_errors():
    result = select("Say hi", ["hi"], criteria=["instruction-following", "safety"], judge=KeywordJudge("hi"))
    assert set(result.best.scores) == {"instruction_following", "safety"}
    with pytest.raises(InvalidInputError, match="unknown criterion 'speed'"):
        select("q", ["a"], criteria=["speed"], judge="token-f1")
    with pytest.raises(InvalidInputError, match="needs a description"):
        Criterion("tone")
    with pytest.raises(InvalidInputError, match="2 weights for 1 criteria"):
        select("q", ["a"], criteria=["correctness"], weights=[1, 2], judge="token-f1")
    with pytest.raises(InvalidInputError, match="not selected"):
        select("q", ["a"], criteria=["correctness"], weights={"safety": 1}, judge="token-f1")
    with pytest.raises(InvalidInputError, match="unknown judge"):
        select("q", ["a"], criteria=["safety"], judge="nonsense")
    assert len(select("q", [], criteria=["correctness"], judge="token-f1")) == 0


def test_metadata_and_ids_come_back():
    cands = [{"text": "100 degrees", "id": "a", "metadata": {"seed": 1}}, {"text": "50 degrees", "id": "b"}]
    best = select(PROMPT, cands, criteria=["correctness"], reference="100 degrees", judge=TokenF1Judge()).best
    assert best.document.id == "a" and best.document.metadata == {"seed": 1} and best.to_dict()["id"] == "a"


def test_preference_pairs_jsonl(tmp_path):
    results = [
        select(PROMPT, CANDIDATES, criteria=["correctness"], reference=REFERENCE, judge="token-f1"),
        select(
            "2+2?", ["4", "4"], criteria=["correctness"], reference="4", judge="token-f1"
        ),  # a tie: no pair
    ]
    path = tmp_path / "pairs.jsonl"
    pairs = preference_pairs(results, path)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines == pairs and len(pairs) == 1
    assert pairs[0]["chosen"] == CANDIDATES[1] and pairs[0]["rejected"] == "I like turtles."
    assert pairs[0]["margin"] > 0 and set(pairs[0]) >= {"prompt", "chosen", "rejected", "scores_chosen"}
    assert len(preference_pairs(results[0], strategy="best_vs_rest")) == 3
    assert len(preference_pairs(results[0], strategy="all")) == 6
    assert len(preference_pairs(results[0], strategy="all", min_margin=0.99)) <= 3
    preference_pairs(results, path, append=True)
    assert len(path.read_text().splitlines()) == 2
    with pytest.raises(InvalidInputError, match="strategy"):
        preference_pairs(results, strategy="random")


@pytest.mark.slow  # the real SmolLM2 (llama-cpp-python, .[llm-local])
def test_llm_judge_with_the_real_model(smollm2_client):
    judge = LLMJudge(smollm2_client, max_reason_tokens=16)
    result = select(
        PROMPT, CANDIDATES[:3], criteria=["correctness", "safety"], reference=REFERENCE, judge=judge
    )
    assert len(result) == 3
    for cand in result:
        for name in ("correctness", "safety"):
            score = cand.criteria[name]
            assert 0.0 <= score.score <= 1.0 and score.reason and score.judge == f"llm:{smollm2_client.model}"
    assert result.candidates[0].score >= result.candidates[-1].score


@pytest.mark.slow  # the real SmolLM2 (llama-cpp-python, .[llm-local])
def test_best_of_n_generates_distinct_samples_and_selects(smollm2_client):
    result = best_of_n(
        "Name a fruit that is red.",
        smollm2_client,
        n=3,
        criteria=["correctness"],
        reference="An apple or a strawberry.",
        judge="token-f1",
        max_tokens=12,
        temperature=1.0,
    )
    assert len(result) == 3 and all(c.text for c in result)
    assert len({c.text for c in result}) >= 2  # each sample has its own seed


def test_cli_select_writes_rankings_and_pairs(tmp_path, capsys):
    records = tmp_path / "in.jsonl"
    records.write_text(
        json.dumps({"prompt": PROMPT, "candidates": CANDIDATES, "reference": REFERENCE})
        + "\n"
        + json.dumps({"prompt": "Capital of France?", "candidates": ["Paris", "Rome"], "reference": "Paris"})
        + "\n"
    )
    out, pairs = tmp_path / "out.jsonl", tmp_path / "pairs.jsonl"
    code = main(
        [
            "select",
            str(records),
            "-o",
            str(out),
            "--criteria",
            "correctness",
            "--judge",
            "token-f1",
            "--pairs",
            str(pairs),
        ]
    )
    assert code == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows[0]["ranking"][0]["index"] == 1 and rows[1]["ranking"][0]["text"] == "Paris"
    assert rows[0]["ranking"][0]["reasons"]["correctness"].startswith("token F1")
    assert len(pairs.read_text().splitlines()) == 2 and "2 preference pairs" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "q"}) + "\n")
    assert main(["select", str(bad), "--judge", "token-f1"]) == 2
    assert "--n N" in capsys.readouterr().err


def test_agreement_judge_with_one_candidate():
    verdicts = AgreementJudge().judge(Criterion("agreement"), "q", ["only"], None)
    assert verdicts[0].score == 0.5
    with pytest.raises(InvalidInputError, match="similarity must be a RerankerJudge"):
        AgreementJudge("bm25")


def test_a_judge_that_breaks_its_contract_is_named():
    class Broken(Judge):
        name = "broken"

        def __init__(self, out):
            self.out = out

        def judge(self, criterion, prompt, responses, reference):
            return self.out

    with pytest.raises(InvalidInputError, match="judge broken returned 1 verdicts for 2 candidates"):
        select("q", ["a", "b"], criteria=["safety"], judge=Broken([Verdict(1.0, "")]))
    with pytest.raises(InvalidInputError, match="judge broken scored candidate 1 nan"):
        select("q", ["a", "b"], criteria=["safety"], judge=Broken([Verdict(1.0, ""), Verdict(float("nan"), "")]))
    with pytest.raises(InvalidInputError, match="return rankwise.selection.Verdict"):
        select("q", ["a"], criteria=["safety"], judge=Broken([0.5]))
    with pytest.raises(InvalidInputError, match="query_template"):
        RerankerJudge(rankwise.load("bm25"), query_template="{question}")
    with pytest.raises(InvalidInputError, match="max_reason_tokens"):
        LLMJudge("http://127.0.0.1:9/v1", max_reason_tokens=-1)


def test_cli_select_defaults_to_the_measured_criteria(tmp_path):
    records = tmp_path / "in.jsonl"
    docs = [{"title": "Boiling point", "text": "100 degrees Celsius at sea level.", "id": "w"}, "I like turtles."]
    records.write_text(json.dumps({"prompt": PROMPT, "candidates": docs}) + "\n")
    out = tmp_path / "out.jsonl"
    assert main(["select", str(records), "-o", str(out), "--judge", "bm25", "--no-progress"]) == 0
    row = json.loads(out.read_text())
    assert row["weights"] == {"correctness": 1.0}
    assert row["ranking"][0]["id"] == "w" and row["ranking"][0]["reasons"]["correctness"].startswith("bm25 scored")
    assert main(["select", str(records), "--judge", "bm25", "--criteria", ""]) == 2  # empty: refused, not defaulted


@pytest.mark.slow  # the real SmolLM2 (llama-cpp-python, .[llm-local])
def test_llm_judge_without_reasons_scores_the_same(smollm2_client):
    docs = [{"title": "Boiling", "text": t} for t in CANDIDATES[:3]]
    fast = select(PROMPT, docs, criteria=["helpfulness"], judge=LLMJudge(smollm2_client, max_reason_tokens=0))
    full = select(PROMPT, docs, criteria=["helpfulness"], judge=LLMJudge(smollm2_client, max_reason_tokens=4))
    assert [c.index for c in fast] == [c.index for c in full]
    assert [c.score for c in fast] == pytest.approx([c.score for c in full], abs=1e-9)
    assert all("no reason asked" in c.reasons["helpfulness"] for c in fast)
    result = best_of_n("Name a fruit that is red.", smollm2_client, n=3, max_tokens=8, temperature=1.0)
    assert list(result.weights) == ["agreement"]  # no LLM judge call: agreement compares the samples
    assert result.best.criteria["agreement"].judge == "agreement:token-f1"
