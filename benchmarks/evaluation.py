"""Wall time of `sentiment-ray evaluate` (every perturbation, both baselines), this code against an earlier revision.

    python -m benchmarks.evaluation --model-path runs/tiny/model [--baseline-rev REV] [--repeats 1]

Runs `sentiment-ray evaluate --model-path M --data offline` (the offline test split, 1,200 rows) through the CLI in
a fresh process, so Ray start-up, model loads, scoring jobs and report writing all count. With --baseline-rev the
same command also runs on that git revision (checked out in a temporary worktree, imported via PYTHONPATH), one
after the other on the same machine. Writes results/bench/evaluation.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import common


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", default="runs/tiny/model")
    parser.add_argument("--data", default="offline")
    parser.add_argument("--baseline-rev", help="a git revision to time the same command on, e.g. a commit before")
    parser.add_argument("--repeats", type=int, default=1)
    return parser.parse_args(argv)


def time_evaluate(code_dir: Path, model_path: str, data: str, label: str) -> dict:
    """One `evaluate` with the package imported from `code_dir`: wall seconds and what its scoring cost."""
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        out = Path(tmp) / "eval"
        command = [
            sys.executable,
            "-m",
            "sentiment_ray.cli",
            "evaluate",
            "--model-path",
            str(Path(model_path).resolve()),
        ]
        command += ["--data", data, "--output-dir", str(out)]
        env = {**os.environ, "PYTHONPATH": str(code_dir), "RAY_AUTH_MODE": "token", "HF_HUB_OFFLINE": "1"}
        started = time.monotonic()
        done = subprocess.run(command, cwd=code_dir, env=env, capture_output=True, text=True)
        seconds = time.monotonic() - started
        if done.returncode != 0:
            raise SystemExit(f"{label}: evaluate failed ({done.returncode}):\n{done.stderr[-3000:]}")
        metrics = json.loads((out / "metrics.json").read_text())
    scoring = metrics.get("scoring", {})  # recorded since the one-pass evaluation; absent on older revisions
    return {
        "code": label,
        "rows": metrics["n"],
        "wall_s": round(seconds, 2),
        "scoring_jobs": scoring.get("jobs"),
        "texts_scored": scoring.get("texts_scored"),
        "scoring_s": scoring.get("seconds"),
        "accuracy": metrics["accuracy"],
    }


def baseline_checkout(rev: str, parent: Path) -> Path:
    folder = parent / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), rev], cwd=common.REPO, check=True)
    return folder


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=common.REPO, capture_output=True, text=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-eval-code-") as tmp:
        baseline = baseline_checkout(args.baseline_rev, Path(tmp)) if args.baseline_rev else None
        try:
            for _ in range(args.repeats):
                if baseline is not None:
                    rows.append(time_evaluate(baseline, args.model_path, args.data, f"baseline {args.baseline_rev}"))
                rows.append(time_evaluate(common.REPO, args.model_path, args.data, f"this ({head.stdout.strip()})"))
        finally:
            if baseline is not None:
                subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=common.REPO, check=False)
    payload = {"model_path": args.model_path, "data": args.data, "baseline_rev": args.baseline_rev}
    path = common.write_result("evaluation", payload, rows, notes=NOTES)
    print(path.with_suffix(".md").read_text())


NOTES = [
    "wall_s: the whole `sentiment-ray evaluate` command in a fresh process (Ray start-up, model loads, every "
    "scoring job, the TF-IDF and zero-shot baselines, plots and report); scoring_jobs / texts_scored / scoring_s: "
    "its Ray Data scoring jobs, from metrics.json (absent before the one-pass evaluation)",
    "the baseline and this code run one after the other on the same machine, with the same model folder and data",
]


if __name__ == "__main__":
    main()
