"""The `two_node_cluster` fixture: a head and a second node started with `ray start` (benchmarks/ray_nodes.py)."""

import shutil
import tempfile
from pathlib import Path

import pytest

from benchmarks.ray_nodes import start_head, start_worker_node, stop_nodes


@pytest.fixture(scope="session")
def two_node_cluster(s3):
    """Started after the local S3 (tests/conftest.py): both nodes inherit its AWS_* variables."""
    # Short temp dirs: Ray's unix socket paths under them must stay below the 107-byte limit.
    root = Path(tempfile.mkdtemp(prefix="srt", dir="/tmp"))
    cluster, head = start_head(root)
    nodes = [head]
    try:
        nodes.append(start_worker_node(cluster, root / "node2", 2))
        yield cluster
    finally:
        stop_nodes(*nodes)
        shutil.rmtree(root, ignore_errors=True)
