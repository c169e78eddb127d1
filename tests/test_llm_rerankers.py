"""Listwise and pointwise LLM re-rankers with a scripted chat backend: the window arithmetic, the repairs and
the reports are checked exactly (the end-to-end runs on the real SmolLM2 are in test_llm_local.py /
test_llm_server.py)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

import rankwise
from rankwise.errors import InvalidInputError
from rankwise.llm import ChatClient, ChatResult, TokenLogprob
from rankwise.rerankers.llm_listwise import ListwiseLLMReranker, ListwiseReport, window_starts
from rankwise.rerankers.llm_pointwise import PointwiseLLMReranker

_ITEM = re.compile(r"^\[(\d+)\] .*?score=(\d+)", re.MULTILINE)


class OracleClient(ChatClient):
    """A real ChatClient whose "model" ranks numbered passages by the ``score=N`` they contain.

    ``mangle`` turns the clean ranking (a list of 1-based ids) into the reply text, to play a sloppy model.
    """

    model = "oracle"

    def __init__(self, mangle=None, concurrency: int = 1) -> None:
        self.mangle = mangle or (lambda ids: " > ".join(f"[{i}]" for i in ids))
        self.concurrency = concurrency
        self.prompts: list[str] = []

    def chat(
        self, messages, *, max_tokens=256, temperature=0.0, logprobs=None, stop=None, **params
    ) -> ChatResult:
        text = messages[-1]["content"]
        self.prompts.append(text)
        items = [(int(k), int(s)) for k, s in _ITEM.findall(text)]
        ranked = [k for k, _ in sorted(items, key=lambda kv: -kv[1])]
        return ChatResult(
            self.mangle(ranked),
            usage={"prompt_tokens": len(text) // 4, "completion_tokens": 3},
            model=self.model,
        )


def docs(scores: Sequence[int]) -> list[str]:
    return [f"passage {i} score={s}" for i, s in enumerate(scores)]


def test_window_starts_cover_the_list_back_to_front():
    assert window_starts(100, 20, 10) == [80, 70, 60, 50, 40, 30, 20, 10, 0]
    assert window_starts(25, 20, 10) == [5, 0]
    assert window_starts(20, 20, 10) == [0] and window_starts(0, 20, 10) == []
    for n in range(1, 60):
        starts = window_starts(n, 7, 3)
        covered = {i for s in starts for i in range(s, min(s + 7, n))}
        assert covered == set(range(n)) and starts[-1] == 0 and starts == sorted(starts, reverse=True)


def test_sliding_windows_bring_the_best_to_the_top():
    scores = [
        3,
        1,
        4,
        1,
        5,
        9,
        2,
        6,
        5,
        3,
        5,
        8,
        9,
        7,
        9,
        3,
        2,
        3,
        8,
        4,
        6,
        2,
        6,
        4,
        3,
    ]  # best ones spread everywhere
    reranker = ListwiseLLMReranker(client=OracleClient(), window=6, step=3)
    results, report = reranker.rank_with_report("q", docs(scores))
    got = [scores[r.index] for r in results]
    # one back-to-front pass sorts the top (window - step) exactly
    assert got[:3] == sorted(scores, reverse=True)[:3]
    assert sorted(r.index for r in results) == list(range(len(scores)))
    assert report.windows == report.calls == len(window_starts(len(scores), 6, 3))
    assert report.repaired_windows == 0 and report.repair_rate == 0.0
    assert results.scores == sorted(results.scores, reverse=True) and results.model == "llm-listwise:oracle"
    assert reranker.rank("q", docs(scores)).to_dicts() == results.to_dicts()  # plain interface, same ranking


def test_a_single_window_sorts_everything():
    scores = [2, 7, 1, 8, 2, 8, 1]
    results = ListwiseLLMReranker(client=OracleClient()).rank("q", docs(scores))
    assert [scores[r.index] for r in results] == sorted(scores, reverse=True)


def test_sloppy_replies_are_repaired_and_reported():
    def sloppy(ids):  # repeat the first id, add an id that does not exist, drop the last two
        return " > ".join(f"[{i}]" for i in [ids[0], ids[0], 99, *ids[1:-2]])

    client = OracleClient(mangle=sloppy)
    reranker = ListwiseLLMReranker(client=client, window=5, step=2)
    results, report = reranker.rank_with_report("q", docs([1, 2, 3, 4, 5, 6, 7, 8, 9]))
    assert sorted(r.index for r in results) == list(range(9))
    windows = len(window_starts(9, 5, 2))
    assert report.windows == windows and report.repaired_windows == windows and report.repair_rate == 1.0
    assert (report.duplicates, report.out_of_range, report.missing) == (windows, windows, 2 * windows)
    assert len(report.replies) == windows and "[99]" in report.replies[0]
    assert report.to_dict()["repair_rate"] == 1.0


def test_unparseable_replies_keep_the_previous_order():
    client = OracleClient(mangle=lambda ids: "Sorry, I cannot help with that.")
    results, report = ListwiseLLMReranker(client=client, window=4, step=2).rank_with_report(
        "q", docs([1, 2, 3, 4, 5])
    )
    assert [r.index for r in results] == [0, 1, 2, 3, 4]
    assert report.unparseable_windows == report.windows == 2


def test_passages_are_cut_to_the_token_budget_and_fields_are_used():
    client = OracleClient()
    long_doc = {"text": "score=1 " + "word " * 500, "title": "A title"}
    ListwiseLLMReranker(client=client, max_passage_tokens=20).rank("q", [long_doc, "short score=2"])
    prompt = client.prompts[-1]
    assert "A title" in prompt and prompt.count("word") <= 20


def test_totals_add_up_across_threads():
    reranker = ListwiseLLMReranker(client=OracleClient(), window=4, step=2)
    with ThreadPoolExecutor(4) as pool:
        reports = list(pool.map(lambda i: reranker.rank_with_report(f"q{i}", docs(range(10)))[1], range(8)))
    totals = reranker.totals()
    assert totals.queries == 8 and totals.windows == sum(r.windows for r in reports)
    assert totals.prompt_tokens == sum(r.prompt_tokens for r in reports) and totals.replies == ()


def test_listwise_contract_and_argument_checks():
    reranker = ListwiseLLMReranker(client=OracleClient())
    empty, report = reranker.rank_with_report("q", [])
    assert len(empty) == 0 and report.windows == 0
    one, report = reranker.rank_with_report("q", [{"text": "only score=1", "id": "x", "metadata": {"k": 1}}])
    assert one[0].document.id == "x" and one[0].document.metadata == {"k": 1} and report.calls == 0
    assert len(reranker.rank("q", docs([1, 2, 3]), top_k=2)) == 2
    with pytest.raises(InvalidInputError, match="step"):
        ListwiseLLMReranker(client=OracleClient(), window=10, step=10)
    with pytest.raises(InvalidInputError, match="window"):
        ListwiseLLMReranker(client=OracleClient(), window=1)
    with pytest.raises(InvalidInputError, match="query"):
        reranker.rank("", ["a"])
    assert isinstance(ListwiseReport() + ListwiseReport(windows=2), ListwiseReport)


# -- pointwise
# --------------------------------------------------------------------------------------------------------
class VerdictClient(ChatClient):
    """A real ChatClient that answers yes/no with logprobs given by ``table`` (passage keyword -> logprobs)."""

    model = "verdicts"
    concurrency = 4

    def __init__(self, table: dict[str, dict[str, float] | None], text: str = "yes") -> None:
        self.table, self.text, self.calls = table, text, []

    def chat(
        self, messages, *, max_tokens=256, temperature=0.0, logprobs=None, stop=None, **params
    ) -> ChatResult:
        self.calls.append({"max_tokens": max_tokens, "logprobs": logprobs, "temperature": temperature})
        content = messages[-1]["content"]
        key = next(k for k in self.table if k in content)
        lp = self.table[key]
        tokens = None if lp is None else [TokenLogprob(max(lp, key=lp.get), max(lp.values()), lp)]
        return ChatResult(
            self.text if lp is None else max(lp, key=lp.get),
            logprobs=tokens,
            usage={"prompt_tokens": 10, "completion_tokens": 1},
            model=self.model,
        )


def test_pointwise_scores_are_p_yes_from_logprobs():
    table = {
        "alpha": {"Yes": math.log(0.6), "No": math.log(0.2), "Maybe": math.log(0.2)},
        "beta": {" no": math.log(0.9), "yes": math.log(0.1)},
        "gamma": {"Hello": -0.1},
    }
    client = VerdictClient(table)
    reranker = PointwiseLLMReranker(client=client, top_logprobs=7)
    results, report = reranker.rank_with_report("q", ["beta doc", "alpha doc", "gamma doc"])
    by_text = {r.text: r.score for r in results}
    assert by_text["alpha doc"] == pytest.approx(0.75) and by_text["beta doc"] == pytest.approx(0.1)
    assert by_text["gamma doc"] == 0.5 and results[0].text == "alpha doc"
    assert (report.from_logprobs, report.no_verdict, report.calls, report.documents) == (2, 1, 3, 3)
    assert all(c == {"max_tokens": 1, "logprobs": 7, "temperature": 0.0} for c in client.calls)


def test_pointwise_falls_back_to_the_reply_text_without_logprobs():
    client = VerdictClient({"good": None, "bad": None})
    client.text = "Yes."
    results, report = PointwiseLLMReranker(client=client).rank_with_report("q", ["bad one", "good one"])
    assert results.scores == [1.0, 1.0] and report.from_text == 2


def test_registry_knows_the_llm_backends():
    assert {"llm-listwise", "llm-pointwise"} <= set(rankwise.backends())
    assert {"smollm2-listwise", "smollm2-pointwise"} <= set(rankwise.presets())
    reranker = rankwise.load("x", backend="llm-listwise", client=OracleClient(), name="custom")
    assert isinstance(reranker, ListwiseLLMReranker) and reranker.name == "custom"


def test_client_options_reach_an_http_client():
    reranker = PointwiseLLMReranker("some-model", base_url="http://127.0.0.1:9/v1", max_retries=0)
    assert reranker.client.model == "some-model" and reranker.client.base_url == "http://127.0.0.1:9/v1"
    assert reranker.name == "llm-pointwise:some-model"
