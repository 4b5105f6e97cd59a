"""What every result records about where it came from: machine, library versions, command."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sys


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("sentiment-ray", "torch", "transformers", "peft", "ray", "bitsandbytes"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    found["python"] = platform.python_version()
    return found


def machine_info() -> dict:
    import torch

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_matmul_flags": " ".join(cpu_matmul_flags()) or "none",
        "gpus": gpus or "none",
    }


MATMUL_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
"""CPU features that decide matmul speed: a bf16 number means little without knowing whether avx512_bf16 was there."""


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    return set((_cpuinfo_value("flags") or "").split())


def cpu_matmul_flags() -> list[str]:
    present = cpu_flags()
    return [flag for flag in MATMUL_FLAGS if flag in present]


def _cpu_model() -> str:
    return _cpuinfo_value("model name") or platform.processor() or "unknown"


def _cpuinfo_value(key: str) -> str | None:
    """The first CPU's `key` in /proc/cpuinfo, or None (no such file, e.g. macOS, or no such key)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def command_line() -> str:
    """The command as typed: `python -m pkg.mod args` stays that (sys.argv would show the module's file path)."""
    argv = list(getattr(sys, "orig_argv", sys.argv))
    if "-m" in argv[1:3]:
        return " ".join(["python", *argv[argv.index("-m") :]])
    return " ".join(sys.argv)


def provenance() -> dict:
    return {
        "command": command_line(),
        "machine": machine_info(),
        "versions": library_versions(),
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
