"""Prompt templates are data: bundled ones load and render; user files are validated for placeholders at load."""

from __future__ import annotations

import pytest

from rankwise.errors import InvalidInputError
from rankwise.llm import PromptTemplate, bundled_prompts, load_prompt

LISTWISE_OK = """# my prompt
--- system ---
Rank passages.
--- user ---
Query: {query}
{passages}
Answer with {num} identifiers like [1] > [2].
--- item ---
({rank}) {passage}
"""


def test_bundled_prompts_load_and_render():
    assert {"listwise", "pointwise", "judge", "judge_reference", "rag"} <= set(bundled_prompts())
    for name in bundled_prompts():
        assert load_prompt(name).kind in ("listwise", "pointwise", "judge", "judge_reference", "rag")
    t = load_prompt("listwise")
    items = "\n".join(t.render_item(rank=i, passage=p) for i, p in enumerate(["a {b}", "c"], start=1))
    msgs = t.render(query="q {x}", passages=items, num=2)
    assert msgs[0]["role"] == "system" and msgs[-1]["role"] == "user"
    assert "[1] a {b}" in msgs[-1]["content"] and "q {x}" in msgs[-1]["content"]  # values are never re-parsed


def test_user_file_overrides_and_is_validated(tmp_path):
    path = tmp_path / "listwise_custom.txt"
    path.write_text(LISTWISE_OK)
    t = load_prompt(path)
    assert t.kind == "listwise" and t.item == "({rank}) {passage}" and t.source == str(path)
    assert "Query: q" in t.render(query="q", passages="(1) x", num=1)[-1]["content"]


def test_prompt_dir_environment_overrides_a_bundled_name(tmp_path, monkeypatch):
    (tmp_path / "listwise.txt").write_text(LISTWISE_OK)
    monkeypatch.setenv("RANKWISE_PROMPT_DIR", str(tmp_path))
    assert load_prompt("listwise").item == "({rank}) {passage}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (LISTWISE_OK.replace("{query}", "{qeury}"), r"unknown placeholder\(s\) \['qeury'\]"),
        (LISTWISE_OK.replace("{passages}", ""), r"missing required placeholder\(s\) \['passages'\]"),
        (LISTWISE_OK.replace("({rank}) ", ""), "item section must use exactly"),
        (LISTWISE_OK.split("--- item ---")[0], "needs an '--- item ---' section"),
        (LISTWISE_OK.replace("{num}", "{num:>3}"), "must be a plain name"),
        (LISTWISE_OK.replace("{num}", "{num"), "bad placeholder syntax"),
        ("Rank these\n--- user ---\n{query} {passages}", "text before the first section header"),
        (LISTWISE_OK + "--- assistant ---\nok\n", "last message must be a user message"),
    ],
)
def test_bad_templates_fail_at_load_with_the_reason(text, message):
    with pytest.raises(InvalidInputError, match=message):
        PromptTemplate.from_string(text, "listwise", name="bad")


def test_unknown_names_and_kinds():
    with pytest.raises(InvalidInputError, match="unknown prompt 'nope'"):
        load_prompt("nope")
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_prompt("missing/file.txt")
    with pytest.raises(InvalidInputError, match="unknown prompt kind"):
        PromptTemplate.from_string(LISTWISE_OK, "weird")
    with pytest.raises(InvalidInputError, match="expected 'pointwise'"):
        load_prompt(load_prompt("listwise"), "pointwise")
    with pytest.raises(InvalidInputError, match="needs values"):
        load_prompt("pointwise").render(query="q")
