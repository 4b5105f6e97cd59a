"""The steps of the real-shape smoke (benchmarks/real_shape.py), each through the real CLI in its own process.

Every step returns a row: what ran, `ok`, wall seconds, its numbers, and on failure the last lines of its output.
Nothing here asserts a speed: the numbers are recorded, and only a failing command fails the smoke.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from benchmarks.net import wait_ready

CLI = [sys.executable, "-m", "sentiment_ray.cli"]
REVIEW = "物流太慢了，包装也破了，很失望。"
STOP_WAIT_S = 60.0  # Ctrl-C to exit: Serve's shutdown takes seconds; a server still up after this failed to stop


def run_cli(args: list[str], timeout_s: float) -> tuple[int, str, float]:
    """(exit code, stdout then stderr, wall seconds) of one `sentiment-ray` command."""
    env = {**os.environ, "RAY_AUTH_MODE": "token", "HF_HUB_OFFLINE": "1"}
    started = time.monotonic()
    try:
        done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout_s, env=env)
        code, output = done.returncode, done.stdout + STDERR_MARK + done.stderr
    except subprocess.TimeoutExpired as err:
        code, output = 124, f"timed out after {timeout_s:.0f} s\n{err.stdout or ''}{err.stderr or ''}"
    return code, output, round(time.monotonic() - started, 1)


STDERR_MARK = "\n--- stderr ---\n"


def stdout_json(output: str) -> dict:
    """The JSON object a command printed last on stdout (`score --json` prints its summary so, indented)."""
    stdout = output.split(STDERR_MARK, 1)[0]
    start = stdout.rfind("\n{\n") + 1 if "\n{\n" in stdout else (0 if stdout.startswith("{\n") else -1)
    return json.loads(stdout[start:]) if start >= 0 else {}


def row(step: str, code: int, output: str, seconds: float, **numbers) -> dict:
    result = {"step": step, "ok": code == 0, "seconds": seconds, **numbers}
    if code != 0:
        result["error"] = "\n".join(output.strip().splitlines()[-15:])
    return result


def folder_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20, 1)


def cpu_share(device: str, parts: int = 1) -> list[str]:
    """On CPU, each of `parts` workers / actors gets an equal share of this machine's cores (the YAMLs say 1)."""
    return [] if device != "cpu" else [str(max(1, (os.cpu_count() or 1) // parts))]


def train(preset: Path, overlay: Path, case: list, out: Path, device: str, timeout_s: float = 3600.0) -> dict:
    """`case`: [strategy, workers, base model]."""
    code, output, seconds = run_cli(_train_args(preset, overlay, case, out, device, "none"), timeout_s)
    result = row("train", code, output, seconds)
    if code == 0:
        result.update(train_numbers(out))
    return result


def resume(preset: Path, overlay: Path, case: list, trained: Path, device: str, timeout_s: float = 3600.0) -> dict:
    """Train `case` again from the first checkpoint of the run in `trained` (adapter weights, optimizer and
    scheduler state, on every worker), into `<trained>-resumed`; ok only if it went on from that checkpoint."""
    checkpoints = sorted((trained / "hf_checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    if not checkpoints:
        return row("resume", 1, f"no checkpoint-N in {trained / 'hf_checkpoints'}", 0.0)
    first, out = checkpoints[0], trained.with_name(trained.name + "-resumed")
    code, output, seconds = run_cli(_train_args(preset, overlay, case, out, device, str(first)), timeout_s)
    numbers = json.loads((out / "train_results.json").read_text()) if code == 0 else {}
    start = int(first.name.split("-")[1])
    if code == 0 and numbers.get("resumed_from_step") != start:
        code, output = 1, f"resumed from step {numbers.get('resumed_from_step')}, not {start} ({first})"
    steps = {k: numbers.get(k) for k in ("resumed_from_step", "global_step", "seconds_per_step")}
    return row("resume", code, output, seconds, **steps)


def _train_args(preset: Path, overlay: Path, case: list, out: Path, device: str, resume_from: str) -> list[str]:
    strategy, workers, model = case
    args = ["train", "--config", str(preset), "--config", str(overlay), "--strategy", strategy, "--model", model]
    args += ["--num-workers", str(workers), "--output-dir", str(out), "--resume", resume_from]
    return args + [f"--set=scaling.cpus_per_worker={cpus}" for cpus in cpu_share(device, workers)]


def train_numbers(out: Path) -> dict:
    """Seconds per step, peak memory per process, and the sizes a user stores and ships."""
    results = json.loads((out / "train_results.json").read_text())
    checkpoints = sorted((out / "hf_checkpoints").glob("checkpoint-*"))
    return {
        "global_step": results["global_step"],
        "seconds_per_step": results.get("seconds_per_step"),
        "worker_peak_rss_mb": [w.get("peak_rss_mb") for w in results["workers"]],
        "driver_peak_rss_mb": results.get("driver_peak_rss_mb"),
        "trainable_parameters": results["parameters"]["trainable"],
        "model_folder_mb": folder_mb(out / "model"),
        "adapter_mb": _file_mb(out / "model" / "adapter_model.safetensors"),
        "checkpoint_mb": folder_mb(checkpoints[-1]) if checkpoints else None,
    }


def _file_mb(path: Path) -> float | None:
    return round(path.stat().st_size / 2**20, 1) if path.is_file() else None


def predict(folder: Path, device: str, timeout_s: float) -> dict:
    code, output, seconds = run_cli(
        ["predict", "--model-path", str(folder), "--device", device, "--text", REVIEW], timeout_s
    )
    lines = [line for line in output.splitlines() if line.startswith('{"text"')]
    prediction = json.loads(lines[-1]) if code == 0 and lines else {}
    if code == 0 and prediction.get("error") is not None:
        code = 1
    return row("predict", code, output, seconds, label=prediction.get("label"))


def score(folder: Path, rows_file: Path, out: Path, device: str, precision: str, timeout_s: float) -> dict:
    args = ["score", "--config", "jobs/configs/score.yaml", "--model-path", str(folder), "--input", str(rows_file)]
    args += ["--output", str(out), "--device", device, "--precision", precision, "--overwrite", "--json"]
    args += [f"--cpus-per-actor={cpus}" for cpus in cpu_share(device)]
    code, output, seconds = run_cli(args, timeout_s)
    summary = stdout_json(output) if code == 0 else {}
    rows = summary.get("rows_written", summary.get("rows"))
    return row(
        f"score {precision}",
        code,
        output,
        seconds,
        rows=rows,
        job_seconds=summary.get("seconds"),
        reviews_per_s_job=summary.get("rows_per_s"),
        reviews_per_s_command=round(rows / seconds, 3) if rows else None,
    )


def evaluate(folder: Path, out: Path, rows: int, device: str, timeout_s: float) -> dict:
    args = ["evaluate", "--model-path", str(folder), "--data", "offline", "--max-rows", str(rows)]
    args += ["--output-dir", str(out), "--device", device]
    args += [f"--cpus-per-actor={cpus}" for cpus in cpu_share(device)]
    code, output, seconds = run_cli(args, timeout_s)
    report = (out / "report.md").read_text(encoding="utf-8") if (out / "report.md").is_file() else ""
    warned = "random weights" in report or "tiny-model numbers" in report
    if code == 0 and not (warned and (out / "robustness_result.json").is_file()):
        code, output = 1, output + "\nreport.md lacks the random-weights warning, or robustness_result.json is missing"
    return row("evaluate", code, output, seconds)


def serve(folder: Path, port: int, device: str, timeout_s: float) -> dict:
    """Start `sentiment-ray serve`, wait for /readyz, send one request, stop it with Ctrl-C (SIGINT)."""
    args = [*CLI, "serve", "--model-path", str(folder), "--port", str(port), "--device", device]
    args += [f"--cpus-per-replica={cpus}" for cpus in cpu_share(device)]
    env = {**os.environ, "RAY_AUTH_MODE": "token", "HF_HUB_OFFLINE": "1"}
    started = time.monotonic()
    server = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    stopped_s = None  # seconds from Ctrl-C until the server exited by itself
    try:
        ready_s = _wait_ready(port, started, timeout_s, server)
        answer = _post(port, {"text": REVIEW}) if ready_s is not None else None
    finally:
        server.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        try:
            output, _ = server.communicate(timeout=STOP_WAIT_S)
            stopped_s = round(time.monotonic() - interrupted, 1)
        except subprocess.TimeoutExpired:
            server.kill()
            output, _ = server.communicate()
            output += f"\nstill running {STOP_WAIT_S:.0f} s after Ctrl-C: killed"
    seconds = round(time.monotonic() - started, 1)
    answered = answer is not None and answer.get("predictions", [{}])[0].get("error") is None
    ok = answered and stopped_s is not None and server.returncode == 0
    return row("serve", 0 if ok else 1, output or "", seconds, ready_s=ready_s, stopped_s=stopped_s)


def _wait_ready(port: int, started: float, timeout_s: float, server) -> float | None:
    """Seconds from `started` until /readyz answered 200, or None (timed out, or the server exited)."""
    try:
        left_s = max(1.0, timeout_s - (time.monotonic() - started))
        wait_ready(f"http://127.0.0.1:{port}", left_s, process=server, interval_s=2)
    except (TimeoutError, RuntimeError):
        return None
    return round(time.monotonic() - started, 1)


def _post(port: int, body: dict) -> dict | None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read())
    except OSError:
        return None


def tune(preset: Path, overlay: Path, model: str, out: Path, trials: int, timeout_s: float) -> dict:
    """`trials` x 2 steps, LoRA rank drawn from {4, 8}; one checkpoint (= one Tune result) each."""
    args = ["tune", "--config", str(preset), "--config", str(overlay), "--num-samples", str(trials)]
    args += ["--output-dir", str(out)]
    args += ["--set", f"model.name={model}"]
    args += ["--set", "train.max_steps=2", "--set", "tune.lora_r=[4,8]", "--set", "tune.scheduler=none"]
    code, output, seconds = run_cli(args, timeout_s)
    if code == 0 and not (out / "best" / "sentiment_meta.json").is_file():
        code, output = 1, output + "\nno best/ model folder"
    return row("tune", code, output, seconds)


def predictor_speed(folder: Path, texts: list[str], device: str, precision: str) -> dict:
    """In-process: seconds to load the folder, then reviews/s of predict_batch on `texts` (after a warm-up)."""
    import gc

    from sentiment_ray.inference.predictor import SentimentPredictor

    started = time.monotonic()
    predictor = SentimentPredictor.from_pretrained(str(folder), device=device, precision=precision)
    load_s = time.monotonic() - started
    predictor.predict_batch(texts[:4])
    started = time.monotonic()
    predictor.predict_batch(texts)
    seconds = time.monotonic() - started
    del predictor
    gc.collect()
    return {
        "step": f"predictor {precision}",
        "ok": True,
        "load_s": round(load_s, 1),
        "reviews_per_s": round(len(texts) / seconds, 3),
    }
