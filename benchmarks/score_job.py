"""The `score` job against the in-process predictor on the same cores: steady state and start-up apart.

    python -m benchmarks.score_job [--model-path runs/tiny/model | --shape 1.5b-width] [--rows 20000,100000]
        [--num-actors 1] [--cpus-per-actor C] [--precision auto] [--name score_job]

In-process: `SentimentPredictor.predict_batch` over every row of the largest file, 512 rows per call (what the job
hands each actor call), torch's threads = this machine's cores. Job: `run_scoring` (what `sentiment-ray score` runs)
on a CSV of each --rows size, Ray already up, so each job's seconds hold its own start-up (actors, model load, Ray
Data planning) and its steady state. Steady reviews/s = (rows_b - rows_a) / (seconds_b - seconds_a) over the two
largest sizes; start-up = seconds_a - rows_a / steady. Rows cycle through the offline corpus (train + validation
+ test). Writes results/bench/<name>.{json,md}.
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
    parser.add_argument("--num-actors", type=int, default=1)
    parser.add_argument("--cpus-per-actor", type=float, help="default: ScoreOptions' default")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--name", default="score_job")
    return parser.parse_args(argv)


def corpus_texts(rows: int) -> list[str]:
    from sentiment_ray.data import load_splits

    splits = load_splits("offline", seed=42)
    texts = [*splits.train["text"], *splits.validation["text"], *splits.test["text"]]
    return [texts[i % len(texts)] for i in range(rows)]


def in_process_rate(folder: str, texts: list[str], precision: str) -> dict:
    from sentiment_ray.inference.predictor import SentimentPredictor

    predictor = SentimentPredictor.from_pretrained(folder, device="cpu", precision=precision)
    predictor.predict_batch(texts[:CALL_ROWS])  # warm-up: kernels, allocator
    started = time.perf_counter()
    for start in range(0, len(texts), CALL_ROWS):
        predictor.predict_batch(texts[start : start + CALL_ROWS])
    seconds = time.perf_counter() - started
    import torch

    return {
        "path": "in-process predict_batch",
        "rows": len(texts),
        "seconds": seconds,
        "reviews_per_s": len(texts) / seconds,
        "torch_threads": torch.get_num_threads(),
        "dtype": str(predictor.dtype),
    }


def job_run(folder: str, source: Path, rows: int, args, workdir: Path) -> dict:
    from sentiment_ray.inference.batch import ScoreOptions, run_scoring

    options = {"cpus_per_actor": args.cpus_per_actor} if args.cpus_per_actor else {}
    opts = ScoreOptions(
        model_path=folder,
        inputs=[str(source)],
        output=str(workdir / f"scored-{rows}"),
        num_actors=args.num_actors,
        device="cpu",
        precision=args.precision,
        overwrite=True,
        **options,
    )
    started = time.perf_counter()
    summary = run_scoring(opts)
    seconds = time.perf_counter() - started
    path = f"score job, {opts.num_actors} actor(s) x {opts.cpus_per_actor:g} CPU"
    return {"path": path, "rows": summary["rows_written"], "seconds": seconds, "reviews_per_s": rows / seconds}


def steady_state(jobs: list[dict]) -> dict:
    a, b = sorted(jobs, key=lambda r: r["rows"])[-2:]
    steady = (b["rows"] - a["rows"]) / (b["seconds"] - a["seconds"])
    return {"steady_reviews_per_s": steady, "startup_s": a["seconds"] - a["rows"] / steady}


def main(argv: list[str] | None = None) -> None:
    from sentiment_ray.config import PromptConfig
    from sentiment_ray.models.folder import save_zero_shot_folder
    from sentiment_ray.runtime import init_ray

    args = parse_args(argv)
    sizes = sorted(int(n) for n in args.rows.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-score-job-") as tmp:
        workdir = Path(tmp)
        folder = args.model_path or str(
            save_zero_shot_folder(common.shape_base_folder(args.shape), workdir / "zero-shot", PromptConfig())
        )
        texts = corpus_texts(sizes[-1])
        rows = [in_process_rate(folder, texts, args.precision)]
        init_ray()
        import ray.data

        ray.data.DataContext.get_current().enable_progress_bars = False
        for size in sizes:
            source = workdir / f"reviews-{size}.csv"
            pd.DataFrame({"id": range(1, size + 1), "text": texts[:size]}).to_csv(source, index=False)
            rows.append(job_run(folder, source, size, args, workdir))
    steady = steady_state(rows[1:]) if len(sizes) > 1 else {}
    ratio = steady.get("steady_reviews_per_s", rows[-1]["reviews_per_s"]) / rows[0]["reviews_per_s"]
    payload = {
        "model": args.model_path or f"zero-shot over random-init {args.shape}",
        "cores": os.cpu_count(),
        **steady,
        "steady_job_over_in_process": ratio,
        "target": ">= 0.85 (issue N)",
    }
    path = common.write_result(args.name, payload, rows, notes=NOTES)
    print(path.with_suffix(".md").read_text())


NOTES = [
    "random-init or tiny-model numbers: throughput of this shape on this machine, not Qwen2.5-1.5B's",
    "job seconds: run_scoring alone (Ray was started before); each size is its own job, so each pays start-up",
]


if __name__ == "__main__":
    main()
