"""Serve soak: many single-text requests over many clients, with the replicas' memory and latency over time.

    python -m benchmarks.serve_soak --model-path runs/tiny/model [--requests 200000] [--clients 30]

`run_server` (what `sentiment-ray serve` runs: one model replica, one HTTP-front replica) on an embedded Ray,
127.0.0.1; --clients threads each POST one text and send the next once answered, until --requests were sent.
Every second the resident memory (VmRSS) of both replica processes is sampled. Reports: RSS growth after the
warm-up (the first 10% of requests) to the end, p50/p99 latency of the first and the last 10% of requests, and
every non-200 answer by status. Writes results/bench/<name>.{json,md} and <name>.png (RSS and latency curves).
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

from benchmarks import common
from benchmarks.load_client import percentile
from benchmarks.serve_fault import ClosedLoop, model_replica_pids, serve_locally

DEPLOYMENTS = ("SentimentModel", "SentimentAPI")


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB → MB
    except OSError:  # the process is gone
        return None
    return None


def sample_rss(pids: dict[str, int], stopping: threading.Event, samples: list) -> None:
    """Appends (monotonic s, {deployment: RSS MB}) once a second until `stopping` is set."""
    while not stopping.wait(1.0):
        samples.append((time.monotonic(), {name: rss_mb(pid) for name, pid in pids.items()}))


def tenth(records: list, which: str) -> list:
    """The first or last 10% of the requests, in start order."""
    ordered = sorted(records)
    size = max(1, len(ordered) // 10)
    return ordered[:size] if which == "first" else ordered[-size:]


def rss_growth(samples: list, warm_until: float, name: str) -> dict:
    """RSS (MB) at the end of the warm-up and the largest after it, and the growth between them in %."""
    after = [rss[name] for t, rss in samples if t >= warm_until and rss[name] is not None]
    if not after:
        return {}
    base, peak = after[0], max(after)
    return {f"{name} RSS MB after warm-up": round(base, 1), f"{name} RSS MB max after": round(peak, 1)} | {
        f"{name} RSS growth %": round(100 * (peak - base) / base, 2)
    }


def plot(path: Path, started: float, samples: list, records: list) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (memory, latency) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for name in DEPLOYMENTS:
        points = [(t - started, rss[name]) for t, rss in samples if rss[name] is not None]
        memory.plot([p[0] for p in points], [p[1] for p in points], label=f"{name} replica")
    memory.set_ylabel("RSS (MB)")
    memory.legend()
    buckets: dict[int, list[float]] = {}
    for start, seconds, _ in records:
        buckets.setdefault(int((start - started) // 10), []).append(seconds * 1000)
    keys = sorted(buckets)
    for q in (50, 99):
        latency.plot([10 * k + 5 for k in keys], [percentile(buckets[k], q) for k in keys], label=f"p{q}")
    latency.set_ylabel("latency per 10 s (ms)")
    latency.set_xlabel("seconds since the load started")
    latency.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--name", default="serve_soak")
    args = parser.parse_args(argv)
    url, _ = serve_locally(args.model_path)
    pids = {name: model_replica_pids("sentiment", name)[0] for name in DEPLOYMENTS}
    samples, stopping = [], threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(pids, stopping, samples), daemon=True)
    sampler.start()
    started = time.monotonic()
    with ClosedLoop(url, args.clients, requests=args.requests) as load:
        load.stopping.wait()
    stopping.set()
    records = list(load.records)
    first, last = tenth(records, "first"), tenth(records, "last")
    row = {"requests": len(records), "clients": args.clients, "seconds": round(time.monotonic() - started, 1)}
    row["non-200"] = {k: v for k, v in load.outcomes().items() if k != "200"}
    for which, part in (("first", first), ("last", last)):
        latencies = [seconds * 1000 for _, seconds, outcome in part if outcome == "200"]
        row[f"p50 ms {which} 10%"] = round(percentile(latencies, 50), 1)
        row[f"p99 ms {which} 10%"] = round(percentile(latencies, 99), 1)
    row["p99 last / first"] = round(row["p99 ms last 10%"] / row["p99 ms first 10%"], 2)
    warm_until = first[-1][0]
    for name in DEPLOYMENTS:
        row |= rss_growth(samples, warm_until, name)
    path = common.write_result(args.name, {"model": args.model_path}, [row], notes(args))
    plot(path.with_suffix(".png"), started, samples, records)
    print(f"wrote {path}, {path.with_suffix('.md')} and {path.with_suffix('.png')}")
    return 0


def notes(args) -> list[str]:
    return [
        f"tiny model ({args.model_path}), fp32, one model replica (1 CPU) and one HTTP-front replica; load generator,"
        " Serve proxy and replicas share this machine's cores: the numbers say what holds over time, not speed",
        "warm-up: the first 10% of requests; RSS growth: the largest RSS after the warm-up over the RSS at its end",
        "each client thread opens a new connection per request (urllib)",
    ]


if __name__ == "__main__":
    raise SystemExit(main())
