"""The Serve load benchmark's client side: a closed-loop aiohttp load generator, percentiles and summaries.

`run_load` is what `benchmarks.serve_load` runs in a spawned process per client count: N clients each
POST a body (cycling through the given ones) and send again once answered; requests that START in the window
(after a warm-up) are recorded, and any non-200, bad body or exception is an error, never dropped. Around the
window it reads the replica's /stats (batch sizes) and the CPU seconds of the replica process (its pid comes from
the driver, which asks Ray: /stats shows no process ids).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time

REQUEST_TIMEOUT_S = 60.0  # one request slower than this counts as an error ("timeout")


# ---- pure parts: percentiles and summaries ----


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarise(records: list[tuple[float, str]], window_s: float, client_cpu_s: float, cores: int) -> dict:
    """records: (latency in s, outcome: "ok" or an error kind) of every request of the window."""
    latencies_ms = [latency * 1000 for latency, outcome in records if outcome == "ok"]
    errors: dict[str, int] = {}
    for _, outcome in records:
        if outcome != "ok":
            errors[outcome] = errors.get(outcome, 0) + 1
    summary = {
        "requests": len(records),
        "ok": len(latencies_ms),
        "errors": len(records) - len(latencies_ms),
        "error_kinds": errors,
        "window_s": window_s,
        "req_per_s": len(latencies_ms) / window_s if window_s > 0 else 0.0,  # successful requests per second
    }
    for q in (50, 90, 99):
        summary[f"p{q}_ms"] = percentile(latencies_ms, q)
    summary["max_ms"] = max(latencies_ms, default=None)
    summary["client_cpu_s"] = round(client_cpu_s, 3)
    # share of the WHOLE machine (all cores) the load generator used during the window
    summary["client_cpu_share"] = client_cpu_s / (window_s * cores) if window_s > 0 else 0.0
    return summary


def batch_delta(before: dict | None, after: dict | None) -> dict:
    """Dynamic batches the replica ran between two /stats answers: count, mean and max texts per batch."""
    if not before or not after:
        return {"batches": None, "mean_batch": None, "max_batch": None}
    sizes = {int(k): v - before["batch_sizes"].get(k, 0) for k, v in after["batch_sizes"].items()}
    sizes = {k: v for k, v in sizes.items() if v > 0}
    batches, texts = sum(sizes.values()), sum(k * v for k, v in sizes.items())
    return {"batches": batches, "mean_batch": texts / batches if batches else None, "max_batch": max(sizes, default=0)}


def process_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of process `pid` so far (all its threads), from /proc/<pid>/stat (Linux)."""
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # after "(comm)": field 3 (state) is fields[0]
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)
    except (OSError, TypeError, ValueError, IndexError):
        return None


def window_usage(first: dict, last: dict, window_s: float, cores: int) -> dict:
    """Batches run and the replica process's share of the machine (all cores) between two `snapshot`s."""
    usage = batch_delta(first["stats"], last["stats"])
    r0, r1 = first["replica_cpu_s"], last["replica_cpu_s"]
    usage["replica_cpu_share"] = (r1 - r0) / (window_s * cores) if None not in (r0, r1) and window_s > 0 else None
    return usage


# ---- the load generator (runs in its own process) ----


def body_ok(payload: bytes) -> bool:
    """A /predict answer for one text: a JSON object whose "predictions" list holds exactly one item."""
    try:
        predictions = json.loads(payload).get("predictions")
    except (ValueError, AttributeError):  # not JSON, or JSON that is not an object
        return False
    return isinstance(predictions, list) and len(predictions) == 1


async def one_request(session, url: str, body: bytes) -> str:
    """POST one body: "ok" for a 200 with a well-formed answer, else the error kind (every failure is counted)."""
    try:
        async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
            status, payload = response.status, await response.read()
    except TimeoutError:  # aiohttp's timeouts subclass it
        return "timeout"
    except Exception as err:  # connection refused/reset, protocol errors...
        return f"error_{type(err).__name__}"
    if status != 200:
        return f"http_{status}"
    return "ok" if body_ok(payload) else "bad_body"


async def get_stats(session, url: str | None) -> dict | None:
    if url is None:
        return None
    try:
        async with session.get(url) as response:
            return await response.json() if response.status == 200 else None
    except Exception:  # stats are optional extras; their absence must not stop the measurement
        return None


async def snapshot(session, stats_url: str | None, replica_pid: int | None) -> dict:
    """The replica's /stats (batch sizes) and its CPU seconds so far."""
    stats = await get_stats(session, stats_url)
    return {"stats": stats, "replica_cpu_s": process_cpu_s(replica_pid)}


async def closed_loop(
    url: str,
    bodies: list[bytes],
    clients: int,
    duration_s: float,
    warmup_s: float,
    stats_url: str | None = None,
    replica_pid: int | None = None,
) -> dict:
    """`clients` concurrent loops of request → wait for answer → next request, for warmup_s + duration_s."""
    import aiohttp

    cycle = itertools.cycle(bodies)  # shared by all clients: each request takes the next review
    records: list[tuple[float, str]] = []
    warmup_outcomes: list[str] = []  # not measured, but their errors are reported too
    connector = aiohttp.TCPConnector(limit=clients + 1)  # a kept-alive connection per client, one for /stats
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        window_start = time.perf_counter() + warmup_s
        window_end = window_start + duration_s

        async def client() -> None:
            while (started := time.perf_counter()) < window_end:
                outcome = await one_request(session, url, next(cycle))
                if started >= window_start:
                    records.append((time.perf_counter() - started, outcome))
                else:
                    warmup_outcomes.append(outcome)

        async def mark() -> tuple[float, dict]:  # the client's CPU clock and a snapshot at the window's start
            await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
            return time.process_time(), await snapshot(session, stats_url, replica_pid)

        (cpu_start, first), *_ = await asyncio.gather(mark(), *(client() for _ in range(clients)))
        window_s = time.perf_counter() - window_start  # until the last request of the window was answered
        cpu_s = time.process_time() - cpu_start
        last = await snapshot(session, stats_url, replica_pid)
    cores = os.cpu_count() or 1
    warmup = {"warmup_requests": len(warmup_outcomes), "warmup_errors": sum(o != "ok" for o in warmup_outcomes)}
    return {**summarise(records, window_s, cpu_s, cores), **warmup, **window_usage(first, last, window_s, cores)}


def run_load(
    url: str, bodies: list[bytes], clients: int, duration_s: float, warmup_s: float, stats_url=None, replica_pid=None
) -> dict:
    """Synchronous entry point (for a process pool): one closed-loop run on a fresh event loop."""
    return asyncio.run(closed_loop(url, bodies, clients, duration_s, warmup_s, stats_url, replica_pid))
