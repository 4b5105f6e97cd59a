"""What a sweep reports: Train → Tune results while it runs, and the trial table, plot and best model after.

Imports Ray Tune at module level (the callback must subclass Tune's); `sentiment_ray.tuning.sweep` imports this
module only when a sweep runs.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from ray.tune.integration.ray_train import TuneReportCallback

PARAMS = ("lora_r", "learning_rate", "lora_alpha", "lora_dropout", "strategy")
TEST_KEYS = ("test_accuracy", "test_f1", "test_roc_auc")
STATUS_NOTE = {
    "completed": "trained to the end; has a final model",
    "stopped_early": "stopped by ASHA at a rung; no final model",
    "error": "failed; see the error column and the trial's logs",
    "unfinished": "interrupted with the sweep; rerunning the same command resumes it",
}


class EvalCarryingReport(TuneReportCallback):
    """Forwards rank 0's Train reports to Tune; the final one also gets the last validation metrics.

    The final report (`final: 1`, test metrics, the model folder's checkpoint) has no `eval_*` keys, and Tune
    refuses a result without its metric. HF evaluates at the last step, so the last `eval_*` values are the
    final model's: carrying them makes the trial's last result describe the model it ends with.
    """

    def __init__(self, metric: str):
        super().__init__()
        self._metric = metric
        self._last_eval: dict = {}

    def after_report(self, run_context, metrics, checkpoint):
        latest = metrics[0]
        evals = {k: v for k, v in latest.items() if k.startswith("eval_")}
        if evals:
            self._last_eval = evals
        elif latest.get("final"):
            # A trial resumed after its last step evaluates nothing in this attempt: NaN passes Tune's check
            # and the table falls back to the last value recorded before.
            metrics = [{self._metric: math.nan, **self._last_eval, **latest}, *metrics[1:]]
        super().after_report(run_context, metrics, checkpoint)


def summarize(grid, tc) -> list[dict]:
    """One row per trial of a Tune ResultGrid, sorted by trial id."""
    from ray.tune import ExperimentAnalysis

    # ResultGrid has no trial status; the saved experiment state does (and tells interrupted trials apart).
    trials = ExperimentAnalysis(grid.experiment_path, storage_filesystem=grid.filesystem).trials
    by_path = {trial.path: trial for trial in trials}
    return sorted((_row(result, by_path[result.path], tc) for result in grid), key=lambda r: r["trial_id"])


def _row(result, trial, tc) -> dict:
    last = result.metrics or {}
    history = _history(result.metrics_dataframe, tc.metric)
    status = _status(trial.status, bool(last.get("final")))
    completed = status == "completed"
    values = [v for v in history if math.isfinite(v)]
    pick = max if tc.mode == "max" else min
    steps = _history(result.metrics_dataframe, "step")
    # A trial that Ctrl-C caught before its first report has no result config yet; the experiment state has it.
    params = result.config or trial.config or {}
    return {
        "trial_id": trial.trial_id,
        **{name: params[name] for name in PARAMS if name in params},
        "status": status,
        "reports": last.get("training_iteration"),
        "steps": int(max(steps)) if steps else None,
        f"last_{tc.metric}": values[-1] if values else None,
        f"best_{tc.metric}": pick(values) if values else None,
        **{key: last.get(key) if completed else None for key in TEST_KEYS},
        "time_s": round(last["time_total_s"], 1) if "time_total_s" in last else None,
        "checkpoint": last.get("checkpoint_path") if completed else None,
        "error": str(result.error).splitlines()[0][:200] if result.error else None,
    }


def _status(tune_status: str, final: bool) -> str:
    if tune_status == "ERROR":
        return "error"
    if tune_status != "TERMINATED":
        return "unfinished"  # the sweep was interrupted (Ctrl-C, killed driver); a rerun resumes it
    return "completed" if final else "stopped_early"


def _history(frame, column: str) -> list[float]:
    if frame is None or column not in frame:
        return []
    return [float(v) for v in frame[column].dropna()]


def write_tables(rows: list[dict], output_dir: Path, tc) -> tuple[Path, Path]:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    csv_path, md_path = output_dir / "trials.csv", output_dir / "trials.md"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    shown = [c for c in columns if c not in ("checkpoint", "error")]
    lines = [
        f"# Sweep: {len(rows)} trials, metric `{tc.metric}` ({tc.mode}), scheduler `{tc.scheduler}`",
        "",
        "| " + " | ".join(shown) + " |",
        "|" + " --- |" * len(shown),
        *("| " + " | ".join(_cell(c, row.get(c)) for c in shown) + " |" for row in rows),
        "",
        *(f"- `{status}`: {note}" for status, note in STATUS_NOTE.items()),
        f"- `last_{tc.metric}` is the validation value at the trial's last checkpoint; for a completed trial that",
        "  is its final model. The best trial is chosen among completed trials by this value.",
        *(f"- {row['trial_id']} failed: {row['error']}" for row in rows if row.get("error")),
    ]
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv_path, md_path


def _cell(column: str, value) -> str:
    if value is None:
        return ""
    if column == "learning_rate":
        return f"{value:.2e}"
    if column == "time_s":
        return f"{value:.0f}"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_plot(rows: list[dict], path: Path, tc) -> Path:
    """Learning rate (x, log) × LoRA rank (y, log2), coloured by the trial's last metric value."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    key = f"last_{tc.metric}"
    scored = [r for r in rows if r.get(key) is not None]
    lows, highs = [r[key] for r in scored] or [0.0], [r[key] for r in scored] or [1.0]
    shared = {"cmap": "viridis" if tc.mode == "max" else "viridis_r", "vmin": min(lows), "vmax": max(highs)}
    points = None
    for status, marker in (("completed", "o"), ("stopped_early", "X")):
        group = [r for r in scored if r["status"] == status]
        if group:
            points = ax.scatter(
                [r["learning_rate"] for r in group],
                [r["lora_r"] for r in group],
                c=[r[key] for r in group],
                marker=marker,
                s=120,
                edgecolors="black",
                label=status.replace("_", " "),
                **shared,
            )
    best = best_row(rows, tc)
    if best is not None:
        ax.scatter([best["learning_rate"]], [best["lora_r"]], s=420, facecolors="none", edgecolors="red", label="best")
    if points is not None:
        fig.colorbar(points, ax=ax, label=f"{tc.metric} at the last checkpoint")
    ax.set_xscale("log")
    ax.set_yscale("log", base=2)
    ax.set_yticks(sorted(tc.lora_r), [str(r) for r in sorted(tc.lora_r)])
    ax.set_xlabel("learning rate")
    ax.set_ylabel("LoRA rank r")
    ax.set_title(f"Sweep: {len(rows)} trials, scheduler {tc.scheduler}")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def best_row(rows: list[dict], tc) -> dict | None:
    """Best completed trial: ASHA-stopped trials have no final model to export, so they are not candidates."""
    key = f"last_{tc.metric}"
    done = [r for r in rows if r["status"] == "completed" and r.get(key) is not None]
    if not done:
        return None
    return (max if tc.mode == "max" else min)(done, key=lambda r: r[key])
