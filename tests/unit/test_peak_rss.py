"""A process's peak memory is its own, not the peak of the process that started it."""

import subprocess
import sys

from sentiment_ray.runtime import peak_rss_mb

PARENT = """
import subprocess, sys
ballast = bytearray(400 * 2**20)  # 400 MiB, touched: resident in the parent
for i in range(0, len(ballast), 4096):
    ballast[i] = 1
child = "from sentiment_ray.runtime import peak_rss_mb; print(peak_rss_mb())"
print(subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True).stdout.strip())
"""


def test_a_child_of_a_big_process_reports_its_own_peak():
    # With getrusage's ru_maxrss the child printed the parent's 400+ MiB: Linux carries it through fork + exec.
    parent = subprocess.run([sys.executable, "-c", PARENT], capture_output=True, text=True, check=True)
    child_peak = float(parent.stdout)
    assert 10 < child_peak < 300


def test_the_peak_counts_what_this_process_touched():
    ballast = bytearray(200 * 2**20)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    assert peak_rss_mb() >= 200
