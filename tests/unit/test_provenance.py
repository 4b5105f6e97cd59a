"""Every result names the CPU features that decide its matmul speed (a bf16 number without them misleads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentiment_ray.models.loading import cpu_has_fast_bf16
from sentiment_ray.provenance import MATMUL_FLAGS, cpu_flags, machine_info

CPUINFO = Path("/proc/cpuinfo")


@pytest.mark.skipif(not CPUINFO.exists(), reason="no /proc/cpuinfo on this system")
def test_machine_info_lists_the_matmul_flags_this_cpu_has():
    listed = set(cpu_flags())
    first_flags_line = next(line for line in CPUINFO.read_text().splitlines() if line.startswith("flags"))
    assert listed == set(first_flags_line.split(":", 1)[1].split())
    recorded = machine_info()["cpu_matmul_flags"]
    assert recorded.split() == [f for f in MATMUL_FLAGS if f in listed] or (recorded == "none" and not listed)


@pytest.mark.skipif(not CPUINFO.exists(), reason="no /proc/cpuinfo on this system")
def test_fast_bf16_follows_the_flags():
    assert cpu_has_fast_bf16() == bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
