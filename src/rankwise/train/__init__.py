"""Training rankers from your own judgments: ``rankwise.train.ltr`` (LightGBM LambdaMART over re-ranker scores,
metadata and text features) and ``rankwise.train.cross_encoder`` (fine-tuning a cross-encoder).

Both are resolved on first access (PEP 562), so ``import rankwise.train`` imports neither LightGBM nor torch.

Example:
    >>> import rankwise.train
    >>> callable(rankwise.train.ltr)
    True
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> (module, attribute): imported when the name is first used
_LAZY: dict[str, tuple[str, str]] = {
    "ltr": ("rankwise.train.lambdamart.api", "ltr"),
    "cross_encoder": ("rankwise.train.finetune.fit", "train_cross_encoder"),
}

__all__ = ["cross_encoder", "ltr"]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'rankwise.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(target[0]), target[1])
    globals()[name] = value  # resolved once; no submodule is called ltr or cross_encoder, so nothing shadows it
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
