"""Ray Tune sweeps: config section, ASHA early stopping, best model export, resume after Ctrl-C, restore when done.

The sweep runs through the CLI in a subprocess that joins the session's Ray (RAY_ADDRESS), as a user's `tune`
joins a cluster; that Ray has the dashboard, whose State API ASHA needs (docs/ray-2.60.md).
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
from helpers import wait_for

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


def test_asha_refused_when_workers_cannot_reach_the_state_api():
    """A Ray started without the dashboard (a start-up of its own: the session's Ray has one), as
    `ray start --include-dashboard=false` or `ray.init(include_dashboard=False)` leave a user's cluster."""
    script = (
        "import ray\n"
        "from sentiment_ray.errors import ConfigError\n"
        "from sentiment_ray.tuning.sweep import _require_state_api\n"
        "ray.init(num_cpus=1, include_dashboard=False)\n"
        "try:\n"
        "    _require_state_api()\n"
        "except ConfigError as err:\n"
        "    print('refused:', err)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "refused: tune.scheduler=asha needs the Ray dashboard's State API" in done.stdout, done.stdout[-3000:]


# Sequential trials (max_concurrent 1) and an aggressive ASHA: the second and later trials meet a rung
# that earlier ones recorded, and the seeded search + deterministic CPU training make the outcome repeatable.
# One failure allowed per Train run: a trial whose worker dies restarts its workers from its latest checkpoint.
ASHA = [
    "--num-samples", "3", "--max-concurrent", "1",
    "--set", "tune.metric=eval_loss", "--set", "tune.mode=min",
    "--set", "tune.grace_period=1", "--set", "tune.reduction_factor=2",
    "--set", "train.max_steps=4", "--set", "train.max_failures=1",
]  # fmt: skip


def sweep_command(out: Path, *extra: str) -> list[str]:
    command = [sys.executable, "-m", "sentiment_ray.cli.commands", "tune", "--config", str(PRESET)]
    return [*command, "--output-dir", str(out), *ASHA, *extra]


def read_trials(out: Path) -> list[dict]:
    with (out / "trials.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def trials_with_a_checkpoint(out: Path) -> set[str]:
    """Trials whose Ray Train run holds a checkpoint (each trial's run is named after it)."""
    return {p.parent.name for p in (out / "ray" / "train").glob("*/checkpoint_*")}


@pytest.mark.faults  # a Train worker of the resumed sweep gets SIGKILL
def test_asha_sweep_interrupted_resumes_unfinished_trials_exports_the_best_and_then_restores(tmp_path, ray_env):
    from sentiment_ray.inference.predictor import SentimentPredictor

    out = tmp_path / "sweep"
    log = tmp_path / "interrupted.log"
    with log.open("w") as sink:  # a file, not a pipe: a full pipe would stall the sweep
        proc = subprocess.Popen(sweep_command(out), cwd=ROOT, env=ray_env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            _wait_for(lambda: len(trials_with_a_checkpoint(out)) >= 2, proc)  # trial 1 ended, trial 2 under way
        finally:
            proc.send_signal(signal.SIGINT)  # Ctrl-C: Tune saves the experiment state and stops
            proc.wait(timeout=120)
    assert proc.returncode == 1, log.read_text()[-3000:]  # "sweep interrupted: rerun the same command to resume it"
    interrupted = {r["trial_id"]: r for r in read_trials(out)}
    ended = {i: r for i, r in interrupted.items() if r["status"] in ("completed", "stopped_early")}
    assert ended and any(r["status"] == "unfinished" for r in interrupted.values()), interrupted
    assert not (out / "best").exists()

    # The resumed sweep: one of its Train workers gets SIGKILL; its trial goes on from its checkpoint.
    resumed = subprocess.Popen(sweep_command(out), cwd=ROOT, env=ray_env, stdout=subprocess.PIPE, text=True)
    try:
        killed = kill_a_train_worker(resumed)
        stdout = resumed.communicate(timeout=900)[0]
    finally:
        resumed.kill()
    assert resumed.returncode == 0, stdout[-3000:]
    rows = read_trials(out)
    assert len(rows) == 3 and set(interrupted) <= {r["trial_id"] for r in rows}  # later trials were not drawn yet
    assert {r["status"] for r in rows} <= {"completed", "stopped_early"}
    assert all(r["time_s"] == ended[r["trial_id"]]["time_s"] for r in rows if r["trial_id"] in ended)  # not redone
    stopped = [r for r in rows if r["status"] == "stopped_early"]
    completed = [r for r in rows if r["status"] == "completed"]
    assert stopped and completed, rows
    assert all(int(r["steps"]) < 4 and not r["test_accuracy"] for r in stopped)
    assert all(int(r["steps"]) == 4 and 0 <= float(r["test_accuracy"]) <= 1 for r in completed)

    best = min(completed, key=lambda r: float(r["last_eval_loss"]))
    results = json.loads((out / "best" / "test_results.json").read_text())
    assert results["trial_id"] == best["trial_id"] and results["params"]["lora_r"] == int(best["lora_r"])
    assert results["test"]["n"] == 64 and results["test"]["accuracy"] == pytest.approx(float(best["test_accuracy"]))
    assert f"best model: {out / 'best'}" in stdout and best["trial_id"] in stdout
    assert killed, "no Train worker was killed"  # a worker of a trial that still finished (statuses above)
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG" and "stopped_early" in (out / "trials.md").read_text()
    predictor = SentimentPredictor.from_pretrained(out / "best", device="cpu", precision="fp32")
    assert predictor.meta["finetune"] == "lora"
    assert all(p["error"] is None for p in predictor.predict_batch(["质量很好，推荐购买", "太差了，退货"]))

    checkpoints = sorted(p.name for p in (out / "ray" / "train").glob("*/checkpoint_*"))
    again = subprocess.run(  # a restored sweep keeps the config it started with
        sweep_command(out, "--num-samples", "5"), cwd=ROOT, env=ray_env, capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "restored from an earlier run" in again.stdout and "this run's config and flags differ" in again.stdout
    assert read_trials(out) == rows  # same ids, statuses and times: nothing was trained again
    assert sorted(p.name for p in (out / "ray" / "train").glob("*/checkpoint_*")) == checkpoints


def kill_a_train_worker(sweep: subprocess.Popen) -> int | None:
    """SIGKILL of one Ray Train worker of the sweep's running trial once its training function runs (on the
    session's Ray, which the sweep joined); its pid, or None if the sweep ended first.

    Not earlier: Ray 2.60 retries a worker that dies in the training function (FailureConfig.max_failures) but
    fails the trial when one dies while its worker group starts (docs/ray-2.60.md)."""
    import ray
    from ray.util.state import list_actors, list_tasks

    address = ray.get_runtime_context().gcs_address

    def training_workers() -> list[int]:
        alive = list_actors(address=address, filters=[("state", "=", "ALIVE"), ("class_name", "=", "RayTrainWorker")])
        launched = list_tasks(address=address, filters=[("name", "=", "RayTrainWorker.run_train_fn")], limit=10_000)
        started = {t.actor_id for t in launched if t.state == "FINISHED"}  # it returns once the train thread runs
        return [a.pid for a in alive if a.actor_id in started]

    pids = wait_for(lambda: training_workers() or sweep.poll() is not None, timeout_s=400, every_s=0.5)
    if pids is True or not pids:
        return None
    os.kill(pids[0], signal.SIGKILL)
    return pids[0]


def _wait_for(condition, proc, timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        assert time.monotonic() < deadline, "timed out waiting for the sweep to progress"
        time.sleep(0.5)
