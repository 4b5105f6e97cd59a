"""The README's main job, exactly as a user runs it (minutes: marked slow, run by `make test-slow` and CI)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


@pytest.mark.slow
def test_tiny_preset_main_job(tmp_path):
    run = tmp_path / "tiny"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sentiment_ray.cli.commands",
            "train",
            "--config",
            "jobs/configs/tiny.yaml",
            "--output-dir",
            str(run),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"model folder: {run / 'model'}" in out.stdout
    # The console reads like a product: progress once, a summary, at most 40 lines; the rest is in the log.
    console = (out.stdout + out.stderr).splitlines()
    assert len(console) <= 40, console
    steps = [line for line in console if line.startswith("[train] step")]
    assert steps and len(steps) == len(set(steps))
    assert any(line.startswith("[train] done in") and "test accuracy" in line for line in console)
    assert not [line for line in console if "Reporting training result" in line or "Warning" in line]
    assert "Reporting training result" in (run / "train.log").read_text()
    test = json.loads((run / "test_results.json").read_text())["test"]
    assert test["n"] == 1200
    # A random-init 2-layer model learns the offline corpus to well above chance in one epoch; this is a
    # pipeline check with a wide margin, not a claim about Qwen2.5-1.5B.
    assert test["accuracy"] > 0.75
    predict = subprocess.run(
        [sys.executable, "-m", "sentiment_ray.cli", "predict", "--model-path", str(run / "model"), "--demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    labels = [json.loads(line)["label"] for line in predict.stdout.splitlines()]
    assert labels[:2] == ["positive", "negative"], predict.stdout
