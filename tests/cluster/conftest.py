"""The `two_node_cluster` fixture: a head and a second node started with `ray start` (see ray_nodes.py)."""

import secrets
import shutil
import tempfile
from pathlib import Path

import pytest
from ray_nodes import TwoNodeCluster, cluster_env, start_node, stop_nodes, wait_for_nodes

from benchmarks.net import free_port


@pytest.fixture(scope="session")
def two_node_cluster(s3):
    """Started after the local S3 (tests/conftest.py): both nodes inherit its AWS_* variables."""
    # Short temp dirs: Ray's unix socket paths under them must stay below the 107-byte limit.
    root = Path(tempfile.mkdtemp(prefix="srt", dir="/tmp"))
    token_path = root / "auth_token"
    token = secrets.token_hex(32)
    token_path.write_text(token)
    env = cluster_env(token_path)
    gcs_port, dashboard_port = free_port(), free_port()
    cluster = TwoNodeCluster(f"127.0.0.1:{gcs_port}", f"http://127.0.0.1:{dashboard_port}", env, token)
    head = start_node(
        env,
        str(root / "head"),
        "--head",
        f"--port={gcs_port}",
        "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard_port}",
        f"--ray-client-server-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
    )
    nodes = [head]
    try:
        wait_for_nodes(cluster, 1)
        worker_args = (f"--address={cluster.gcs_address}", f"--dashboard-agent-listen-port={free_port()}")
        nodes.append(start_node(env, str(root / "node2"), "--node-ip-address=127.0.0.1", *worker_args))
        wait_for_nodes(cluster, 2)
        yield cluster
    finally:
        stop_nodes(*nodes)
        shutil.rmtree(root, ignore_errors=True)
