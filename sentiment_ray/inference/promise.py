"""What a score job's selection promises and for which data: the threshold, the calibration rows behind it, and the
shift check of the scored rows against them (sentiment_ray/shift.py)."""

from __future__ import annotations

import logging
import time

from sentiment_ray.calibration import named, selection
from sentiment_ray.shift import check_shift, describe_source, warning_line

log = logging.getLogger("sentiment_ray.score")  # console tag [score]

COUNTS_WAIT_S = 30.0
"""How long the driver waits for the actors' last row counts (sent without waiting) to reach the counter."""


def selection_on_driver(opts, meta: dict) -> dict | None:
    """Check the target and find its threshold before Ray starts: what the summary reports about selection.

    `opts`: ScoreOptions or EvaluateOptions-like (target_accuracy, min_confidence, calibration)."""
    block = named(meta, opts.calibration)  # an unknown calibration name fails here, before Ray starts
    chosen = selection(block, opts.target_accuracy, opts.min_confidence)
    if chosen is None:
        return None
    threshold, reason = chosen
    if opts.min_confidence is not None:
        return {"min_confidence": threshold, "threshold": threshold}
    row = next((r for r in block["thresholds"] if r["threshold"] == threshold), {}) if threshold else {}
    return {
        "target_accuracy": opts.target_accuracy,
        "threshold": threshold,
        "reason": reason,
        "expected_accuracy_of_kept": row.get("accuracy"),
        "accuracy_lower_bound": row.get("accuracy_lower_bound"),
        "lower_bound_n": row.get("n_kept"),
        "promise": promise(block, opts.calibration),
    }


def promise(block: dict | None, name: str | None) -> str | None:
    """What the target promises, in words: on which rows it was measured and for which data it holds."""
    if not block:
        return None
    fitted = block.get("fitted_on", {})
    return (
        f"calibration {name or 'default'}: fitted on {fitted.get('rows', '?')} labelled rows of "
        f"{describe_source(fitted)}; the target holds (with {1 - block.get('delta', 0.05):.0%} confidence) for data "
        "like those rows: see `shift`"
    )


def job_shift(meta: dict, name: str | None, counter, rows_expected: int) -> dict:
    """The shift check over every row this job scored, from the counts its actors sent to `counter`; a shifted
    verdict is also one warning line on the console."""
    import ray

    deadline = time.monotonic() + COUNTS_WAIT_S
    while ray.get(counter.total.remote()) < rows_expected and time.monotonic() < deadline:
        time.sleep(0.1)  # the actors' last `add` calls may still be on their way
    verdict = check_shift(named(meta, name), ray.get(counter.tally.remote()), name)
    line = warning_line(verdict)
    if line:
        log.warning(line)
    return verdict
