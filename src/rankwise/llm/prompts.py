"""Prompt templates as data: text files checked for their placeholders when they are loaded.

A template file holds chat messages, each under a header line ``--- system ---``, ``--- user ---`` or
``--- assistant ---``, and at most one ``--- item ---`` section that renders one list entry (a numbered
passage) for the ``{passages}`` placeholder. Lines starting with ``#`` before the first header are comments.
Placeholders are ``{name}`` (``str.format``; write ``{{`` and ``}}`` for literal braces).

Each template has a *kind* that fixes which placeholders it must use and which it may use, so a typo such as
``{qeury}`` fails at load time, not halfway through a benchmark:

==============  ==================================  ============================  ================
kind            required                            optional                      item section
==============  ==================================  ============================  ================
listwise        query, passages                     num                           rank, passage
pointwise       query, passage                      title                         --
judge           prompt, response                    criterion, description,       --
                                                    reference
judge_reference prompt, response, reference         criterion, description        --
==============  ==================================  ============================  ================

The bundled templates live in ``rankwise/prompts/<name>.txt``. Override one by passing a file path (or a
:class:`PromptTemplate`) wherever a ``prompt=`` is accepted, or put ``<name>.txt`` in the folder named by the
``RANKWISE_PROMPT_DIR`` environment variable.

Example:
    >>> from rankwise.llm import load_prompt
    >>> t = load_prompt("pointwise")
    >>> t.render(query="what is bm25", passage="BM25 is a ranking function.")[-1]["role"]
    'user'
"""

from __future__ import annotations

import os
import re
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rankwise.errors import InvalidInputError
from rankwise.llm.base import ChatMessage

_ROLES = ("system", "user", "assistant")
_HEADER = re.compile(r"^---\s*(system|user|assistant|item)\s*---\s*$")


@dataclass(frozen=True)
class PromptSpec:
    """Which placeholders a kind of template must and may use."""

    required: frozenset[str]
    optional: frozenset[str] = frozenset()
    item_required: frozenset[str] = frozenset()

    @property
    def has_item(self) -> bool:
        return bool(self.item_required)


SPECS: dict[str, PromptSpec] = {
    "listwise": PromptSpec(
        frozenset({"query", "passages"}), frozenset({"num"}), frozenset({"rank", "passage"})
    ),
    "pointwise": PromptSpec(frozenset({"query", "passage"}), frozenset({"title"})),
    "judge": PromptSpec(
        frozenset({"prompt", "response"}), frozenset({"criterion", "description", "reference"})
    ),
    "judge_reference": PromptSpec(
        frozenset({"prompt", "response", "reference"}), frozenset({"criterion", "description"})
    ),
    "rag": PromptSpec(frozenset({"question", "passages"}), frozenset({"num"}), frozenset({"number", "passage"})),
}


@dataclass(frozen=True)
class PromptTemplate:
    """A validated chat template.

    Attributes:
        name: the template's name (the file stem for files).
        kind: one of :data:`SPECS`' keys.
        messages: ``(role, text)`` pairs with ``{placeholders}``.
        item: the per-item text for list templates (``listwise``), else None.
        source: where it was loaded from.
    """

    name: str
    kind: str
    messages: tuple[tuple[str, str], ...]
    item: str | None = None
    source: str = "<string>"

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_string(
        cls, text: str, kind: str, *, name: str = "custom", source: str = "<string>"
    ) -> PromptTemplate:
        """Parse the file format described in the module docstring and validate it for ``kind``."""
        messages: list[tuple[str, str]] = []
        item: str | None = None
        role: str | None = None
        lines: list[str] = []

        def flush() -> None:
            nonlocal item
            if role is None:
                return
            body = "\n".join(lines).strip("\n")
            if role == "item":
                if item is not None:
                    raise InvalidInputError(f"prompt {source}: more than one '--- item ---' section.")
                item = body
            else:
                messages.append((role, body))

        for line in text.splitlines():
            m = _HEADER.match(line)
            if m:
                flush()
                role, lines = m.group(1), []
            elif role is None:
                if line.strip() and not line.lstrip().startswith("#"):
                    raise InvalidInputError(
                        f"prompt {source}: text before the first section header ({line[:60]!r}); start each message "
                        "with a line such as '--- user ---' (comments before it start with '#')."
                    )
            else:
                lines.append(line)
        flush()
        return cls(name=name, kind=kind, messages=tuple(messages), item=item, source=source)

    @property
    def placeholders(self) -> frozenset[str]:
        """Every placeholder the messages use."""
        return frozenset(n for _, t in self.messages for n in _fields(t, self.source))

    def render(self, **values: Any) -> list[ChatMessage]:
        """The chat messages with ``values`` filled in (every placeholder used must be given)."""
        missing = sorted(self.placeholders - values.keys())
        if missing:
            raise InvalidInputError(f"prompt {self.name!r} needs values for {missing}; got {sorted(values)}.")
        return [{"role": r, "content": t.format(**values)} for r, t in self.messages]

    def render_item(self, **values: Any) -> str:
        """One list entry (the ``item`` section) with ``values`` filled in."""
        if self.item is None:
            raise InvalidInputError(f"prompt {self.name!r} ({self.kind}) has no item section.")
        return self.item.format(**values)


