"""The real-shape smoke's harness (benchmarks/real_shape.py) on the tiny base: every step through the real CLI (train
with the Qwen2.5-1.5B LoRA preset + the CPU overlay on 2 workers, resume it from its first checkpoint, predict,
score, evaluate, serve, tune), results recorded. One worker count and one precision: each step's subject has its
own test; this one keeps the harness working.

`make smoke-real-shape` runs the same harness on the 28-layer shape; this test keeps the harness itself working."""

import json
from pathlib import Path

import pytest

from benchmarks import common, real_shape, real_shape_steps
from benchmarks.net import free_port


@pytest.mark.slow
def test_the_smoke_runs_every_step_on_the_tiny_base_and_records_it(tmp_path, monkeypatch, ray_env):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setenv("RAY_ADDRESS", ray_env["RAY_ADDRESS"])  # its commands join the session's Ray
    argv = ["--model", "tiny", "--presets", "lora", "--strategies", "label_scoring", "--workers", "2", "--rows", "20"]
    argv += ["--precisions", "fp32", "--tune-trials", "1"]  # one Ray Train run of the sweep: the step, not Tune
    argv += ["--work-dir", str(tmp_path / "runs"), "--port", str(free_port())]

    assert real_shape.main(argv) == 0

    result = json.loads((tmp_path / "results" / "real_shape.json").read_text())
    steps = [r["step"] for r in result["rows"]]
    consumers = ["predict", "score fp32", "predictor fp32", "evaluate", "serve"]  # on the first (here: only) folder
    assert steps == ["build base", "train", "resume", *consumers, "tune"]
    assert all(r["ok"] for r in result["rows"]) and result["failed_steps"] == 0 and result["finished"]
    trained = result["rows"][1]
    assert trained["global_step"] == 3 and trained["seconds_per_step"] > 0 and trained["worker_peak_rss_mb"][0] > 0
    assert trained["model_folder_mb"] > trained["adapter_mb"] > 0 and trained["checkpoint_mb"] > 0
    scored = next(r for r in result["rows"] if r["step"] == "score fp32")
    assert scored["rows"] == 20 and scored["reviews_per_s_job"] > 0
    served = next(r for r in result["rows"] if r["step"] == "serve")  # joined the session's Ray, left on Ctrl-C
    assert served["ready_s"] > 0 and served["stopped_s"] < real_shape_steps.STOP_WAIT_S
    resumed = next(r for r in result["rows"] if r["step"] == "resume")  # 2 workers, from checkpoint-2 of 3 steps
    assert resumed["workers"] == 2 and resumed["resumed_from_step"] == 2 and resumed["global_step"] == 3


def test_a_resume_without_a_checkpoint_to_start_from_is_a_failed_step(tmp_path):
    (tmp_path / "run" / "hf_checkpoints").mkdir(parents=True)
    preset, overlay = Path(real_shape.PRESETS["lora"]), Path(real_shape.OVERLAYS["cpu"])

    resumed = real_shape_steps.resume(preset, overlay, ["classifier", 2, "tiny"], tmp_path / "run", "cpu")

    assert not resumed["ok"] and "no checkpoint-N" in resumed["error"]


def test_cases_can_be_chosen_and_a_resumed_smoke_keeps_only_a_matching_earlier_run(tmp_path, monkeypatch):
    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path)
    chosen = real_shape.parse_args(["--cases", "qlora:classifier:2,lora:label_scoring:1"])
    assert real_shape.planned_cases(chosen) == [("qlora", "classifier", 2), ("lora", "label_scoring", 1)]
    every = real_shape.planned_cases(real_shape.parse_args([]))
    assert len(every) == 8 and ("qlora", "label_scoring", 2) in every  # 2 presets x 2 strategies x 1, 2 workers
    rows = [{"step": "train", "ok": True, "preset": "lora", "strategy": "label_scoring", "workers": 1}]
    earlier = {"model": real_shape.SHAPE, "device": "cpu", "consumer_rows": 40, "rows": rows}
    (tmp_path / "real_shape.json").write_text(json.dumps(earlier))
    assert real_shape.recorded_rows(real_shape.parse_args(["--rows", "40"])) == rows
    assert real_shape.recorded_rows(real_shape.parse_args(["--rows", "100"])) == []  # other rows: start over
