"""Lazy package attributes: a public name is imported from its module the first time it is read.

Packages use this so that ``import rankwise`` (and ``rankwise.llm``, ``rankwise.retrieval``) stay fast and
never import torch, httpx, FAISS or llama_cpp until a name that needs them is actually used.

Example:
    >>> table = by_name({"math": ("sqrt", "pi"), "json": ("dumps",)})
    >>> table
    {'sqrt': 'math', 'pi': 'math', 'dumps': 'json'}
    >>> namespace: dict[str, object] = {}
    >>> getattr_, dir_ = lazy_attributes("pkg", table, namespace, list(table))
    >>> getattr_("sqrt")(9.0), "sqrt" in namespace, dir_()
    (3.0, True, ['dumps', 'pi', 'sqrt'])
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def by_name(exports: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """``{module: names}`` turned into ``{name: module}``, in the order the names are listed."""
    return {name: module for module, names in exports.items() for name in names}


def lazy_attributes(
    package: str,
    table: Mapping[str, str],
    namespace: dict[str, Any],
    public: Iterable[str],
    subpackages: Iterable[str] = (),
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` (PEP 562) for ``package``.

    Args:
        package: the package's dotted name, used in the ``AttributeError`` message.
        table: public name -> the module that defines it.
        namespace: the package's ``globals()``; a resolved name is stored there, so the next read is a plain
            attribute lookup that never reaches ``__getattr__`` again.
        public: the names ``dir(package)`` lists (usually ``__all__``).
        subpackages: submodules of ``package`` that reading ``package.name`` imports, so ``rankwise.train.ltr``
            works after a plain ``import rankwise`` (as it would for a package that imported them eagerly).
    """
    nested = frozenset(subpackages)
    listed = sorted({*public, *nested})

    def __getattr__(name: str) -> Any:
        if name in nested:
            value = importlib.import_module(f"{package}.{name}")
        elif name in table:
            value = getattr(importlib.import_module(table[name]), name)
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return list(listed)

    return __getattr__, __dir__
