"""A CLI command run on a node where `ray start` already runs (no RAY_ADDRESS) joins that cluster."""

import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.net import free_port
from benchmarks.ray_nodes import REPO, TwoNodeCluster, cluster_env, start_node, stop_nodes, wait_for_nodes

pytestmark = pytest.mark.cluster


def test_cli_joins_the_cluster_ray_start_started(model_folder):
    root = Path(tempfile.mkdtemp(prefix="srt", dir="/tmp"))
    (root / "auth_token").write_text(secrets.token_hex(32))
    env = {**cluster_env(root / "auth_token"), "RAY_TMPDIR": str(root)}  # ray.init() finds the address under it
    port = free_port()
    cluster = TwoNodeCluster(f"127.0.0.1:{port}", "", env, "")
    head = start_node(env, str(root / "ray"), "--head", f"--port={port}", "--include-dashboard=false")
    try:
        wait_for_nodes(cluster, 1)
        reviews = root / "reviews.csv"
        pd.DataFrame({"text": ["质量很好", "太差了"]}).to_csv(reviews, index=False)
        command = [sys.executable, "-m", "sentiment_ray.cli", "score", f"--model-path={model_folder}"]
        command += [f"--input={reviews}", f"--output={root / 'scored'}"]
        done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        log = (root / "scored.log").read_text(encoding="utf-8")  # Ray's own lines: in the command's log file
        joined = [line for line in log.splitlines() if "Connecting to existing Ray cluster" in line]
        assert joined and f":{port}" in joined[0], log[-3000:]  # the started cluster, not an embedded one
        assert len(pd.read_parquet(root / "scored")) == 2
    finally:
        stop_nodes(head)
        shutil.rmtree(root, ignore_errors=True)
