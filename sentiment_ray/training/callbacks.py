"""Hugging Face Trainer callbacks of the training loop, without Ray: progress lines, step times, fault injection.
(The Ray checkpoint callback is in training/worker.py.)"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from transformers import TrainerCallback

log = logging.getLogger(__name__)


class ProgressCallback(TrainerCallback):
    """One plain log line per logging step (step, loss, samples/s, ETA): readable in `ray job logs`."""

    def __init__(self):
        self.start = time.monotonic()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        elapsed = time.monotonic() - self.start
        rate = state.global_step / elapsed if elapsed > 0 else 0.0
        eta = (state.max_steps - state.global_step) / rate if rate > 0 else float("nan")
        log.info(
            "step %d/%d epoch %.2f loss %.4f lr %.2e elapsed %.0fs eta %.0fs",
            state.global_step,
            state.max_steps,
            state.epoch,
            logs["loss"],
            logs.get("learning_rate", 0),
            elapsed,
            eta,
        )


class StepTimeCallback(TrainerCallback):
    """Wall seconds of each optimizer step (forward, backward, all-reduce, update), without evaluation and saving.

    `summary()` gives the median over the steps after the first (which pays one-time warm-up), the number the
    real-shape smoke and the benchmarks quote as seconds per step.
    """

    def __init__(self):
        self.seconds: list[float] = []
        self._began = None

    def on_step_begin(self, args, state, control, **kwargs):
        self._began = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self._began is not None:
            self.seconds.append(time.monotonic() - self._began)
            self._began = None

    def summary(self) -> dict:
        rounded = [round(s, 3) for s in self.seconds]  # ms resolution; the median is one of the listed values
        steady = sorted(rounded[1:] or rounded)
        median = steady[len(steady) // 2] if steady else None
        return {"step_seconds": rounded, "seconds_per_step": median}


class FailAtStepCallback(TrainerCallback):
    """Test hook (SENTIMENT_RAY_FAIL_AT_STEP=N): kill rank 0's process at step N, once per marker file.

    `os._exit` mimics a crashed or preempted worker (no Python cleanup, no exception to catch), so
    Ray Train's failure handling, not ours, has to bring the run back.
    """

    def __init__(self, step: int, marker: str):
        self.step, self.marker = step, Path(marker)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step and state.is_world_process_zero and not self.marker.exists():
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            # When, so the driver can report how long recovery took (killed → training again from a checkpoint).
            self.marker.write_text(json.dumps({"killed_at_step": self.step, "killed_at_unix": time.time()}))
            log.warning("fault injection: killing rank 0 at step %d", self.step)
            os._exit(1)


class HoldAtStepCallback(TrainerCallback):
    """Test hook (SENTIMENT_RAY_HOLD_AT_STEP=N): after the checkpoint of step N is reported, rank 0 waits.

    A test that stops a job mid-run (`ray job stop`) then cannot lose the race to a run that finishes first.
    The wait ends with the job; `HOLD_S` only bounds a forgotten one. Runs after the report callback.
    """

    HOLD_S = 600

    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step and state.is_world_process_zero:
            log.warning("fault injection: holding rank 0 after the checkpoint of step %d", self.step)
            time.sleep(self.HOLD_S)


def fault_injection(loop_config: dict) -> list:
    """The test-hook callbacks the driver asked for (SENTIMENT_RAY_FAIL_AT_STEP, SENTIMENT_RAY_HOLD_AT_STEP)."""
    callbacks = []
    if loop_config.get("fail_at_step"):
        callbacks.append(FailAtStepCallback(loop_config["fail_at_step"], loop_config["fail_marker"]))
    if loop_config.get("hold_at_step"):
        callbacks.append(HoldAtStepCallback(loop_config["hold_at_step"]))
    return callbacks
