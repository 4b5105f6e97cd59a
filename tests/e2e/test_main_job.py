"""The README's main job, as a user runs it: `make train` (jobs/configs/tiny.yaml), then predict on its model folder.

`make train` writes runs/tiny and keeps its console in runs/tiny/console.txt; CI runs it before the tests, and this
test reads that run. Where there is none (or it was made with another config), the test trains it itself, in a
subprocess that joins the session's Ray, so `make test` alone passes on a fresh machine.
"""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sentiment_ray.config import load_config

ROOT = Path(__file__).parents[2]
PRESET = ROOT / "jobs" / "configs" / "tiny.yaml"
MAKE_TRAIN_RUN = ROOT / "runs" / "tiny"  # the preset's output_dir
CONSOLE = "console.txt"


def made_by_make_train(run: Path) -> bool:
    """Whether `run` holds a finished run of the preset as it is now (a run of an older config is not reused)."""
    if not all((run / name).is_file() for name in ("config.yaml", "test_results.json", "model/sentiment_meta.json")):
        return False
    saved, preset = load_config(run / "config.yaml"), load_config(PRESET)
    # The preset leaves the label set to the data; the saved config records what the data gave.
    if preset.labels is None:
        preset = dataclasses.replace(preset, labels=saved.labels)
    return saved == preset


@pytest.fixture(scope="module")
def main_job(tmp_path_factory, request) -> tuple[Path, list[str]]:
    """(run folder, console lines) of `make train`'s run, or of a run of the same command trained here."""
    if made_by_make_train(MAKE_TRAIN_RUN):
        console = MAKE_TRAIN_RUN / CONSOLE
        return MAKE_TRAIN_RUN, console.read_text().splitlines() if console.is_file() else []
    run = tmp_path_factory.mktemp("main-job") / "tiny"
    command = [sys.executable, "-m", "sentiment_ray.cli.commands", "train", "--config", str(PRESET)]
    env = request.getfixturevalue("ray_env")
    out = subprocess.run(
        [*command, "--output-dir", str(run)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"model folder: {run / 'model'}" in out.stdout
    return run, (out.stdout + out.stderr).splitlines()


def test_tiny_preset_main_job(main_job):
    run, console = main_job
    if console:  # the console reads like a product: progress once, a summary, at most 40 lines; the rest in the log
        assert len(console) <= 40, console
        steps = [line for line in console if line.startswith("[train] step")]
        assert steps and len(steps) == len(set(steps))
        assert any(line.startswith("[train] done in") and "test accuracy" in line for line in console)
        assert any(line.startswith("model folder: ") and line.endswith(str(Path("tiny") / "model")) for line in console)
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
