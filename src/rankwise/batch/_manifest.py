"""The manifest of a batch job (``out_dir/manifest.json``): what the output was made from, so ``--resume`` can only
continue the same job.

The settings that decide the output are recorded when the job starts: the input (format, path, run file, fields,
and each input file's size and modification time), the model, backend and options, ``top_k`` and ``shard_pairs``.
Resuming with any of them different would mix two jobs' rows in one folder, so it is refused, naming the setting.
The engine and the number of actors are not among them: every engine writes the same files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rankwise.batch._files import TMP_SUFFIX, atomic_path
from rankwise.batch.inputs import InputSource
from rankwise.errors import InvalidInputError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
# The settings compared on resume, in the order they are checked (the first difference is the one reported).
SETTINGS: tuple[str, ...] = ("input", "run", "input_format", "fields", "input_files", "model", "backend", "options",
                             "top_k", "shard_pairs")


class SettingsMismatchError(InvalidInputError):
    """``resume=True`` with a setting that differs from the job in the output folder (``setting`` names it)."""

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


def _canonical(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples become lists, keys sorted), so a resume compares like with like."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def job_settings(
    source: InputSource,
    model: str,
    backend: str | None,
    options: Mapping[str, Any],
    top_k: int | None,
    shard_pairs: int,
) -> dict[str, Any]:
    """The settings that decide a job's output (see the module's docstring)."""
    files = []
    for path in source.files():
        stat = path.stat()
        files.append({"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return _canonical(
        {
            "input": source.path,
            "run": source.run,
            "input_format": source.kind,
            "fields": None if source.fields is None else list(source.fields),
            "input_files": files,
            "model": model,
            "backend": backend,
            "options": dict(options),
            "top_k": top_k,
            "shard_pairs": shard_pairs,
        }
    )


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"{str(path)!r} cannot be read ({exc}); it is not a batch job's manifest.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
        raise InvalidInputError(f"{str(path)!r} is not a batch job's manifest (no settings).")
    return data


def write_manifest(out_dir: Path, data: Mapping[str, Any]) -> None:
    with atomic_path(out_dir / MANIFEST) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def start_job(out_dir: Path, settings: Mapping[str, Any], resume: bool) -> dict[str, Any]:
    """The manifest of the job about to run in ``out_dir`` (written when new).

    Raises:
        InvalidInputError: ``out_dir`` holds another job and ``resume`` is False, or is a non-empty folder that is
            not a batch output.
        SettingsMismatchError: ``resume`` with a setting that differs from the job in ``out_dir``.
    """
    existing = read_manifest(out_dir)
    if existing is not None:
        if not resume:
            raise InvalidInputError(
                f"output folder {str(out_dir)!r} already holds a batch job ({MANIFEST}); pass resume=True to "
                "continue it, or choose a new output folder."
            )
        check_same(existing["settings"], settings, out_dir)
        return existing
    check_folder(out_dir)
    manifest = {
        "format_version": FORMAT_VERSION,
        "settings": dict(settings),
        "status": "running",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_manifest(out_dir, manifest)
    return manifest


def check_folder(out_dir: Path) -> None:
    """Refuse an output folder that is neither new, empty, nor a batch job's (its files are not touched)."""
    if not out_dir.exists() or (out_dir / MANIFEST).is_file():
        return
    if not out_dir.is_dir():
        raise InvalidInputError(f"output folder {str(out_dir)!r} is a file; pass a folder.")
    others = sorted(p.name for p in out_dir.iterdir() if not _ours(p.name))
    if others:
        raise InvalidInputError(
            f"output folder {str(out_dir)!r} is not empty ({', '.join(others[:3])}{'...' if len(others) > 3 else ''})"
            " and holds no batch job; choose a new or empty folder."
        )


def _ours(name: str) -> bool:
    """The lock, or a temporary file a job killed while writing its first manifest left."""
    return name == ".lock" or (name.startswith(f".{MANIFEST}.") and name.endswith(TMP_SUFFIX))


def check_same(old: Mapping[str, Any], new: Mapping[str, Any], out_dir: Path) -> None:
    """Raise :class:`SettingsMismatchError` naming the first setting that differs."""
    for name in SETTINGS:
        if old.get(name) == new.get(name):
            continue
        if name == "input_files":
            changed = _changed_file(old.get(name) or [], new.get(name) or [])
            detail = f"input file {changed!r} changed since the job started (size or modification time)"
        else:
            detail = f"{name} was {old.get(name)!r}, now {new.get(name)!r}"
        raise SettingsMismatchError(
            f"cannot resume the job in {str(out_dir)!r}: {detail}; resume with the job's own settings, or write "
            "to a new output folder.",
            name,
        )


def _changed_file(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> str:
    for before, after in zip(old, new):
        if before != after:
            return str(after.get("path"))
    return str((new or old or [{}])[-1].get("path"))
