"""Ray Serve under load: req/s and p50/p90/p99 latency for N closed-loop clients, with and without batching.

    python -m benchmarks.serve_load [--model-path F] [--concurrency 1,8,32] [--duration S]
        [--batching on,off] [--device cpu|cuda] [--cpus-per-replica C] [--name serve] [--quick]

Per batching setting, the real app (`sentiment_ray.inference.serve.run_server`, as `sentiment-ray serve` runs it) starts
on a local Ray at 127.0.0.1:<free port>; after /readyz, each client count runs a closed loop: N clients each
POST `{"text": <review>}` (offline test split, cycling) and send again once answered. Requests that START in
the window (after a warm-up) are recorded; any non-200, bad body or exception is an error, never dropped.
The load generator is a spawned process, so its CPU time is its own (it competes with Serve for cores).
No --model-path: a zero-shot folder over the offline tiny model. Writes results/bench/<name>.{json,md}
(`--quick`: serve_quick.*, a smoke run, not numbers to quote). The replica's torch threads = --cpus-per-replica.

Before Serve starts, the same folder runs in process (in the spawned process, with the replica's torch threads,
on the same reviews): one text per call, and OFFLINE_TEXTS_PER_CALL texts per call (the predictor plans those
into length-sorted forwards, as `score` does). Each Serve row's `of_in_process` is its req/s over the better one.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

# the client side (load generator, percentiles, summaries) lives in load_client; run_load is also reachable from here
from benchmarks.load_client import run_load
from benchmarks.net import free_port, wait_ready

DEFAULT_FOLDER = Path(__file__).resolve().parents[1] / "runs" / "bench" / "zero-shot-tiny"
OFFLINE_TEXTS_PER_CALL = 256
"""Texts per predict_batch call of the in-process reference's offline case (the score job hands its actor 512)."""

# ---- the server side ----


def batching_settings(mode: str) -> dict:
    """on: the library's own defaults (ServeConfig's = the CLI's); off: batches of one, no waiting."""
    from sentiment_ray.inference.serve_config import ServeConfig

    if mode == "on":
        return {k: ServeConfig.model_fields[k].default for k in ("max_batch_size", "batch_wait_timeout_s")}
    if mode == "off":  # every text still passes @serve.batch, which then never waits (batch full at 1)
        return {"max_batch_size": 1, "batch_wait_timeout_s": 0.0}
    raise ValueError(f"batching must be 'on' or 'off', got {mode!r}")


def start_server(model_path: str, port: int, settings: dict, device: str, precision: str, cpus: float = 1.0) -> None:
    from sentiment_ray.inference.serve import run_server
    from sentiment_ray.runtime import init_ray

    # as `sentiment-ray serve` does (a local Ray, or RAY_ADDRESS when set), minus the replica's per-request
    # access log lines streamed to this terminal (Serve still writes them to its log files)
    init_ray(log_to_driver=False)
    gpus = 1.0 if device == "cuda" else 0.0  # a replica that reserves no GPU may be placed where there is none
    options = {"device": device, "precision": precision, "gpus_per_replica": gpus, "cpus_per_replica": cpus, **settings}
    run_server({"default": model_path}, host="127.0.0.1", port=port, **options)