def _fields(text: str, source: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise InvalidInputError(
            f"prompt {source}: bad placeholder syntax ({exc}); write literal braces as '{{{{' and '}}}}'."
        ) from exc
    names = []
    for _, name, spec, conv in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conv:
            raise InvalidInputError(
                f"prompt {source}: placeholder {{{name}{'!' + conv if conv else ''}{':' + spec if spec else ''}}} "
                "must be a plain name such as {query}; write literal braces as '{{' and '}}'."
            )
        names.append(name)
    return names


def _validate(t: PromptTemplate) -> None:
    spec = SPECS.get(t.kind)
    if spec is None:
        raise InvalidInputError(f"unknown prompt kind {t.kind!r}; valid kinds: {', '.join(sorted(SPECS))}.")
    if not t.messages:
        raise InvalidInputError(f"prompt {t.source}: no messages; add a '--- user ---' section.")
    for role, _ in t.messages:
        if role not in _ROLES:
            raise InvalidInputError(f"prompt {t.source}: unknown role {role!r}; use one of {_ROLES}.")
    if t.messages[-1][0] != "user":
        raise InvalidInputError(f"prompt {t.source}: the last message must be a user message.")
    used = t.placeholders
    allowed = spec.required | spec.optional
    unknown = sorted(used - allowed)
    if unknown:
        raise InvalidInputError(
            f"prompt {t.source} ({t.kind}): unknown placeholder(s) {unknown}; allowed: {sorted(allowed)}."
        )
    missing = sorted(spec.required - used)
    if missing:
        raise InvalidInputError(f"prompt {t.source} ({t.kind}): missing required placeholder(s) {missing}.")
    if spec.has_item:
        if t.item is None:
            raise InvalidInputError(
                f"prompt {t.source} ({t.kind}): needs an '--- item ---' section using {sorted(spec.item_required)}."
            )
        item_used = set(_fields(t.item, t.source))
        if item_used != spec.item_required:
            raise InvalidInputError(
                f"prompt {t.source} ({t.kind}): the item section must use exactly {sorted(spec.item_required)}, "
                f"uses {sorted(item_used)}."
            )
    elif t.item is not None:
        raise InvalidInputError(f"prompt {t.source} ({t.kind}): this kind takes no '--- item ---' section.")


def bundled_prompts() -> list[str]:
    """Names of the templates shipped with rankwise."""
    folder = resources.files("rankwise") / "prompts"
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".txt"))


def load_prompt(prompt: str | os.PathLike[str] | PromptTemplate, kind: str | None = None) -> PromptTemplate:
    """A template from a :class:`PromptTemplate`, a file path, or the name of a bundled template.

    Args:
        prompt: a template, a path to a ``.txt`` file, or a bundled name (``rankwise.llm.bundled_prompts()``).
        kind: the kind to validate against; defaults to the bundled name when ``prompt`` is one.

    Raises:
        InvalidInputError: unknown name, unreadable file, or placeholders that do not fit the kind.
    """
    if isinstance(prompt, PromptTemplate):
        if kind is not None and prompt.kind != kind:
            raise InvalidInputError(
                f"prompt {prompt.name!r} is a {prompt.kind!r} template; expected {kind!r}."
            )
        return prompt
    text_prompt = os.fspath(prompt)
    path = Path(text_prompt)
    if path.suffix == ".txt" or os.sep in text_prompt or path.is_file():
        if not path.is_file():
            raise InvalidInputError(f"prompt file {text_prompt!r} does not exist.")
        return _from_file(path, kind or _kind_for(path.stem), path.stem)
    user_dir = os.environ.get("RANKWISE_PROMPT_DIR")
    if user_dir and (Path(user_dir) / f"{text_prompt}.txt").is_file():
        return _from_file(Path(user_dir) / f"{text_prompt}.txt", kind or _kind_for(text_prompt), text_prompt)
    resource = resources.files("rankwise") / "prompts" / f"{text_prompt}.txt"
    if not resource.is_file():
        raise InvalidInputError(
            f"unknown prompt {text_prompt!r}; bundled prompts: {', '.join(bundled_prompts())}, or pass a .txt path."
        )
    return PromptTemplate.from_string(
        resource.read_text(encoding="utf-8"),
        kind or _kind_for(text_prompt),
        name=text_prompt,
        source=f"rankwise/prompts/{text_prompt}.txt",
    )


def _kind_for(name: str) -> str:
    for kind in sorted(SPECS, key=len, reverse=True):
        if name == kind or name.startswith((kind + "_", kind + "-")):
            return kind
    raise InvalidInputError(
        f"cannot tell which kind of prompt {name!r} is; pass kind= (one of {', '.join(sorted(SPECS))})."
    )


def _from_file(path: Path, kind: str, name: str) -> PromptTemplate:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(f"cannot read prompt file {str(path)!r}: {exc}.") from exc
    return PromptTemplate.from_string(text, kind, name=name, source=str(path))
