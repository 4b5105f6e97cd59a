"""Real-shape smoke: the Qwen2.5-1.5B presets at their real 28-layer architecture, random weights, through the CLI.

    python -m benchmarks.real_shape                      # `make smoke-real-shape`: the whole matrix, on CPU
    python -m benchmarks.real_shape --device cuda --workers 1   # with Ray on a GPU machine (docs/gpu.md)

For each preset (LoRA, QLoRA) x strategy x worker count it runs
`sentiment-ray train --config jobs/configs/qwen2.5-1.5b-<preset>.yaml --config <overlay> --strategy S --num-workers W`
(overlay: jobs/configs/cpu-real-shape.yaml; gpu-real-shape.yaml with --device cuda). On the folder of each preset
x strategy's first worker count (1 by default) it then runs `predict`, `score` on --rows rows (bf16 and fp32),
`evaluate` on --rows rows (robustness and baselines included) and `serve` (start, one request, Ctrl-C), and times
the predictor's load and reviews/s in process. Each 2-worker run is trained again from its first checkpoint
(`--resume PATH`: adapters, optimizer and scheduler state mid-run). Per preset it runs a 2-trial x 2-step `tune`.
A failing step fails the smoke (exit 1) after the others ran. Writes results/bench/<name>.{json,md}. Random
weights: speeds, memory and sizes are real, accuracies are not.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from benchmarks import common
from benchmarks import real_shape_steps as steps
from benchmarks.common import PRESETS

OVERLAYS = {"cpu": "jobs/configs/cpu-real-shape.yaml", "cuda": "jobs/configs/gpu-real-shape.yaml"}
SHAPE = "random:qwen2.5-1.5b"
STEP_TIMEOUT_S = 3600.0  # one command; a hung step fails the smoke instead of holding it forever


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=SHAPE, help="base model (tests run the harness on `tiny`)")
    parser.add_argument("--presets", default="lora,qlora")
    parser.add_argument("--strategies", default="label_scoring,classifier")
    parser.add_argument("--workers", default="1,2", help="Ray Train worker counts to train with")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--rows", type=int, default=100, help="rows for score, evaluate and the in-process predictor")
    parser.add_argument("--precisions", default="bf16,fp32", help="of score and the in-process predictor")
    parser.add_argument("--cases", help="PRESET:STRATEGY:WORKERS,... instead of every preset x strategy x workers")
    parser.add_argument("--no-tune", action="store_true")
    parser.add_argument("--tune-trials", type=int, default=2, help="trials of the sweep step (2 steps each)")
    parser.add_argument("--resume", action="store_true", help="keep the cases results/bench/<name>.json recorded")
    parser.add_argument("--work-dir", default="runs/real-shape", help="run folders (replaced unless --resume)")
    parser.add_argument("--name", default="real_shape", help="results/bench/<name>.{json,md}")
    parser.add_argument("--port", type=int, default=8791)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(args.work_dir)
    table = recorded_rows(args) if args.resume else []
    if not table:
        shutil.rmtree(work, ignore_errors=True)
        table = [build_base(args.model)]
    work.mkdir(parents=True, exist_ok=True)
    overlay = Path(OVERLAYS[args.device])
    rows_file, texts = review_file(work, args.rows)
    done = {(r.get("preset"), r.get("strategy"), r.get("workers"), r["step"]) for r in table}
    consumed = set()  # (preset, strategy) whose first planned folder runs the consumers
    for preset, strategy, workers in planned_cases(args):
        consumers = (preset, strategy) not in consumed
        consumed.add((preset, strategy))
        if (preset, strategy, workers, "train") not in done:
            table += run_case(args, (preset, strategy, workers), consumers, overlay, rows_file, texts)
            record(args, overlay, table)  # after every case: an interrupted smoke keeps what it measured
    for preset in dict.fromkeys(case[0] for case in planned_cases(args)):
        if not args.no_tune and (preset, None, None, "tune") not in done:
            tuned = steps.tune(
                Path(PRESETS[preset]), overlay, args.model, work / f"{preset}-tune", args.tune_trials, STEP_TIMEOUT_S
            )
            table.append({"preset": preset, **tuned})
            record(args, overlay, table)
    path = record(args, overlay, table, finished=True)
    failed = [r for r in table if not r["ok"]]
    print(f"{len(table) - len(failed)}/{len(table)} steps passed; {path}")
    for r in failed:
        print(f"FAILED {r['step']} ({r.get('preset')}, {r.get('strategy')}, {r.get('workers')} workers):\n{r['error']}")
    return 1 if failed else 0


def planned_cases(args) -> list[tuple[str, str, int]]:
    if args.cases:
        return [(p, s, int(w)) for p, s, w in (case.split(":") for case in _csv(args.cases))]
    return [(p, s, int(w)) for p in _csv(args.presets) for s in _csv(args.strategies) for w in _csv(args.workers)]


def recorded_rows(args) -> list[dict]:
    """The rows of an earlier run of the same smoke (same model, device and rows), else none."""
    import json

    path = common.RESULTS_DIR / f"{args.name}.json"
    if not path.is_file():
        return []
    earlier = json.loads(path.read_text())
    same = (earlier.get("model"), earlier.get("device"), earlier.get("consumer_rows"))
    return earlier["rows"] if same == (args.model, args.device, args.rows) else []


def record(args, overlay: Path, table: list[dict], finished: bool = False) -> Path:
    payload = {
        "model": args.model,
        "device": args.device,
        "overlay": str(overlay),
        "consumer_rows": args.rows,
        **sizes(table),
        "failed_steps": sum(not r["ok"] for r in table),
        "finished": finished,
    }
    return common.write_result(args.name, payload, [_short(r) for r in table], notes=NOTES)


NOTES = [
    "random weights: the published Qwen2.5-1.5B architecture (28 layers, 1.54 B parameters) initialised at random; "
    "speeds, memory and sizes are real, every accuracy is meaningless",
    "seconds_per_step: median optimizer step after the first (forward, backward, all-reduce, update), without "
    "evaluation and checkpointing; peak RSS from getrusage in each process at the end of training",
    "reviews_per_s_job: the Ray Data job's rows / its own seconds (model load included); reviews_per_s_command: the "
    "whole command (Ray start-up included); predictor rows: in process, after the load and a warm-up batch",
]


def run_case(args, planned: tuple, consumers: bool, overlay: Path, rows_file: Path, texts) -> list[dict]:
    """Train one folder (`planned`: preset, strategy, workers); a multi-worker folder is trained again from its first
    checkpoint; with `consumers`, every consumer of the folder runs on it."""
    preset, strategy, workers = planned
    out = Path(args.work_dir) / f"{preset}-{strategy}-{workers}w"
    shutil.rmtree(out, ignore_errors=True)  # a resumed smoke trains an unfinished case again from scratch
    tag = {"preset": preset, "strategy": strategy, "workers": workers}
    case = [strategy, workers, args.model]
    trained = {**tag, **steps.train(Path(PRESETS[preset]), overlay, case, out, args.device)}
    if not trained["ok"]:
        return [trained]
    results = [trained]
    if workers != 1:  # DDP over adapters, restarted from a mid-run checkpoint
        results.append(steps.resume(Path(PRESETS[preset]), overlay, case, out, args.device, STEP_TIMEOUT_S))
    if not consumers:
        return [{**tag, **r} for r in results]
    folder, device = out / "model", args.device
    results.append(steps.predict(folder, device, STEP_TIMEOUT_S))
    for precision in _csv(args.precisions):
        results.append(steps.score(folder, rows_file, out / f"scored-{precision}", device, precision, STEP_TIMEOUT_S))
        measure = lambda p=precision: steps.predictor_speed(folder, texts, device, p)  # noqa: E731
        results.append(_guarded(measure, f"predictor {precision}"))
    results.append(steps.evaluate(folder, out / "eval", args.rows, device, STEP_TIMEOUT_S))
    results.append(steps.serve(folder, args.port, device, STEP_TIMEOUT_S))
    return [{**tag, **r} for r in results]


def build_base(model: str) -> dict:
    """Build the random-weight base once, before any worker needs it (they then only read the cached folder)."""
    import time

    from sentiment_ray.models.loading import resolve_base

    started = time.monotonic()
    folder = Path(resolve_base(model))
    return {
        "step": "build base",
        "ok": True,
        "seconds": round(time.monotonic() - started, 1),
        "base_weights_mb": round((folder / "model.safetensors").stat().st_size / 2**20, 1),
    }


def review_file(work: Path, rows: int) -> tuple[Path, list[str]]:
    """`rows` reviews of the offline corpus's test split as a CSV (the score input) and as a list."""
    from sentiment_ray.data.corpus import load_offline_splits

    test = load_offline_splits(seed=0, val_size=rows, test_size=rows)[0]["test"]
    path = work / "reviews.csv"
    test[["text"]].to_csv(path, index=False)
    return path, test["text"].tolist()


def sizes(table: list[dict]) -> dict:
    """The base's bf16 and fp32 weight sizes against the adapter folders trained here (MB)."""
    base = next(r for r in table if r["step"] == "build base")["base_weights_mb"]
    folders = [r["model_folder_mb"] for r in table if r["step"] == "train" and r.get("model_folder_mb")]
    return {"base_weights_bf16_mb": base, "base_weights_fp32_mb": round(2 * base, 1), "model_folders_mb": folders}


def _guarded(fn, step: str) -> dict:
    try:
        return fn()
    except Exception as err:  # one failing measurement must not hide the rest of the smoke
        return {"step": step, "ok": False, "error": f"{type(err).__name__}: {err}"}


def _short(result: dict) -> dict:
    """A table row: the error cut to its last 300 characters (the JSON keeps the rows whole)."""
    short = dict(result)
    if "error" in short:
        short["error"] = short["error"][-300:]
    return short


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


if __name__ == "__main__":
    sys.exit(main())
