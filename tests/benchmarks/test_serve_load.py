"""The Serve load benchmark's pure parts, and its load generator against a real aiohttp server on 127.0.0.1."""

import asyncio
import json
import os
import random

import numpy as np
import pytest
from aiohttp import web

from benchmarks.load_client import (
    batch_delta,
    body_ok,
    closed_loop,
    percentile,
    process_cpu_s,
    summarise,
    window_usage,
)
from benchmarks.net import free_port
from benchmarks.serve_load import OFFLINE_TEXTS_PER_CALL, batching_settings, in_process_rates, parse_args

ANSWER = json.dumps({"model": "default", "predictions": [{"label": "positive"}]})


@pytest.mark.parametrize("n", [1, 2, 7, 100, 1001])
def test_percentile_matches_numpy_linear(n):
    values = [random.Random(n).expovariate(1.0) for _ in range(n)]
    for q in (0, 1, 50, 90, 99, 99.9, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_of_nothing_is_none():
    assert percentile([], 50) is None


def test_summarise_counts_errors_and_uses_successes_for_latency():
    records = [(0.010, "ok"), (0.020, "ok"), (0.030, "ok"), (0.500, "http_500"), (0.001, "error_X"), (0.2, "http_500")]
    s = summarise(records, window_s=2.0, client_cpu_s=0.5, cores=2)
    assert (s["requests"], s["ok"], s["errors"]) == (6, 3, 3)
    assert s["error_kinds"] == {"http_500": 2, "error_X": 1}
    assert s["req_per_s"] == pytest.approx(1.5)  # successes per second
    assert s["p50_ms"] == pytest.approx(20.0) and s["max_ms"] == pytest.approx(30.0)
    assert s["p99_ms"] == pytest.approx(29.8)
    assert s["client_cpu_share"] == pytest.approx(0.125)  # 0.5 s of 2 s × 2 cores


def test_summarise_without_successes():
    s = summarise([(0.1, "timeout")], window_s=1.0, client_cpu_s=0.0, cores=1)
    assert s["ok"] == 0 and s["errors"] == 1 and s["p50_ms"] is None and s["req_per_s"] == 0.0


def test_batch_delta_subtracts_cumulative_stats():
    before = {"batch_sizes": {"1": 3, "4": 1}}
    after = {"batch_sizes": {"1": 5, "4": 1, "8": 2}}
    assert batch_delta(before, after) == {"batches": 4, "mean_batch": 4.5, "max_batch": 8}
    assert batch_delta(None, after)["batches"] is None


def test_process_cpu_s_reads_proc_and_tolerates_missing_pids():
    sum(i * i for i in range(200_000))  # burn a little CPU in this process
    assert process_cpu_s(os.getpid()) > 0
    assert process_cpu_s(None) is None and process_cpu_s(2**22 + 12345) is None


def test_window_usage_shares_replica_cpu_over_the_whole_machine():
    first = {"stats": {"batch_sizes": {"2": 1}}, "replica_cpu_s": 10.0}
    last = {"stats": {"batch_sizes": {"2": 3}}, "replica_cpu_s": 13.0}
    usage = window_usage(first, last, window_s=2.0, cores=2)
    assert usage == {"batches": 2, "mean_batch": 2.0, "max_batch": 2, "replica_cpu_share": 0.75}
    assert window_usage({**first, "replica_cpu_s": None}, last, 2.0, 2)["replica_cpu_share"] is None


def test_body_ok():
    assert body_ok(ANSWER.encode())
    assert not body_ok(b"oops") and not body_ok(b"[1]") and not body_ok(b'{"predictions": []}')


def test_batching_settings_follow_the_library_defaults():
    from sentiment_ray.inference.serve_config import ServeConfig

    on = batching_settings("on")
    assert on["max_batch_size"] > 1
    assert ServeConfig.model_fields["max_batch_size"].default == on["max_batch_size"]
    assert batching_settings("off") == {"max_batch_size": 1, "batch_wait_timeout_s": 0.0}
    with pytest.raises(ValueError):
        batching_settings("maybe")


def test_parse_args_quick_defaults():
    args = parse_args(["--quick", "--concurrency", "1,8", "--batching", "off"])
    assert (args.concurrency, args.batching, args.duration, args.warmup) == ([1, 8], ["off"], 5.0, 1.0)


async def _load_against_flaky_server(clients: int) -> tuple[dict, list[int]]:
    """Every 5th request answers 500, every 7th (not 5th) a 200 with a broken body, the rest a prediction."""
    seen: list[int] = []

    async def predict(request: web.Request) -> web.Response:
        body = await request.json()
        assert "text" in body
        seen.append(len(seen) + 1)
        n = seen[-1]
        await asyncio.sleep(0.002)
        if n % 5 == 0:
            return web.Response(status=500, text="boom")
        return web.Response(text="oops" if n % 7 == 0 else ANSWER, content_type="application/json")

    app = web.Application()
    app.router.add_post("/predict", predict)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        bodies = [json.dumps({"text": t}, ensure_ascii=False).encode() for t in ("很好", "太差了", "一般")]
        result = await closed_loop(f"http://127.0.0.1:{port}/predict", bodies, clients, duration_s=1.0, warmup_s=0.0)
    finally:
        await runner.cleanup()
    return result, seen


def test_load_generator_counts_every_request_and_error():
    result, seen = asyncio.run(_load_against_flaky_server(clients=4))
    # no warm-up: every request the server saw started inside the window and must be recorded
    assert result["requests"] == len(seen) > 20 and result["warmup_requests"] == 0
    fails = sum(1 for n in seen if n % 5 == 0)
    bad = sum(1 for n in seen if n % 7 == 0 and n % 5 != 0)
    assert result["error_kinds"] == {"http_500": fails, "bad_body": bad}
    assert result["ok"] == len(seen) - fails - bad and result["errors"] == fails + bad
    assert result["req_per_s"] == pytest.approx(result["ok"] / result["window_s"])
    assert 0 < result["p50_ms"] <= result["p90_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert result["client_cpu_s"] > 0 and 0 < result["client_cpu_share"] <= 1
    assert result["batches"] is None and result["replica_cpu_share"] is None  # no stats URL given


def test_load_generator_counts_refused_connections():
    url = f"http://127.0.0.1:{free_port()}/predict"  # nothing listens there
    # Windows of seconds, not tenths: with the suite keeping both cores busy, a 0.3 s window once had no request
    # start inside it.
    result = asyncio.run(closed_loop(url, [b"{}"], clients=2, duration_s=2.0, warmup_s=0.5))
    assert result["warmup_requests"] == result["warmup_errors"] > 0  # warm-up errors are reported too
    assert result["requests"] == result["errors"] > 0 and result["ok"] == 0 and result["p50_ms"] is None
    assert list(result["error_kinds"]) == ["error_ClientConnectorError"]


def _reference_args(duration: float):
    return parse_args(["--duration", str(duration), "--precision", "fp32"])


def test_in_process_reference_times_both_cases_on_the_served_folder(model_folder):
    bodies = [json.dumps({"text": t}, ensure_ascii=False).encode() for t in ("很好", "太差了，再也不买", "一般")]
    rows = in_process_rates(str(model_folder), bodies, threads=1, args=_reference_args(0.2))
    assert [r["texts_per_call"] for r in rows] == [1, OFFLINE_TEXTS_PER_CALL]
    for row in rows:
        assert row["path"] == "in process" and row["torch_threads"] == 1
        assert row["reviews"] > 0 and row["seconds"] >= 0.2
        assert row["reviews_per_s"] == pytest.approx(row["reviews"] / row["seconds"])
    assert rows[1]["reviews"] % len(bodies) == 0  # whole cycles: every call scored all three texts


def test_in_process_reference_refuses_a_failed_text(model_folder):
    bodies = [json.dumps({"text": t}).encode() for t in ("很好", "   ")]  # the blank text gets an error row
    with pytest.raises(RuntimeError, match="text is empty"):
        in_process_rates(str(model_folder), bodies, threads=1, args=_reference_args(0.1))
