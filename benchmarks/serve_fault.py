"""Serve under load while one of its two model replicas (or HTTP-front replicas) gets SIGKILL.

    python -m benchmarks.serve_fault --model-path runs/tiny/model [--clients 16] [--kill SentimentAPI] [--busy-cpus 2]

`run_server` (what `sentiment-ray serve --replicas 2` runs) on an embedded Ray, 127.0.0.1. --clients threads each
POST one text at a time and send the next once answered, for --kill-after-s seconds, then one model replica's
process gets SIGKILL, and the load goes on for --after-s seconds. Reports every request by outcome (each non-200
with its status and error type), the requests per second before and after the kill, and the seconds until Serve
runs two model replicas again. --busy-cpus N starts N processes that spin on the CPU from 2 s before the kill to
the end (a CI machine running other jobs beside Serve). Writes results/bench/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from benchmarks import common

TEXTS = ["质量很好，物流也快", "太差了，不推荐", "一般般吧。", "非常满意，还会再买"]
REQUEST_TIMEOUT_S = 30.0  # a request slower than this counts as "timeout": a hang, not an answer


def model_replica_pids(app: str, deployment: str = "SentimentModel") -> list[int]:
    """Process ids of the app's live replicas of `deployment` (the model's by default: SentimentAPI is the HTTP
    front) on this process's Ray (its own one under pytest-xdist)."""
    import ray
    from ray.util.state import list_actors

    alive = list_actors(address=ray.get_runtime_context().gcs_address, filters=[("state", "=", "ALIVE")], limit=1000)
    return [a.pid for a in alive if a.class_name == f"ServeReplica:{app}:{deployment}"]


def running_replicas(app: str, deployment: str) -> int:
    from ray import serve

    return serve.status().applications[app].deployments[deployment].replica_states.get("RUNNING", 0)


def post(url: str, text: str) -> str:
    """One request's outcome: "200", or "<status> <error type>" (the documented shape) or "<status> plain"."""
    request = urllib.request.Request(url + "/predict", json.dumps({"text": text}).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            ok = len(json.loads(response.read())["predictions"]) == 1
            return "200" if ok else "200 bad body"
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            return f"{err.code} {json.loads(body)['error']['type']}"
        except (ValueError, KeyError, TypeError):
            return f"{err.code} plain"
    except TimeoutError:
        return "timeout"
    except (urllib.error.URLError, ConnectionError) as err:
        return f"connection {type(getattr(err, 'reason', err)).__name__}"


class ClosedLoop:
    """`clients` threads that each send the next request once the last is answered, until stopped or until
    `requests` were sent; every request is kept as (start time in monotonic s, latency in s, outcome)."""

    def __init__(self, url: str, clients: int, requests: int | None = None):
        self.url, self.records, self.stopping, self.limit = url, [], threading.Event(), requests
        self.threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)]

    def _client(self, index: int) -> None:
        sent = 0
        while not self.stopping.is_set():
            started = time.monotonic()
            outcome = post(self.url, TEXTS[(index + sent) % len(TEXTS)])
            self.records.append((started, time.monotonic() - started, outcome))
            sent += 1
            if self.limit is not None and len(self.records) >= self.limit:
                self.stopping.set()

    def __enter__(self) -> ClosedLoop:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=REQUEST_TIMEOUT_S + 5)

    def outcomes(self, since: float = 0.0, until: float = float("inf")) -> collections.Counter:
        return collections.Counter(outcome for started, _, outcome in self.records if since <= started < until)


def max_latency(load: ClosedLoop, since: float, until: float) -> float:
    return max((latency for started, latency, _ in load.records if since <= started < until), default=0.0)


