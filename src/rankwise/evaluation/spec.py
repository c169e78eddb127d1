"""Re-ranker specifications: one string (or JSON object) that says which re-ranker to build, with its options.

Grammar (the same on the command line and in the API)::

    SPEC    = TARGET [":" BACKEND] [":" OPTIONS]  |  JSON-object
    TARGET  = a preset (`rankwise models`), a backend name (built with no model: fusion, bm25,
              metadata-score), a model name, or a local folder
    OPTIONS = KEY=VALUE [";" KEY=VALUE ...]
    VALUE   = JSON when it parses (1.5, true, "x", [1, 2], {...}), else a comma-separated list (a,b),
              else a string

Examples::

    bm25                                            a preset
    default:weights=1,2                             a preset with an option overridden
    minilm-bi-encoder:max_length=512;fields=text    a preset with two options
    cross-encoder/ms-marco-MiniLM-L-6-v2:onnx       a model name and a backend
    fusion:members=bm25,minilm-bi-encoder;method=rrf
    fusion:members=metadata-score,minilm-bi-encoder;weights=[1,2]
    cascade:first-stage-score:30,hybrid             a cascade: stages NAME:KEEP (the last may keep all)
    {"backend": "cascade", "stages": [["bm25", 100], [{"name": "minilm-bi-encoder", "max_length": 512}, 30]]}
    {"backend": "fusion", "members": ["bm25", {"name": "minilm-bi-encoder", "max_length": 512}]}

The segment that holds the first ``=`` starts the options, so ``TARGET:BACKEND`` and ``TARGET:OPTIONS`` cannot
be confused. Fusion ``members`` are specs themselves (strings or JSON objects), so a member can carry options
in JSON. In a JSON object the keys ``name``, ``backend`` and ``label`` (the name shown in reports) are
reserved; every other key is an option.

Example:
    >>> s = parse_spec("fusion:members=bm25,minilm-bi-encoder;method=rrf")
    >>> s.name, s.backend, s.options
    ('fusion', None, {'members': ['bm25', 'minilm-bi-encoder'], 'method': 'rrf'})
    >>> parse_spec("my/model:onnx:quantize=int8;batch_size=16").options
    {'quantize': 'int8', 'batch_size': 16}
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rankwise.errors import InvalidInputError
from rankwise.rerankers.base import Reranker

SpecLike = str | Mapping[str, Any] | Reranker
_RESERVED = ("name", "backend", "label")


@dataclass(frozen=True)
class RerankerSpec:
    """A parsed specification; :meth:`build` makes the re-ranker."""

    label: str
    name: str | None
    backend: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Reranker:
        """Build the re-ranker (fusion members are built through :func:`build_reranker` first).

        Raises:
            InvalidInputError: an option the backend does not take, or a value of the wrong type.
        """
        try:
            return _load(self.name, self.backend, self.options)
        except (TypeError, InvalidInputError) as exc:  # unknown option, a value of the wrong type: name the spec
            raise InvalidInputError(
                f"re-ranker spec {self.label!r}: {str(exc).rstrip('.')}; check the option names and values."
            ) from exc

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "name": self.name,
            "backend": self.backend,
            "options": _jsonable(self.options),
        }


def _split_top(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside brackets, braces and double quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif not quoted and ch in "[{":
            depth += 1
        elif not quoted and ch in "]}":
            depth -= 1
        elif not quoted and depth == 0 and ch == sep:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def parse_value(raw: str) -> Any:
    """JSON when it parses, else a comma-separated list (items parsed the same way), else the string itself.

    Example:
        >>> parse_value("0.5"), parse_value("a,b"), parse_value("[1, 2]"), parse_value("text")
        (0.5, ['a', 'b'], [1, 2], 'text')
    """
    raw = raw.strip()
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        pass
    items = _split_top(raw, ",")
    if len(items) > 1:
        return [parse_value(item) for item in items]
    return raw


def parse_options(text: str, spec: str = "") -> dict[str, Any]:
    """``"k1=1.2;b=0.75"`` -> ``{"k1": 1.2, "b": 0.75}``."""
    options: dict[str, Any] = {}
    for item in _split_top(text, ";"):
        if not item.strip():
            continue
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise InvalidInputError(
                f"re-ranker spec {spec!r}: option {item!r} must look like KEY=VALUE (KEY a Python name), "
                "options separated by ';', e.g. bm25:k1=1.2;b=0.75."
            )
        options[key] = parse_value(raw)
    return options


def parse_spec(spec: str | Mapping[str, Any]) -> RerankerSpec:
    """Parse a spec string or JSON object (see the module docs). Nothing is built or imported.

    Raises:
        InvalidInputError: an empty spec, bad JSON, an option without ``=``, or more than TARGET:BACKEND
        before options.
    """
    if isinstance(spec, Mapping):
        data = dict(spec)
        label = data.pop("label", None)
        name, backend = data.pop("name", None), data.pop("backend", None)
        if name is None and backend is None:
            raise InvalidInputError(
                f"re-ranker spec {spec!r} needs a 'name' (preset or model) or a 'backend'."
            )
        shown = label or json.dumps(_jsonable(dict(spec)), sort_keys=True)
        return RerankerSpec(label=str(shown), name=name, backend=backend, options=data)
    if not isinstance(spec, str) or not spec.strip():
        raise InvalidInputError(
            f"a re-ranker spec must be a non-empty string or a JSON object, got {spec!r}."
        )
    text = spec.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"re-ranker spec {text!r} is not valid JSON ({exc.msg}).") from exc
        parsed = parse_spec(data)
        return parsed if "label" in data else RerankerSpec(text, parsed.name, parsed.backend, parsed.options)
    parts = text.split(":")
    if parts[0].strip() == "cascade" and len(parts) > 1 and "=" not in parts[1]:  # cascade:bm25:100,default:30
        return RerankerSpec(label=text, name="cascade", options={"stages": text.split(":", 1)[1]})
    first_option = next((i for i, p in enumerate(parts) if "=" in p), len(parts))
    head, options_text = parts[:first_option], ":".join(parts[first_option:])
    if not head or len(head) > 2 or not all(h.strip() for h in head):
        raise InvalidInputError(
            f"re-ranker spec {text!r} must be TARGET[:BACKEND][:KEY=VALUE;...], e.g. 'bm25', "
            "'my/model:onnx', 'default:weights=1,2'."
        )
    options = parse_options(options_text, text) if options_text else {}
    return RerankerSpec(
        label=text, name=head[0].strip(), backend=head[1].strip() if len(head) == 2 else None, options=options
    )


def build_reranker(spec: SpecLike) -> Reranker:
    """Build a re-ranker from a spec string, a JSON-like mapping, or return a :class:`Reranker` as is.

    Example:
        >>> build_reranker("bm25:k1=1.2;b=0.75").k1
        1.2
    """
    if isinstance(spec, Reranker):
        return spec
    return parse_spec(spec).build()


def _load(name: str | None, backend: str | None, options: dict[str, Any]) -> Reranker:
    from rankwise import registry

    options = dict(options)
    if "members" in options:  # fusion members are specs too
        members = options["members"]
        if isinstance(members, (str, Mapping)) or not isinstance(members, (list, tuple)):
            raise InvalidInputError(
                f"members must be a list of re-ranker specs (two or more), got {members!r}."
            )
        options["members"] = [build_reranker(m) for m in members]
    if "stages" in options:  # cascade stages are specs too, each with its keep
        options["stages"] = _build_stages(options["stages"])
    presets, backends = registry.presets(), registry.backends()
    if name is not None and name in presets:
        return registry.load(name, backend=backend, **options)
    if name is not None and backend is None and name in backends:
        backend, name = name, None
    if name is None:
        return _backend_only(registry.backend_factory(backend), backend, options)
    return registry.load(name, backend=backend, **options)


def _build_stages(stages: Any) -> list[tuple[Reranker, int | None]]:
    """Cascade stages (``"SPEC:KEEP"`` texts, ``[SPEC, KEEP]`` pairs, SPEC a string or JSON object), each built."""
    from rankwise.rerankers.cascade import parse_stages

    if isinstance(stages, (list, tuple)):
        stages = [
            (build_reranker(s[0]), s[1]) if isinstance(s, (list, tuple)) and len(s) == 2 and isinstance(s[0], Mapping)
            else s
            for s in stages
        ]
    return [(m if isinstance(m, Reranker) else build_reranker(m), k) for m, k in parse_stages(stages)]


def _backend_only(factory: Any, backend: str, options: dict[str, Any]) -> Reranker:
    try:
        inspect.signature(factory).bind(**options)
    except TypeError as exc:
        raise InvalidInputError(
            f"backend {backend!r} cannot be built from options {sorted(options)} alone ({exc}); "
            f"name a model as MODEL:{backend}, or check the option names."
        ) from None
    return factory(**options)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Reranker):
        return value.name
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
