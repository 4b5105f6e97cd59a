"""The `score` job against the in-process predictor on the same cores: steady state and start-up apart.

    python -m benchmarks.score_job [--model-path runs/tiny/model | --shape 1.5b-width] [--rows 20000,100000]
        [--layouts auto,1x1,1x2,2x1] [--command] [--precision auto] [--name score_job]

In-process: `SentimentPredictor.predict_batch` over every row of the largest file, 512 rows per call (what the job
hands each actor call), torch's threads = this machine's cores; and once more with 1 thread over the smallest file
(how well one process uses a second core). Job: `run_scoring` (what `sentiment-ray score` runs) for each layout
`<actors>x<cpus per actor>` (an actor's torch threads = its CPUs) on a CSV of each --rows size, Ray already up, so
each job's seconds hold its own start-up (actors, model load, Ray Data planning) and its steady state. Steady
reviews/s = (rows_b - rows_a) / (seconds_b - seconds_a) over the two largest sizes; start-up = seconds_a - rows_a /
steady. Layout `auto` leaves the layout to the job (`sentiment_ray/inference/layout.py`). With --command, the whole
default `sentiment-ray score` command also runs on each file as a user runs it: a new process, its own embedded
Ray, no flags beyond the files (its seconds hold Python start-up, Ray start-up and the checks of every input).
Rows cycle through the offline corpus (train + validation + test). Writes results/bench/<name>.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks import common

CALL_ROWS = 512  # ScoreOptions.batch_size: rows per actor call


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", help="a model folder (default: a zero-shot folder over --shape)")
    parser.add_argument("--shape", default="tiny", choices=common.SHAPES)
    parser.add_argument("--rows", default="20000,100000", help="file sizes; the two largest give the steady rate")
    parser.add_argument(
        "--layouts", default="auto,1x1,1x2,2x1", help="job layouts, <num actors>x<cpus per actor> or auto (sized)"
    )
    parser.add_argument("--command", action="store_true", help="also time the whole default CLI command per file")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--name", default="score_job")
    return parser.parse_args(argv)


def corpus_texts(rows: int) -> list[str]:
    from sentiment_ray.data import load_splits

    splits = load_splits("offline", seed=42)
    texts = [*splits.train["text"], *splits.validation["text"], *splits.test["text"]]
    return [texts[i % len(texts)] for i in range(rows)]


def in_process_rate(folder: str, texts: list[str], precision: str, threads: int) -> dict:
    import torch

    from sentiment_ray.inference.predictor import SentimentPredictor

    torch.set_num_threads(threads)
    predictor = SentimentPredictor.from_pretrained(folder, device="cpu", precision=precision)
    predictor.predict_batch(texts[:CALL_ROWS])  # warm-up: kernels, allocator
    started = time.perf_counter()
    for start in range(0, len(texts), CALL_ROWS):
        predictor.predict_batch(texts[start : start + CALL_ROWS])
    seconds = time.perf_counter() - started
    return {
        "path": "in-process predict_batch",
        "rows": len(texts),
        "seconds": seconds,
        "reviews_per_s": len(texts) / seconds,
        "torch_threads": torch.get_num_threads(),
        "dtype": str(predictor.dtype),
    }


def job_run(folder: str, source: Path, rows: int, layout: tuple[int, float] | None, args, workdir: Path) -> dict:
    from sentiment_ray.inference.batch import ScoreOptions, run_scoring

    opts = ScoreOptions(
        model_path=folder,
        inputs=[str(source)],
        output=str(workdir / f"scored-{rows}"),
        num_actors=layout[0] if layout else None,
        cpus_per_actor=layout[1] if layout else None,
        device="cpu",
        precision=args.precision,
        overwrite=True,
    )
    started = time.perf_counter()
    summary = run_scoring(opts)
    seconds = time.perf_counter() - started
    return {
        "path": f"score job, {summary['actors']}",
        "layout": f"{layout[0]}x{layout[1]:g}" if layout else "auto",
        "rows": summary["rows_written"],
        "seconds": seconds,
        "reviews_per_s": rows / seconds,
    }


def command_run(folder: str, source: Path, rows: int, workdir: Path) -> dict:
    """The whole default `sentiment-ray score` command in a new process, timed from outside."""
    import json
    import subprocess
    import sys

    output = workdir / f"command-{rows}"
    argv = [sys.executable, "-m", "sentiment_ray.cli", "score", "--model-path", folder, "--input", str(source)]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # its own embedded Ray, as a user's
    started = time.perf_counter()
    done = subprocess.run([*argv, "--output", str(output), "--json"], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"sentiment-ray score failed: {done.stderr[-2000:]}")
    summary = json.loads(done.stdout)
    return {
        "path": f"sentiment-ray score (whole command), {summary['actors']}",
        "layout": "command",
        "rows": summary["rows_written"],
        "seconds": seconds,
        "reviews_per_s": rows / seconds,
        "phases_s": {k: round(v, 2) for k, v in summary["phases_s"].items()},
    }


def steady_state(jobs: list[dict]) -> dict:
    a, b = sorted(jobs, key=lambda r: r["rows"])[-2:]
    steady = (b["rows"] - a["rows"]) / (b["seconds"] - a["seconds"])
    return {"steady_reviews_per_s": steady, "startup_s": a["seconds"] - a["rows"] / steady}


def parse_layouts(text: str) -> list[tuple[int, float] | None]:
    """`auto,2x1` → [None, (2, 1.0)]: None leaves the layout to the job."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    return [None if item == "auto" else (int(item.split("x")[0]), float(item.split("x")[1])) for item in items]


