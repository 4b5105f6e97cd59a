"""The GPU check's rehearsal (scripts/gpu_check.sh --rehearse): the same steps as on a CUDA box, on the CPU with the
tiny model, from a bundle without the network's help. Its one process must not import what the box lacks (Ray,
snownlp, dashscope, calamine, matplotlib, tensorboard). The rehearsal in a venv that mirrors the box's packages is
in docs/gpu.md; this one runs in the test venv, with a bundle whose wheels the venv already holds."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import gpu_check
from benchmarks.gpu_bundle import write_bundle

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_rehearsal_runs_every_step_without_ray_and_records_it(tmp_path):
    bundle = tmp_path / "bundle"
    summary = write_bundle(bundle)
    assert set(summary["files"]) == {"qwen.tiktoken", "reviews.csv"} and summary["megabytes"] < 60
    env = {**os.environ, "PY": sys.executable, "BUNDLE": str(bundle), "OUT": str(tmp_path / "out")}
    env.pop("RAY_ADDRESS", None)
    command = ["bash", "scripts/gpu_check.sh", "--rehearse", "--work-dir", str(tmp_path / "work")]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"results in {tmp_path / 'out'}/gpu_check.json" in done.stdout

    result = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert result["failed_steps"] == 0 and result["imported_but_absent_on_the_box"] == []
    assert len(result["rows"]) == 9 and all(step["ok"] for step in result["rows"])  # peak, 4 trainings, 2+1+1
    assert result["reviews"] == str(bundle / "reviews.csv") and result["rehearsal"] and result["model"] == "tiny"
    trained = {(r["preset"], r["strategy"]): r for r in result["training"]}
    assert len(trained) == 4
    assert all(r["steps"] == 2 and r["reloads"] and r["tokens_per_s"] > 0 for r in trained.values())
    scored = [r for r in result["predictor"] if r["strategy"] == "label_scoring"]
    assert [r["default"] for r in scored] == [False, True, False] and all(r["mfu"] > 0 for r in scored)
    assert all(r["rows"] == 200 for r in result["predictor"])  # a rehearsal scores 200 reviews
    single = {r["measure"]: r for r in result["single_measures"]}
    assert single["export"]["agrees"] and single["qlora_load"]["load_and_first_predict_s"] > 0
    assert "## Training, one worker without Ray" in (tmp_path / "out" / "gpu_check.md").read_text()


def test_a_step_over_its_limit_or_past_the_budget_is_recorded_and_the_next_one_runs(monkeypatch):
    import time

    monkeypatch.setitem(gpu_check.STEP_LIMIT_S, "peak", 1)
    record: list[dict] = []
    deadline = time.monotonic() + 60
    assert gpu_check.run_step("stuck", "peak", lambda: time.sleep(5), record, deadline) is None
    assert gpu_check.run_step("quick", "peak", lambda: 42, record, deadline) == 42
    assert gpu_check.run_step("late", "peak", lambda: 42, record, time.monotonic()) is None
    assert [(r["step"], r["ok"]) for r in record] == [("stuck", False), ("quick", True), ("late", False)]
    assert "over its 1 s limit" in record[0]["error"] and "budget is spent" in record[2]["error"]