def serve_locally(model_path: str, **fields) -> tuple[str, int]:
    """(URL, port) of `run_server` (what `sentiment-ray serve` runs) for `model_path` on an embedded Ray, fp32, on
    a free port of 127.0.0.1, once it is ready; `fields`: other ServeConfig fields (replicas, ...)."""
    from benchmarks.net import free_port, wait_ready
    from sentiment_ray.inference.serve import run_server

    port = free_port()
    run_server({"default": model_path}, port=port, precision="fp32", **fields)
    wait_ready(f"http://127.0.0.1:{port}", timeout_s=120)
    return f"http://127.0.0.1:{port}", port


def kill_one_replica(app: str, deployment: str = "SentimentModel") -> int:
    pids = model_replica_pids(app, deployment)
    if len(pids) < 2:
        raise RuntimeError(f"expected two live {deployment} replicas of {app!r}, found {len(pids)}")
    os.kill(pids[0], signal.SIGKILL)
    return pids[0]


def busy_cpus(count: int) -> list[subprocess.Popen]:
    """`count` processes that each keep one CPU busy until killed."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def seconds_until_two_replicas(app: str, deployment: str, killed_pid: int, since: float, timeout_s: float = 120.0):
    """Seconds from `since` until Serve reports two running replicas of `deployment`, neither of them the killed
    process (for a few seconds after the kill, Serve and Ray still count the dead one); None after `timeout_s`."""
    while time.monotonic() - since < timeout_s:
        live = set(model_replica_pids(app, deployment)) - {killed_pid}
        if len(live) >= 2 and running_replicas(app, deployment) >= 2:
            return time.monotonic() - since
        time.sleep(0.2)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--kill-after-s", type=float, default=10.0)
    parser.add_argument("--after-s", type=float, default=20.0)
    parser.add_argument("--kill", choices=["SentimentModel", "SentimentAPI"], default="SentimentModel")
    parser.add_argument("--busy-cpus", type=int, default=0, help="CPU-spinning processes from 2 s before the kill")
    parser.add_argument("--name", default="serve_fault")
    args = parser.parse_args(argv)
    url, _ = serve_locally(args.model_path, replicas=2, cpus_per_replica=1.0)
    with ClosedLoop(url, args.clients) as load:
        started = time.monotonic()
        time.sleep(max(0.0, args.kill_after_s - 2))
        spinners = busy_cpus(args.busy_cpus)
        try:
            time.sleep(min(2.0, args.kill_after_s))
            killed_at = time.monotonic()
            pid = kill_one_replica("sentiment", args.kill)
            recovered_s = seconds_until_two_replicas("sentiment", args.kill, pid, killed_at, args.after_s + 60)
            time.sleep(max(0.0, killed_at + args.after_s - time.monotonic()))
            ended = time.monotonic()
        finally:
            for spinner in spinners:
                spinner.kill()
    before, after = load.outcomes(started, killed_at), load.outcomes(killed_at, ended)
    row = {"killed": f"one {args.kill} replica of 2", "clients": args.clients, "busy CPUs": args.busy_cpus}
    row["requests"] = sum(before.values()) + sum(after.values())
    row["failed"] = sum(n for outcome, n in (before + after).items() if outcome != "200")
    row["outcomes"] = dict(before + after)
    row["req/s before the kill"] = round(before["200"] / args.kill_after_s, 1)
    row["req/s after the kill"] = round(after["200"] / (ended - killed_at), 1)
    row["s until 2 replicas run again"] = None if recovered_s is None else round(recovered_s, 1)
    notes = [
        f"tiny model ({args.model_path}), fp32, 2 model replicas × 1 CPU and 2 HTTP-front replicas: the numbers"
        " say what survives, not speed",
        f"SIGKILL of {args.kill} replica pid {pid} after {args.kill_after_s:g} s of load",
        f"{args.busy_cpus} CPU-spinning processes from 2 s before the kill to the end",
        f"slowest request: {max_latency(load, started, ended):.1f} s (a request over"
        f" {REQUEST_TIMEOUT_S:g} s counts as timeout)",
    ]
    path = common.write_result(args.name, {"model": args.model_path}, [row], notes)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
