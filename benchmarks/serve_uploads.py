"""Memory of the Serve replica and proxy under concurrent oversized chunked uploads (the body limit's cost).

    python -m benchmarks.serve_uploads [--model-path runs/tiny/model] [--uploads 4] [--upload-mb 250]

Each round sends `--uploads` concurrent POST /predict bodies, 64 KiB pieces at loopback speed, each until the server
answers or `--upload-mb` is sent: first `Transfer-Encoding: chunked` bodies (answered 411), then bodies declaring a
Content-Length of `--upload-mb` (answered 413). Both are refused from the headers; what an upload costs is what Ray
Serve's proxy reads from the client before the answer comes back. The resident memory (VmRSS) of the replica and
the proxy is read after a warm-up and after each round. Writes results/bench/serve_uploads.*.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
import urllib.request
from pathlib import Path

from benchmarks.net import free_port, wait_ready
from benchmarks.serve_load import replica_pid, resolve_model_folder, start_server, stop_server

CHUNK = 65536


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid` in MB (10^6 bytes), from /proc/<pid>/status (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no VmRSS for process {pid}")


def proxy_pid() -> int:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().startswith(b"ray::ProxyActor"):
                return int(cmdline.parent.name)
        except OSError:
            continue
    raise RuntimeError("no Serve proxy process on this machine")


def chunked_upload(port: int, cap_bytes: int, declared: bool = False, extra_headers: bytes = b"") -> dict:
    """One upload until the server answers (or cap_bytes went out): bytes sent, status, seconds. Chunked, or with
    a Content-Length of cap_bytes when `declared`. `extra_headers`: whole header lines, e.g. the bearer token."""
    framing = b"Content-Length: %d" % cap_bytes if declared else b"Transfer-Encoding: chunked"
    head = b"POST /predict HTTP/1.1\r\nHost: bench\r\n" + extra_headers + framing + b"\r\n\r\n"
    chunk = b" " * CHUNK if declared else b"%x\r\n%s\r\n" % (CHUNK, b" " * CHUNK)
    sent, answer, pending = 0, b"", memoryview(chunk)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head)
        sock.setblocking(False)
        while sent < cap_bytes and not answer:
            try:
                n = sock.send(pending)  # may send part of a chunk: keep the chunk framing intact
                sent, pending = sent + n, (pending[n:] if n < len(pending) else memoryview(chunk))
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                pass
            try:
                answer = sock.recv(4096)
            except BlockingIOError:
                pass
    status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "no answer"
    seconds = round(time.monotonic() - started, 2)
    return {"sent_mb": round(sent / 1e6, 1), "sent_bytes": sent, "status": status, "seconds": seconds}


def upload_round(port: int, uploads: int, cap_bytes: int, declared: bool = False) -> list[dict]:
    results: list[dict] = []

    def one() -> None:
        results.append(chunked_upload(port, cap_bytes, declared))

    threads = [threading.Thread(target=one) for _ in range(uploads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def warm_up(base: str, port: int) -> None:
    """Ordinary requests and small refused uploads first, so that first-use allocations are not counted."""
    body = json.dumps({"text": "很好"}).encode()
    for _ in range(20):
        request = urllib.request.Request(base + "/predict", data=body, headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=60).read()
    upload_round(port, 4, 3_000_000)
    upload_round(port, 4, 3_000_000, declared=True)


def measure(args, port: int, base: str) -> list[dict]:
    warm_up(base, port)
    pids = {"replica": replica_pid(), "proxy": proxy_pid()}
    time.sleep(1)
    before = {k: rss_mb(p) for k, p in pids.items()}
    rows = []
    for framing, number in [(f, n) for f in ("chunked", "content-length") for n in range(1, args.rounds + 1)]:
        uploads = upload_round(port, args.uploads, int(args.upload_mb * 1e6), framing == "content-length")
        time.sleep(1)  # let the refused requests finish on both sides
        row = {"framing": framing, "round": number, "statuses": ",".join(sorted({u["status"] for u in uploads}))}
        row["sent_mb_per_upload"] = "/".join(str(u["sent_mb"]) for u in uploads)
        row["seconds_to_answer_max"] = max(u["seconds"] for u in uploads)
        row |= {f"{k}_growth_mb": round(rss_mb(p) - before[k], 1) for k, p in pids.items()}
        rows.append(row)
        print(f"[serve_uploads] {json.dumps(row)}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    from benchmarks.common import write_result

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", help="model folder to serve (default: zero-shot over the tiny model)")
    parser.add_argument("--uploads", type=int, default=4, help="concurrent uploads per round")
    parser.add_argument("--upload-mb", type=float, default=250.0, help="size of each upload if never answered")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    model_path, port = resolve_model_folder(args.model_path), free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        start_server(model_path, port, {}, "cpu", "auto")
        wait_ready(base)
        rows = measure(args, port, base)
    finally:
        stop_server()
    payload = {"model_path": model_path, "uploads": args.uploads, "upload_mb": args.upload_mb, "rounds": args.rounds}
    notes = [
        "growth = VmRSS after the round minus VmRSS after the warm-up, in MB (10^6 bytes); the replica serves the "
        "tiny model with the default limits (max_body_bytes 2 MB).",
        "client, proxy and replica share this machine's cores; uploads go over loopback as fast as the proxy reads.",
    ]
    print(f"[serve_uploads] wrote {write_result('serve_uploads', payload, rows, notes)}", flush=True)


if __name__ == "__main__":
    main()
