"""What every benchmark report records: the machine it ran on, the code measured, and the JSON file it writes.

Machines differ (AVX2, AVX-512 VNNI, AMX), and CPU inference speed and even int8 numerics depend on which: a figure
without its CPU cannot be compared with the next machine's, so every script stores :func:`machine_info` in its report.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def code_version() -> str:
    """The rankwise commit measured (``git describe``; "unknown" outside a checkout), "-dirty" with local changes.

    Changes under ``benchmarks/results/`` do not count: a long run rewrites its own result files before it reports.
    """
    import subprocess

    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()

    try:
        changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)benchmarks/results")
        return git("describe", "--always") + ("-dirty" if changed else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_info(device: str) -> dict[str, Any]:
    """The machine a figure came from: CPU model, cores, the ISA features that decide CPU inference speed (AVX2,
    AVX-512, VNNI, AMX, and whether the kernel lets processes use AMX), and the versions of what was measured."""
    import importlib.metadata as md

    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpu_count": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0))}
    info.update(cpu_features())
    for pkg in ("onnxruntime", "onnx", "openvino", "nncf", "torch", "transformers", "sentence-transformers",
                "tokenizers"):
        try:
            info[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            info[pkg] = None
    if device.startswith("cuda"):
        import torch

        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def cpu_features() -> dict[str, Any]:
    """CPU model, physical cores and ISA flags from ``/proc/cpuinfo`` (Linux; empty elsewhere), with a summary:
    ``avx2``, ``avx512`` (foundation), ``vnni`` (AVX-512 or AVX VNNI int8 dot products), ``amx`` (AMX int8/bf16
    tiles advertised) and ``amx_kernel`` (the kernel supports AMX tile state, so a process may enable it)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    fields = [dict(x.split(":", 1) for x in block.splitlines() if ":" in x) for block in text.strip().split("\n\n")]
    fields = [{k.strip(): v.strip() for k, v in block.items()} for block in fields]
    flags = set(fields[0].get("flags", "").split()) if fields else set()
    cores = {(b.get("physical id"), b.get("core id")) for b in fields if "core id" in b}
    return {
        "cpu_model": fields[0].get("model name", "unknown") if fields else "unknown",
        "physical_cores": len(cores) or None,
        "cpu_isa": sorted(f for f in flags if f.startswith(("avx", "amx")) or "vnni" in f),
        "isa_summary": {"avx2": "avx2" in flags, "avx512": "avx512f" in flags,
                        "vnni": bool({"avx512_vnni", "avx_vnni"} & flags),
                        "amx": bool({"amx_int8", "amx_bf16"} & flags), "amx_kernel": _amx_kernel_support()},
    }


def _amx_kernel_support() -> bool | None:
    """Whether the kernel supports AMX tile data (``arch_prctl(ARCH_GET_XCOMP_SUPP)`` bit 18, read-only).

    Linux >= 5.16 makes each process request AMX (``ARCH_REQ_XCOMP_PERM``) before its first tile instruction, or
    it dies with SIGILL; oneDNN (OpenVINO, torch) and onnxruntime's MLAS request it themselves. None: not Linux x86.
    """
    import ctypes
    import ctypes.util

    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        mask = ctypes.c_ulong(0)
        if libc.syscall(158, 0x1021, ctypes.byref(mask)) != 0:  # SYS_arch_prctl, ARCH_GET_XCOMP_SUPP
            return False
    except (OSError, AttributeError):
        return None
    return bool(mask.value & (1 << 18))  # XFEATURE_XTILEDATA


def write_report(report: dict[str, Any], path: Path | str, *, indent: int = 2, show: Any = None) -> str:
    """Write ``report`` as JSON to ``path`` (parents created) and print ``show`` (default: the report) as JSON.

    Returns the written text. Non-ASCII stays readable (``ensure_ascii=False``), so the file is written as UTF-8.
    """
    text = json.dumps(report, indent=indent, ensure_ascii=False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    print(text if show is None else json.dumps(show, indent=indent, ensure_ascii=False), flush=True)
    return text
