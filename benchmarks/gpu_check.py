"""The GPU check: the CUDA paths of training and prediction at Qwen2.5-1.5B's real shape, on one GPU, without Ray.

    python -m benchmarks.gpu_check              # on a CUDA machine (scripts/gpu_check.sh sets it up offline)
    python -m benchmarks.gpu_check --rehearse   # the same steps on the CPU: the tiny model, 2 training steps each

Steps (benchmarks/gpu_check_steps.py), each under its own time limit, each recorded whatever the others did:
the bf16 matmul peak; training with LoRA and QLoRA × label scoring and classifier (20 steps each); the predictor
on 2,000 reviews at three token budgets against fp32; a QLoRA folder's load time; the merged export in plain
transformers. Writes gpu_check.json and gpu_check.md into $OUT (default results/bench/). The weights are random
(sentiment_ray/models/shapes.py): speed, memory and agreement mean something, accuracy does not.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from benchmarks import common
from benchmarks import gpu_check_steps as steps

TOTAL_S = 480
"""The whole check's budget: a step starts only while time is left, and its limit never runs past it."""
STEP_LIMIT_S = {"peak": 60, "train": 150, "predictor": 120, "qlora_load": 90, "export": 120}
"""The most one step of each kind may take (the first training step also builds the random 1.5B folder). Not yet
measured on a GPU: guesses that keep one stuck step from taking the others' time."""


NOT_ON_THE_BOX = ("ray", "snownlp", "dashscope", "python_calamine", "matplotlib", "tensorboard")
"""Packages the project installs that the GPU box lacks: none may be imported on the check's path."""


class StepTimeout(Exception):
    pass


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rehearse", action="store_true", help="CPU, tiny model, 2 steps: proves the path, not speed")
    parser.add_argument("--reviews", help="labelled reviews (text,label); default: the bundle's, else `offline`")
    parser.add_argument("--work-dir", default="runs/gpu-check", help="where the model folders and the export go")
    return parser.parse_args(argv)


def plan_of(args) -> dict:
    """What this run does: device, model, steps, data sizes and the reviews the predictor scores."""
    from sentiment_ray.data import load_splits

    rehearse = args.rehearse
    reviews = args.reviews or _bundled_reviews() or "offline"
    scored = 200 if rehearse else 2000
    # A file is split 80/10/10 whatever test_size says: its test rows, then its training rows, make up the count.
    splits = load_splits(reviews, seed=0, val_size=20, test_size=scored)
    texts = (splits.test["text"].tolist() + splits.train["text"].tolist())[:scored]
    return {
        "device": "cpu" if rehearse else "cuda",
        "model": "tiny" if rehearse else "random:qwen2.5-1.5b",
        "precision": "bf16",
        "steps": 2 if rehearse else 20,
        "train_rows": 64 if rehearse else 2048,
        "eval_rows": 20 if rehearse else 200,
        "max_length": 64 if rehearse else None,
        "reviews": reviews,
        "texts": texts,
    }


def _bundled_reviews() -> str | None:
    bundle = os.environ.get("SENTIMENT_RAY_GPU_BUNDLE")
    path = Path(bundle) / "reviews.csv" if bundle else None
    return str(path) if path and path.is_file() else None


def run_step(name: str, kind: str, fn, record: list[dict], deadline: float):
    """fn() under its kind's time limit and the check's deadline (time.monotonic(); SIGALRM: the Python between
    kernel launches is interrupted); its result, or None with the error recorded. A failed step never stops the
    others; a step with no time left is recorded as not run."""
    limit = min(STEP_LIMIT_S[kind], int(deadline - time.monotonic()))
    if limit < 1:
        record.append({"step": name, "ok": False, "seconds": 0.0, "error": f"not run: the {TOTAL_S} s budget is spent"})
        return None

    def expire(signum, frame):
        raise StepTimeout(f"{name}: over its {limit} s limit")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(limit)
    started = time.monotonic()
    try:
        result = fn()
        record.append({"step": name, "ok": True, "seconds": round(time.monotonic() - started, 1)})
        print(f"[gpu-check] {name}: ok in {time.monotonic() - started:.0f} s", flush=True)
        return result
    except Exception as err:  # recorded; the next step runs
        record.append({"step": name, "ok": False, "seconds": round(time.monotonic() - started, 1), "error": repr(err)})
        print(f"[gpu-check] {name}: FAILED ({err!r})", file=sys.stderr, flush=True)
        traceback.print_exc()
        return None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(args) -> dict:
    """Every step, and what each reached."""
    import torch

    record: list[dict] = []
    step = functools.partial(run_step, record=record, deadline=time.monotonic() + TOTAL_S)
    plan = plan_of(args)
    if plan["device"] == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: torch.cuda.is_available() is False; --rehearse runs the steps on the CPU")
    work = Path(args.work_dir)
    size = 8192 if plan["device"] == "cuda" else 1024
    plan["peak"] = step("bf16 matmul peak", "peak", lambda: _peak(size, plan["device"])) or float("nan")
    trained = {}
    for preset in ("lora", "qlora"):
        for strategy in ("label_scoring", "classifier"):
            train = lambda p=preset, s=strategy: steps.train(p, s, plan, work)  # noqa: E731
            trained[(preset, strategy)] = step(f"train {preset} {strategy}", "train", train)
    predicted = {}
    for strategy in ("label_scoring", "classifier"):
        if row := trained.get(("lora", strategy)):
            score = lambda r=row: steps.predictor(r["folder"], plan)  # noqa: E731
            predicted[strategy] = step(f"predictor {strategy}", "predictor", score)
    loaded = exported = None
    if qlora := trained.get(("qlora", "label_scoring")):
        loaded = step("qlora folder load", "qlora_load", lambda: steps.qlora_load(qlora["folder"], plan))
    if lora := trained.get(("lora", "label_scoring")):
        exported = step("export", "export", lambda: steps.export(lora["folder"], plan, work))
    return {
        "device": _device_name(plan["device"]),
        "rehearsal": args.rehearse,
        "model": plan["model"],
        "reviews": plan["reviews"],
        "peak_tflops_bf16": plan["peak"] / 1e12,
        "steps": record,
        "training": [r for r in trained.values() if r],
        "predictor": {s: rows for s, rows in predicted.items() if rows},
        "qlora_load": loaded,
        "export": exported,
        "failed_steps": sum(not r["ok"] for r in record),
        "imported_but_absent_on_the_box": sorted(m for m in NOT_ON_THE_BOX if m in sys.modules),
    }


def _peak(size: int, device: str) -> float:
    import torch

    return max(common.matmul_peak_flops(torch.bfloat16, device, size) for _ in range(3))


def _device_name(device: str) -> str:
    import torch

    from sentiment_ray.provenance import cpu_matmul_flags

    if device == "cuda":
        return torch.cuda.get_device_name(0)
    return f"CPU ({' '.join(cpu_matmul_flags()) or 'no matmul flags'})"


def main(argv: list[str] | None = None) -> int:
    from benchmarks.gpu_check_report import write_report

    args = parse_args(argv)
    if os.environ.get("OUT"):
        common.RESULTS_DIR = Path(os.environ["OUT"])
    result = run(args)
    files = write_report(result)
    print(f"[gpu-check] {result['failed_steps']} failed step(s); wrote {', '.join(str(f) for f in files)}")
    return 1 if result["failed_steps"] else 0


if __name__ == "__main__":
    sys.exit(main())
