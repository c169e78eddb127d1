"""``rankwise models``: the presets, what each needs, and whether it runs offline here."""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", "-f", default="table", choices=("table", "json"))


def run(args: argparse.Namespace) -> int:
    from rankwise.registry import backends, presets

    extras = backends()
    rows = [
        {
            "name": p.name,
            "backend": p.backend,
            "extra": extras.get(p.backend, ""),
            "installed": p.available(),
            "offline": p.offline,
            "description": p.description,
        }
        for p in presets().values()
    ]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    print(f"{'name':<{width}}  {'backend':<13}  installed  offline  description")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['backend']:<13}  {'yes' if r['installed'] else 'no':<9}  "
              f"{'yes' if r['offline'] else 'hub':<7}  {r['description']}")
    print("\n'offline: hub' presets download weights from the Hugging Face hub on first use (or pass a local folder).")
    print("The default preset is not a cross-encoder because no trained cross-encoder ships in a PyPI package;")
    print("pick one with --model cross-encoder/ms-marco-MiniLM-L-6-v2 (or a local folder) where the hub is reachable.")
    return 0
