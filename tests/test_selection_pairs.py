"""Preference pairs keep the format TRL's DPO trainer reads: a file written by ``preference_pairs`` loads with
Hugging Face ``datasets`` and has string ``prompt``, ``chosen`` and ``rejected`` columns (TRL's standard
"preference" type: https://huggingface.co/docs/trl/dataset_formats), one row per pair, exactly as written."""

from __future__ import annotations

import json

import pytest

from rankwise.selection import Criterion, Judge, Verdict, preference_pairs, select

datasets = pytest.importorskip("datasets", reason="pip install -e '.[test]' (datasets checks the DPO format)")

TRL_PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")


class Length(Judge):
    """Deterministic: longer answers score higher (scores differ, so every ordered pair has a margin)."""

    name = "length"

    def judge(self, criterion, prompt, responses, reference):
        top = max(len(r) for r in responses) or 1
        return [Verdict(len(r) / top, f"{len(r)} characters") for r in responses]


def selections():
    brevity = Criterion("brevity", "Short answers.", judge=Length())
    return [
        select("2 + 2 = ?", ["4", "four, of course", "22"], criteria=["correctness"], reference="4",
               judge="token-f1"),
        select("Name a colour.", ["Red.", "A deep shade of blue.", "Ünïcödé: a deep grün 🟩, not blue"],
               criteria=[brevity]),
        select("Capital of France?", [{"text": "Paris", "id": "a", "title": "France"}, "Lyon", "Marseille"],
               criteria=["correctness", "safety"], judge=Length()),
    ]


@pytest.mark.parametrize("strategy", ["best_vs_worst", "best_vs_rest", "all"])
def test_written_pairs_load_with_datasets_in_trls_preference_format(tmp_path, strategy):
    path = tmp_path / "pairs.jsonl"
    pairs = preference_pairs(selections(), path, strategy=strategy)
    assert pairs, "each selection has distinct scores, so pairs exist"
    data = datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))
    assert set(TRL_PREFERENCE_COLUMNS) <= set(data.column_names)
    for column in TRL_PREFERENCE_COLUMNS:
        assert data.features[column].dtype == "string", column  # standard (not conversational) format
    assert data.num_rows == len(pairs)
    assert [dict(zip(TRL_PREFERENCE_COLUMNS, (r[c] for c in TRL_PREFERENCE_COLUMNS))) for r in data] == [
        {c: p[c] for c in TRL_PREFERENCE_COLUMNS} for p in pairs
    ]
    assert all(r["chosen"] != r["rejected"] and r["prompt"] for r in data)
    assert all(r["score_chosen"] > r["score_rejected"] for r in data)
    assert "Ünïcödé: a deep grün 🟩, not blue" in {r["chosen"] for r in data}
    # the file is plain JSONL that any other loader reads the same way
    assert [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] == pairs
