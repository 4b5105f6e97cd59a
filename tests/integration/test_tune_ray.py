"""Ray Tune sweeps: config section, ASHA early stopping, best model export, restore after completion / interrupt.

The sweeps run through the CLI in a subprocess: it starts its own embedded Ray *with* the dashboard, which
ASHA needs (docs/ray-2.60.md), while the session's `ray_cluster` fixture runs without one.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sentiment_ray.errors import ConfigError
from sentiment_ray.tuning.space import load_tune_config, max_concurrent_trials, search_space, trial_config

ROOT = Path(__file__).parents[2]
PRESET = ROOT / "jobs" / "configs" / "tiny-tune.yaml"


def test_tune_section_is_typed_and_overridable():
    cfg, tc = load_tune_config(
        PRESET,
        overrides=["tune.scheduler=none", "tune.lora_r=[2, 4]", "train.max_steps=4"],
        updates={"tune.num_samples": 3, "output_dir": "/tmp/sweep"},
    )
    assert (tc.num_samples, tc.scheduler, tc.lora_r, tc.metric, tc.mode) == (3, "none", [2, 4], "eval_loss", "min")
    assert cfg.train.max_steps == 4 and cfg.model.finetune == "lora" and cfg.output_dir == "/tmp/sweep"
    assert set(search_space(tc)) == {"lora_r", "learning_rate"}
    with pytest.raises(ConfigError, match="did you mean 'lora_r'"):
        load_tune_config(PRESET, overrides=["tune.lora_rank=[4]"])
    with pytest.raises(ConfigError, match="tune.metric"):
        load_tune_config(PRESET, overrides=["tune.metric=test_f1"])


def test_trial_config_applies_the_sampled_params_and_validates(tmp_path):
    cfg, _ = load_tune_config(PRESET)
    params = {"lora_r": 16, "learning_rate": 3e-3, "strategy": "classifier"}
    trial = trial_config(cfg.to_dict(), params, tmp_path / "trials" / "t1")
    assert (trial.lora.r, trial.train.learning_rate, trial.model.strategy) == (16, 3e-3, "classifier")
    assert trial.output_dir == str(tmp_path / "trials" / "t1") and cfg.lora.r == 8  # the base is untouched
    with pytest.raises(ConfigError, match="lora.r must be >= 1"):
        trial_config(cfg.to_dict(), {"lora_r": 0}, tmp_path)


def test_max_concurrent_trials_follows_the_cluster():
    cfg, tc = load_tune_config(PRESET, updates={"scaling.num_workers": 2})
    assert max_concurrent_trials(cfg, tc, {"CPU": 8}) == 2  # 2 workers + 1 trial actor = 3 CPUs a trial
    assert max_concurrent_trials(cfg, tc, {"CPU": 2}) == 1  # never below one
    gpu, _ = load_tune_config(PRESET, updates={"scaling.num_workers": 2, "scaling.use_gpu": True})
    assert max_concurrent_trials(gpu, tc, {"CPU": 64, "GPU": 4}) == 2  # GPUs bind first
    _, fixed = load_tune_config(PRESET, updates={"tune.max_concurrent": 5})
    assert max_concurrent_trials(cfg, fixed, {"CPU": 2}) == 5


def test_asha_refused_when_workers_cannot_reach_the_state_api(ray_cluster):
    from sentiment_ray.tuning.sweep import _require_state_api

    # The session cluster runs without the dashboard: a stopped trial's placement group would leak.
    with pytest.raises(ConfigError, match="State API"):
        _require_state_api()


def sweep(out: Path, *extra: str, timeout: int = 600, **popen) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "sentiment_ray.cli.commands",
        "tune",
        "--config",
        str(PRESET),
        "--output-dir",
        str(out),
    ]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # an embedded Ray of its own
    return subprocess.run([*command, *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def read_trials(out: Path) -> list[dict]:
    with (out / "trials.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


# Sequential trials (max_concurrent 1) and an aggressive ASHA: the second and later trials meet a rung
# that earlier ones recorded, and the seeded search + deterministic CPU training make the outcome repeatable.
ASHA = [
    "--num-samples", "3", "--max-concurrent", "1",
    "--set", "tune.metric=eval_loss", "--set", "tune.mode=min",
    "--set", "tune.grace_period=1", "--set", "tune.reduction_factor=2",
    "--set", "train.max_steps=6",
]  # fmt: skip


def test_asha_sweep_stops_trials_early_exports_the_best_and_restores(tmp_path):
    from sentiment_ray.inference.predictor import SentimentPredictor

    out = tmp_path / "sweep"
    first = sweep(out, *ASHA)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    rows = read_trials(out)
    assert len(rows) == 3 and {r["status"] for r in rows} <= {"completed", "stopped_early"}
    stopped = [r for r in rows if r["status"] == "stopped_early"]
    completed = [r for r in rows if r["status"] == "completed"]
    assert stopped and completed, rows
    assert all(int(r["steps"]) < 6 and not r["test_accuracy"] for r in stopped)
    assert all(int(r["steps"]) == 6 and 0 <= float(r["test_accuracy"]) <= 1 for r in completed)

    best = min(completed, key=lambda r: float(r["last_eval_loss"]))
    results = json.loads((out / "best" / "test_results.json").read_text())
    assert results["trial_id"] == best["trial_id"] and results["params"]["lora_r"] == int(best["lora_r"])
    assert results["test"]["n"] == 64 and results["test"]["accuracy"] == pytest.approx(float(best["test_accuracy"]))
    assert f"best model: {out / 'best'}" in first.stdout and best["trial_id"] in first.stdout
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG" and "stopped_early" in (out / "trials.md").read_text()

    predictor = SentimentPredictor.from_pretrained(out / "best", device="cpu", precision="fp32")
    assert predictor.meta["finetune"] == "lora"
    assert all(p["error"] is None for p in predictor.predict_batch(["质量很好，推荐购买", "太差了，退货"]))

    checkpoints = sorted(p.name for p in (out / "ray" / "train").glob("*/checkpoint_*"))
    started = time.monotonic()
    again = sweep(out, *ASHA, "--num-samples", "5")  # a restored sweep keeps the config it started with
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "restored from an earlier run" in again.stdout and "this run's config and flags differ" in again.stdout
    assert read_trials(out) == rows  # same ids, statuses and times: nothing was trained again
    assert sorted(p.name for p in (out / "ray" / "train").glob("*/checkpoint_*")) == checkpoints
    assert time.monotonic() - started < 90


@pytest.mark.slow
def test_interrupted_sweep_resumes_only_unfinished_trials(tmp_path):
    out = tmp_path / "sweep"
    args = ["--num-samples", "3", "--max-concurrent", "1", "--set", "tune.scheduler=none", "--set", "train.max_steps=6"]
    command = [
        sys.executable,
        "-m",
        "sentiment_ray.cli.commands",
        "tune",
        "--config",
        str(PRESET),
        "--output-dir",
        str(out),
    ]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    proc = subprocess.Popen([*command, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: len(list((out / "ray" / "train").glob("*/checkpoint_*"))) >= 6, proc)  # into trial 2
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: Tune saves the experiment state and stops
        proc.wait(timeout=120)
    first_ids = {r["trial_id"]: r for r in read_trials(out)}
    done = {i: r for i, r in first_ids.items() if r["status"] == "completed"}
    assert done and any(r["status"] == "unfinished" for r in first_ids.values()), first_ids
    assert not (out / "best").exists()

    resumed = sweep(out, *args)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    rows = {r["trial_id"]: r for r in read_trials(out)}
    assert len(rows) == 3 and all(r["status"] == "completed" for r in rows.values())
    assert set(first_ids) <= set(rows)
    assert all(rows[i]["time_s"] == r["time_s"] for i, r in done.items())  # finished trials were not redone
    assert (out / "best" / "test_results.json").is_file()


def _wait_for(condition, proc, timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        assert time.monotonic() < deadline, "timed out waiting for the sweep to progress"
        time.sleep(1)
