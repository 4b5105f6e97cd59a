"""Loopback helpers shared by the benchmarks and the tests: a free port, and waiting for a server to be ready."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server, a Ray node or a process group about to start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(
    base_url: str,
    timeout_s: float = 300.0,
    process: subprocess.Popen | None = None,
    path: str = "/readyz",
    interval_s: float = 0.5,
) -> float:
    """Poll GET `base_url + path` until it answers 200; return the seconds it took.

    `/readyz` of `sentiment-ray serve` loads the default model, so 200 means the first request will not wait for
    it. Raises TimeoutError after `timeout_s`, and RuntimeError as soon as `process` (the server's own process,
    when the caller started it) has exited: a server that crashed is not waited for.
    """
    started = time.monotonic()
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server process exited with {process.returncode} before {base_url} was ready")
        try:
            with urllib.request.urlopen(base_url + path, timeout=min(60.0, timeout_s)) as response:
                response.read()  # read the answer before closing, or the proxy logs a client disconnect
                if response.status == 200:
                    return time.monotonic() - started
        except OSError:  # not listening yet, 503 while the replica loads, or a time-out
            pass
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"{base_url}{path} did not answer 200 within {timeout_s:.0f}s")
        time.sleep(interval_s)
