"""Helpers for real Ray nodes on this machine, started the way users start one: `ray start`, token auth.

Each node runs `ray start --block` in the foreground of a child process, so stopping that process stops
the node and everything it started, without `ray stop` killing other Ray instances on the machine. The
two nodes get separate temp dirs: on one machine they would otherwise share `runtime_resources/`, and
one node's runtime-env agent deletes the job's working dir while the other still runs in it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.net import free_port

REPO = Path(__file__).resolve().parents[1]


@dataclass
class TwoNodeCluster:
    gcs_address: str
    dashboard_url: str
    env: dict
    token: str

    def ray(self, *args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run the `ray` CLI against this cluster (the submitter's side), output captured."""
        return subprocess.run(
            [str(Path(sys.executable).parent / "ray"), *args],
            env=env or self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def submit(self, *entrypoint: str, no_wait: bool = False, submission_id: str | None = None, env=None, job_env=None):
        """`ray job submit --working-dir <repo> -- <entrypoint>`: exactly the README's command.

        `env`: the submitting `ray` CLI's environment; `job_env`: variables of this job only (its runtime env)."""
        flags = ["--address", self.dashboard_url, "--working-dir", "."]
        flags += ["--runtime-env-json", json.dumps({"env_vars": job_env})] if job_env else []
        flags += ["--no-wait"] if no_wait else []
        flags += ["--submission-id", submission_id] if submission_id else []
        return self.ray("job", "submit", *flags, "--", *entrypoint, env=env)


def cluster_env(token_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token_path), HF_HUB_OFFLINE="1")
    # `python` in a job's entrypoint must be this venv's interpreter, however pytest was launched.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def start_node(env: dict, temp_dir: str, *args: str) -> subprocess.Popen:
    ray = str(Path(sys.executable).parent / "ray")
    log = open(Path(temp_dir).with_suffix(".log"), "w")  # noqa: SIM115 (lives as long as the node)
    command = [ray, "start", "--block", "--num-cpus=2", f"--temp-dir={temp_dir}", "--disable-usage-stats", *args]
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def start_head(root: Path) -> tuple[TwoNodeCluster, subprocess.Popen]:
    """A head node (`ray start --head`, token auth, dashboard) with its temp dir and token under `root`."""
    token_path = root / "auth_token"
    token_path.write_text(secrets.token_hex(32))
    env = cluster_env(token_path)
    gcs_port, dashboard_port = free_port(), free_port()
    cluster = TwoNodeCluster(f"127.0.0.1:{gcs_port}", f"http://127.0.0.1:{dashboard_port}", env, token_path.read_text())
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
    try:
        wait_for_nodes(cluster, 1)
    except BaseException:
        stop_nodes(head)
        raise
    return cluster, head


def start_worker_node(cluster: TwoNodeCluster, temp_dir: Path, count: int) -> subprocess.Popen:
    """A node joining `cluster`, returned once the cluster has `count` nodes."""
    args = (f"--address={cluster.gcs_address}", f"--dashboard-agent-listen-port={free_port()}")
    node = start_node(cluster.env, str(temp_dir), "--node-ip-address=127.0.0.1", *args)
    try:
        wait_for_nodes(cluster, count)
    except BaseException:
        stop_nodes(node)
        raise
    return node


def wait_for_nodes(cluster: TwoNodeCluster, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = cluster.ray("status", "--address", cluster.gcs_address, timeout=60)
        if status.returncode == 0 and status.stdout.count(" node_") >= count:
            return
        time.sleep(2)
    raise RuntimeError(f"the Ray cluster did not reach {count} nodes in {timeout}s:\n{status.stdout}{status.stderr}")


def stop_nodes(*nodes: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """SIGTERM every node at once (`ray start --block` tears its node down on SIGTERM), wait for them all, and kill
    what is left after `timeout_s`: a graceful stop of the two nodes took 34 s in CI, and nothing here needs it
    (the cluster's temp dir is deleted next)."""
    running = [node for node in nodes if node.poll() is None]
    for node in running:
        os.killpg(node.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for node in running:
        try:
            node.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait()