def layout_summaries(jobs: list[dict], in_process: float) -> list[dict]:
    """Per layout: steady reviews/s (slope over the two largest files), start-up, and the ratio to in-process."""
    summaries = []
    for layout in dict.fromkeys(j["layout"] for j in jobs):
        runs = [j for j in jobs if j["layout"] == layout]
        steady = steady_state(runs) if len(runs) > 1 else {"steady_reviews_per_s": runs[-1]["reviews_per_s"]}
        ratio = steady["steady_reviews_per_s"] / in_process
        whole = runs[-1]["reviews_per_s"] / in_process  # the largest file, start-up included
        summaries.append(
            {"layout": layout, **steady, "steady_over_in_process": ratio, "largest_file_over_in_process": whole}
        )
    return summaries


def measure(args, sizes: list[int], workdir: Path) -> list[dict]:
    from sentiment_ray.config import PromptConfig
    from sentiment_ray.models.folder import save_zero_shot_folder
    from sentiment_ray.runtime import init_ray

    folder = args.model_path or str(
        save_zero_shot_folder(common.shape_base_folder(args.shape), workdir / "zero-shot", PromptConfig())
    )
    texts = corpus_texts(sizes[-1])
    rows = [in_process_rate(folder, texts, args.precision, os.cpu_count() or 1)]
    rows.append(in_process_rate(folder, texts[: sizes[0]], args.precision, 1))
    sources = {size: workdir / f"reviews-{size}.csv" for size in sizes}
    for size, source in sources.items():
        pd.DataFrame({"id": range(1, size + 1), "text": texts[:size]}).to_csv(source, index=False)
    if args.command:  # before this process starts a Ray of its own: each command starts and stops one
        rows += [command_run(folder, source, size, workdir) for size, source in sources.items()]
    init_ray()
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False
    for size, source in sources.items():
        rows += [job_run(folder, source, size, layout, args, workdir) for layout in parse_layouts(args.layouts)]
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sizes = sorted(int(n) for n in args.rows.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-score-job-") as tmp:
        rows = measure(args, sizes, Path(tmp))
    in_process = rows[0]["reviews_per_s"]
    summaries = layout_summaries(rows[2:], in_process)
    payload = {
        "model": args.model_path or f"zero-shot over random-init {args.shape}",
        "cores": os.cpu_count(),
        "in_process_reviews_per_s": in_process,
        "best_layout": max(summaries, key=lambda s: s["steady_over_in_process"]),
        "target": "the default command: >= 0.80 of in-process on the largest file, start-up included; >= 0.95 steady",
    }
    common.write_result(args.name, payload, rows, notes=NOTES)
    common.append_table(args.name, "layouts", "Steady state per layout", summaries)
    print((common.RESULTS_DIR / f"{args.name}.md").read_text())


NOTES = [
    "random-init or tiny-model numbers: throughput of this shape on this machine, not Qwen2.5-1.5B's",
    "job seconds: run_scoring alone (Ray was started before); each size is its own job, so each pays start-up",
]


if __name__ == "__main__":
    main()
