"""How many slow-header connections one Serve proxy holds before a new client fails.

    python -m benchmarks.slow_headers --model-path runs/tiny/model [--step 2500] [--max 25000]

`run_server` on an embedded Ray, 127.0.0.1. Holder processes open --step connections each and send a request
line and one header, never the blank line that ends the headers (what a slow or hostile client does; uvicorn in
Ray Serve 2.60's proxy has no time limit for it). After each holder, a new client sends a normal POST /predict
(10 s time-out) and the proxy's RSS is read. Stops at the first failed probe or at --max held connections;
then, after --hold-s seconds, counts how many slow connections the proxy had closed. Writes
results/bench/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import socket
import time
import urllib.request
from pathlib import Path

from benchmarks import common

PARTIAL = b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # no blank line: the headers never end


def hold(port: int, count: int, opened, stop) -> None:
    """Open `count` slow connections (fewer if this process runs out of descriptors), report how many, hold them
    until `stop`, then report how many the server had closed meanwhile."""
    sockets = []
    for _ in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(PARTIAL)
        except OSError:
            break
        sockets.append(sock)
    opened.put(len(sockets))
    stop.wait()
    closed = 0
    for sock in sockets:
        sock.setblocking(False)
        try:
            closed += sock.recv(1) == b""  # b"": the server closed it; BlockingIOError: still open
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    opened.put(closed)


def probe(url: str) -> str:
    request = urllib.request.Request(url + "/predict", json.dumps({"text": "质量很好"}).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return f"{response.status} in {1000 * (time.monotonic() - started):.0f} ms"
    except Exception as err:  # noqa: BLE001 - any failure is the measurement
        return f"failed: {type(err).__name__}: {err}"


def proxy_rss_mb() -> float | None:
    """RSS (MB) of the Serve proxy process, found by the title Ray gives it (`ray::ProxyActor`)."""
    from benchmarks.serve_soak import rss_mb

    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().startswith(b"ray::ProxyActor"):
                return rss_mb(int(cmdline.parent.name))
        except OSError:  # the process ended while we looked
            continue
    return None


def main(argv: list[str] | None = None) -> int:
    from benchmarks.serve_fault import serve_locally

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--step", type=int, default=2500)
    parser.add_argument("--max", type=int, default=25_000)
    parser.add_argument("--hold-s", type=float, default=60.0)
    parser.add_argument("--name", default="slow_headers")
    args = parser.parse_args(argv)
    url, port = serve_locally(args.model_path)
    context = multiprocessing.get_context("spawn")
    stop, rows, holders, held = context.Event(), [], [], 0
    rows.append({"slow connections held": 0, "new client": probe(url), "proxy RSS MB": proxy_rss_mb()})
    while held < args.max:
        opened = context.Queue()
        holder = context.Process(target=hold, args=(port, args.step, opened, stop), daemon=True)
        holder.start()
        holders.append((holder, opened))
        held += opened.get(timeout=600)
        rows.append({"slow connections held": held, "new client": probe(url), "proxy RSS MB": proxy_rss_mb()})
        if rows[-1]["new client"].startswith("failed"):
            break
    time.sleep(args.hold_s)
    stop.set()
    closed = sum(opened.get(timeout=600) for _, opened in holders)
    for holder, _ in holders:
        holder.join(timeout=60)
    notes = [
        f"tiny model ({args.model_path}), one replica; descriptor limits (soft, hard) of a process here: "
        f"{resource.getrlimit(resource.RLIMIT_NOFILE)}",
        f"after holding them {args.hold_s:g} s more, the proxy had closed {closed} of {held} slow connections",
    ]
    path = common.write_result(args.name, {"model": args.model_path, "step": args.step}, rows, notes)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
