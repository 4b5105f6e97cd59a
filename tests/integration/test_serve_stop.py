"""`sentiment-ray serve` as systemd, Kubernetes or a person at a terminal stops it: SIGTERM or Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

from benchmarks.net import free_port, wait_ready


def port_is_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def start_serve(model_folder, log) -> tuple[subprocess.Popen, int]:
    """`sentiment-ray serve` with its own embedded Ray (no RAY_ADDRESS): stopping must take that Ray down too."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    command = [sys.executable, "-m", "sentiment_ray.cli.commands", "serve", "--model-path", str(model_folder)]
    proc = subprocess.Popen([*command, "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    return proc, port


def test_serve_stops_cleanly_on_sigterm_and_on_ctrl_c(model_folder, tmp_path):
    """Two servers started together (their start-ups overlap), one stopped with SIGTERM, one with SIGINT."""
    logs = {signum: (tmp_path / f"serve-{signum.name}.log").open("w+") for signum in (signal.SIGTERM, signal.SIGINT)}
    servers = {signum: start_serve(model_folder, log) for signum, log in logs.items()}
    try:
        for proc, port in servers.values():
            wait_ready(f"http://127.0.0.1:{port}", timeout_s=240, process=proc)
        outputs = {}
        for signum, (proc, _) in servers.items():
            proc.send_signal(signum)
            outputs[signum] = proc.communicate(timeout=120)[0]
    finally:
        for proc, _ in servers.values():
            if proc.poll() is None:
                proc.kill()
    for signum, (proc, port) in servers.items():
        logs[signum].seek(0)
        stderr = logs[signum].read()
        assert proc.returncode == 0, (signum.name, stderr[-3000:])
        assert f"{signum.name}: shutting Serve down" in outputs[signum]
        for crash in ("SIGTERM received", "Aborted", "Fatal Python error", "Traceback"):
            assert crash not in stderr, (signum.name, stderr[-3000:])
        assert port_is_closed(port)