def replica_pid() -> int | None:
    """The process id of the (single) Serve replica on this machine, found by the process title Ray gives it
    (`ray::ServeReplica:<app>:SentimentModel`) in /proc (Linux); None if there is not exactly one."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            title = cmdline.read_bytes().split(b"\0", 1)[0]
        except OSError:  # the process ended while we looked
            continue
        if title.startswith(b"ray::ServeReplica:") and title.endswith(b":SentimentModel"):
            pids.append(int(cmdline.parent.name))
    return pids[0] if len(pids) == 1 else None


def in_process_rates(model_path: str, bodies: list[bytes], threads: int, args) -> list[dict]:
    """The served model without Serve: reviews/s of predict_batch in this process with `threads` torch threads
    (the replica's), on the request bodies' texts, cycling for --duration seconds per case."""
    import torch

    from sentiment_ray.inference.predictor import SentimentPredictor

    torch.set_num_threads(threads)
    texts = [json.loads(body)["text"] for body in bodies]
    predictor = SentimentPredictor.from_pretrained(model_path, args.device, args.precision)
    predictor.predict_batch(texts[:8])  # warm-up: kernels, allocator
    rows = []
    for per_call in (1, OFFLINE_TEXTS_PER_CALL):
        rows.append({"path": "in process", "texts_per_call": per_call, "torch_threads": threads})
        rows[-1] |= timed_calls(predictor, texts, per_call, args.duration)
    return rows


def timed_calls(predictor, texts: list[str], per_call: int, duration_s: float) -> dict:
    """predict_batch on consecutive `per_call` texts (cycling) until `duration_s` has passed; every text counts."""
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < duration_s:
        first = done % len(texts)
        chunk = texts[first : first + per_call]  # shorter at the end of the list: counted as it is
        results = predictor.predict_batch(chunk)
        failed = [r["error"] for r in results if r.get("error")]
        if failed:  # a reference that skipped texts would overstate its speed
            raise RuntimeError(f"in-process reference: a text failed: {failed[0]}")
        done += len(chunk)
    seconds = time.perf_counter() - started
    return {"reviews": done, "seconds": seconds, "reviews_per_s": done / seconds}


def stop_server() -> None:
    import ray
    from ray import serve

    serve.shutdown()
    ray.shutdown()


def bench_setting(mode: str, args, model_path: str, bodies: list[bytes], pool) -> list[dict]:
    settings = batching_settings(mode)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        start_server(model_path, port, settings, args.device, args.precision, args.cpus_per_replica)
        ready_s = wait_ready(base)
        print(f"[serve_load] batching {mode} {settings} ready on {base} after {ready_s:.1f}s", flush=True)
        rows, pid = [], replica_pid()
        for clients in args.concurrency:
            load = pool.submit(
                run_load, base + "/predict", bodies, clients, args.duration, args.warmup, base + "/stats", pid
            ).result()
            rows.append({"batching": mode, **settings, "clients": clients, **load})
            print(f"[serve_load] {json.dumps(rows[-1])}", flush=True)
        return rows
    finally:
        stop_server()


# ---- driver ----


def resolve_model_folder(model_path: str | None) -> str:
    """--model-path, or (built once) a zero-shot label-scoring folder over the offline tiny model."""
    if model_path:
        return str(Path(model_path).resolve())
    from sentiment_ray.config import PromptConfig
    from sentiment_ray.models.folder import META_FILE, save_zero_shot_folder

    if not (DEFAULT_FOLDER / META_FILE).is_file():
        save_zero_shot_folder("tiny", DEFAULT_FOLDER, PromptConfig())
    return str(DEFAULT_FOLDER.resolve())


def request_bodies(seed: int = 42) -> list[bytes]:
    from sentiment_ray.data import load_splits

    texts = load_splits("offline", seed=seed).test["text"].tolist()
    return [json.dumps({"text": t}, ensure_ascii=False).encode() for t in texts]


def describe(model_path: str, args, bodies: list[bytes]) -> tuple[dict, list[str]]:
    from sentiment_ray.inference.predictor import resolve_device_dtype
    from sentiment_ray.inference.serve import deployment_options
    from sentiment_ray.models.folder import read_meta

    meta = read_meta(model_path)
    tiny = meta.get("base_model") == "tiny"
    device, dtype = resolve_device_dtype(args.device, args.precision)
    payload = {
        "model_path": model_path,
        "model": {k: meta.get(k) for k in ("base_model", "strategy", "finetune", "max_length")},
        "tiny_model": tiny,
        "quick": args.quick,
        "request": 'POST /predict, body {"text": <one review>} (UTF-8 JSON), Content-Type: application/json',
        "request_example": bodies[0].decode(),
        "data": f"offline corpus test split (seed 42), {len(bodies)} reviews cycled in order, "
        f"mean body {sum(map(len, bodies)) / len(bodies):.0f} bytes",
        "batching": {mode: batching_settings(mode) for mode in args.batching},
        "deployment_options": {
            m: deployment_options(batching_settings(m)["max_batch_size"], cpus_per_replica=args.cpus_per_replica)
            for m in args.batching
        },
        "device": str(device),
        "dtype": str(dtype).replace("torch.", ""),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "client": "aiohttp closed loop in a spawned process (N clients, one kept-alive connection each)",
        "ray": "local Ray started by sentiment_ray.runtime.init_ray(log_to_driver=False); 1 replica, Serve's proxy",
        "cpus_per_replica": args.cpus_per_replica,
    }
    notes = [
        ("TINY-MODEL NUMBERS: " if tiny else "")
        + "one replica; load generator, Serve proxy and replica share this machine's cores, so compare settings "
        "with each other rather than quoting absolute numbers.",
        "req_per_s counts 200 answers that started in the window; percentiles are over those; errors = every "
        "other request (non-200 status, bad body, timeout, connection error), by kind in error_kinds.",
        "client_cpu_share / replica_cpu_share: CPU seconds of the load generator / the Serve replica process "
        "over (window × all cores); the rest went to the Serve proxy, Ray and other processes. "
        "mean_batch/max_batch: texts per model call in the window (the replica's /stats).",
        "of_in_process: req_per_s over the better in-process reviews/s (table below), measured in the same run.",
    ]
    return payload, notes


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", help="model folder to serve (default: zero-shot over the tiny model)")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated client counts")
    parser.add_argument("--duration", type=float, help="measured seconds per client count (default 15; quick 5)")
    parser.add_argument("--warmup", type=float, help="seconds of unrecorded load first (default 3; quick 1)")
    parser.add_argument("--batching", default="on,off", help="on, off or on,off")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--cpus-per-replica", type=float, default=1.0, help="the replica's CPUs = torch threads")
    parser.add_argument("--name", default="serve", help="result name: results/bench/<name>.{json,md}")
    parser.add_argument("--quick", action="store_true", help="short smoke run, written as serve_quick.*")
    args = parser.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.batching = [m.strip() for m in args.batching.split(",") if m.strip()]
    for mode in args.batching:
        batching_settings(mode)  # reject unknown modes before anything starts
    args.duration = args.duration or (5.0 if args.quick else 15.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0)
    return args


def main(argv: list[str] | None = None) -> None:
    from benchmarks.common import append_table, write_result

    args = parse_args(argv)
    model_path = resolve_model_folder(args.model_path)
    print(f"[serve_load] model folder: {model_path}", flush=True)
    bodies = request_bodies()
    payload, notes = describe(model_path, args, bodies)
    rows: list[dict] = []
    threads = max(1, int(args.cpus_per_replica))  # as the replica sets its torch threads
    # spawn: a fresh interpreter without Ray or torch state, so its CPU time is the load generator's alone
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        in_process = pool.submit(in_process_rates, model_path, bodies, threads, args).result()
        print(f"[serve_load] in process: {json.dumps(in_process)}", flush=True)
        for mode in args.batching:
            rows += bench_setting(mode, args, model_path, bodies, pool)
    best = max(r["reviews_per_s"] for r in in_process)
    for row in rows:
        row["of_in_process"] = row["req_per_s"] / best
    name = "serve_quick" if args.quick else args.name
    path = write_result(name, payload | {"in_process_best_reviews_per_s": best}, rows, notes)
    title = "The same model in process (no Serve): predict_batch with the replica's torch threads, same reviews"
    append_table(name, "in_process", title, in_process)
    print(f"[serve_load] wrote {path} and {path.with_suffix('.md')} (model folder: {model_path})")


if __name__ == "__main__":
    main()
