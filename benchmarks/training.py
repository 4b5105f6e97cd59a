"""Training throughput through the real Ray Train job, and one step's peak memory per strategy.

    python -m benchmarks.training [--shapes tiny,1.5b-width] [--strategies label_scoring,classifier]
        [--finetune full,lora,qlora] [--workers 1,2] [--steps N] [--batch-size B] [--max-length L]
        [--device cpu|cuda] [--warmup-steps W] [--parts throughput,memory] [--embedding-sync rows,dense] [--quick]

Throughput: `sentiment_ray.training.driver.run_training` per (shape, strategy, finetune, workers); the steady rate
over steps W+1..N from rank 0's per-step TensorBoard wall times, beside HF's train_samples_per_second
(which also counts the first steps and the final evaluation + checkpoint). Memory: `training_memory`.
Without --finetune / --workers each shape runs DEFAULT_MATRIX, with them every combination.
Writes results/bench/training.json and .md. Random-init models: not Qwen2.5-1.5B's numbers.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

# one step's memory: training_memory; steady rates, token accounting, ratios, notes, the report: training_report
from benchmarks.training_memory import memory_table
from benchmarks.training_report import steady_rate, step_wall_times, token_accounting, write_report
from sentiment_ray.config.schema import TrainConfig

DEFAULT_SYNC = TrainConfig.embedding_sync  # the library's default, defined there once

STRATEGY_NAMES = ("label_scoring", "classifier")
# (finetune modes, worker counts) runs per shape; on CPU the 1.5B-width full matrix would take hours, so it
# runs lora and full at 1 worker, plus the 1-against-2-worker comparison for lora.
DEFAULT_MATRIX = {
    "tiny": [(("full", "lora", "qlora"), (1, 2))],
    "1.5b-width": [(("lora", "full"), (1,)), (("lora",), (2,))],
}
# Enough steps for a steady window of several seconds on CPU (a tiny step takes tens of ms, a 1.5B-width one seconds).
DEFAULT_STEPS = {"tiny": 100, "1.5b-width": 20}


@dataclass(frozen=True)
class Settings:
    steps: int | None = None  # per job; None: DEFAULT_STEPS of the shape
    warmup_steps: int = 2  # steps left out of the steady rate (kernels, allocator, longest batch first)
    batch_size: int = 8  # per worker
    max_length: int = 128
    eval_rows: int = 32  # validation and test rows: the job evaluates both at the end
    device: str = "cpu"
    seed: int = 42
    quick: bool = False

    def steps_for(self, shape: str) -> int:
        return self.steps or DEFAULT_STEPS[shape]

    @property
    def steps_per_job(self) -> int | dict[str, int]:
        """--steps, or the default steps of every shape (as the report's notes state them)."""
        return self.steps or DEFAULT_STEPS


QUICK = Settings(steps=8, warmup_steps=2, batch_size=8, max_length=64, eval_rows=16, quick=True)


@dataclass(frozen=True)
class RunSpec:
    shape: str
    strategy: str
    finetune: str
    workers: int
    embedding_sync: str = DEFAULT_SYNC  # it matters only for full finetuning (a trainable embedding)


def build_matrix(shapes, strategies, finetunes=None, workers=None, syncs=(DEFAULT_SYNC,)) -> list[RunSpec]:
    """Every run of the matrix; a full finetune runs once per embedding sync in `syncs` (with one worker, too:
    `rows` looks tokens up sparsely there as well)."""
    runs = []
    for shape in shapes:
        blocks = DEFAULT_MATRIX[shape] if finetunes is None and workers is None else [(finetunes, workers)]
        for modes, counts in blocks:
            modes = modes or ("full", "lora", "qlora")
            counts = counts or (1, 2)
            for f, w, s in itertools.product(modes, counts, strategies):
                runs += [RunSpec(shape, s, f, w, sync) for sync in (syncs if f == "full" else (DEFAULT_SYNC,))]
    return runs


def job_config(run: RunSpec, s: Settings, train_rows: int, output_dir: Path):
    from benchmarks.common import shape_base_folder
    from sentiment_ray.config import load_config

    updates = {
        "model.name": shape_base_folder(run.shape),
        "model.strategy": run.strategy,
        "model.finetune": run.finetune,
        "data.source": "offline",
        "data.max_train_samples": train_rows,
        "data.val_size": s.eval_rows,
        "data.test_size": s.eval_rows,
        "data.max_length": s.max_length,
        "train.max_steps": s.steps_for(run.shape),
        "train.save_steps": s.steps_for(run.shape),  # the one evaluation + checkpoint comes after the last timed step
        "train.logging_steps": 1,  # one TensorBoard scalar, with its wall time, per step
        "train.batch_size": s.batch_size,
        "train.seed": s.seed,
        "train.resume": "none",
        "scaling.num_workers": run.workers,
        "train.embedding_sync": run.embedding_sync,
        "scaling.use_gpu": s.device == "cuda",
        "scaling.cpus_per_worker": 1,
        "output_dir": str(output_dir),
    }
    return load_config(None, updates=updates)


def run_tokens(cfg, output_dir: Path) -> dict:
    """Token accounting of the job's own training rows (read by the driver's own `load_run_splits`)."""
    from sentiment_ray.models.loading import load_tokenizer, resolve_base
    from sentiment_ray.models.strategies import make_strategy
    from sentiment_ray.training.driver import load_run_splits

    output_dir.mkdir(parents=True, exist_ok=True)  # it writes data_report.json there
    texts, labels = load_run_splits(cfg, output_dir)[0]["train"]
    tokenizer = load_tokenizer(resolve_base(cfg.model.name, cfg.model.tiny_seed))
    strategy = make_strategy(cfg.model.strategy, tokenizer, cfg.prompt, cfg.data.max_length)
    return token_accounting(strategy, texts, labels, cfg.train.batch_size, cfg.train.seed)


def throughput_row(run: RunSpec, s: Settings, train_rows: int) -> dict:
    """One real Ray Train job; its steady and HF-reported rates, in samples and tokens, total and per worker."""
    from sentiment_ray.training.driver import run_training

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        cfg = job_config(run, s, train_rows, Path(tmp) / "run")
        outcome = run_training(cfg)
        times = step_wall_times(outcome.output_dir / "tensorboard")
        tokens = run_tokens(cfg, Path(tmp) / "tokens")
    train = outcome.train_results
    steady = steady_rate(times, s.warmup_steps, s.batch_size * run.workers)
    rate = steady["samples_per_s"]
    return {
        **asdict(run),
        "steps": train["global_step"],
        "samples_per_s": rate,
        "samples_per_s_per_worker": rate / run.workers,
        "tokens_per_s": rate * tokens["mean_real_tokens"],
        "tokens_per_s_per_worker": rate * tokens["mean_real_tokens"] / run.workers,
        "padded_tokens_per_s": rate * tokens["mean_padded_tokens"],
        "padding_share": tokens["padding_share"],
        "mean_real_tokens": tokens["mean_real_tokens"],
        "hf_samples_per_s": train["train_samples_per_second"],  # global: steps × batch × workers / train_runtime
        "steady_window_s": steady["window_s"],
        "outside_window_s": train["train_runtime"] - steady["window_s"],  # warm-up steps + final eval + save
        "job_wall_s": train["wall_time_s"],
        "trainable_params": train["parameters"]["trainable"],
    }


def worker_threads(s: Settings) -> dict:
    """What torch gets in a Ray actor holding a Train worker's resources (1 CPU; Ray sets OMP_NUM_THREADS)."""
    import ray

    @ray.remote
    class Probe:
        def read(self) -> dict:
            import os

            import torch

            return {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"), "torch_threads": torch.get_num_threads()}

    probe = Probe.options(num_cpus=1, num_gpus=1 if s.device == "cuda" else 0).remote()
    return ray.get(probe.read.remote())  # the actor ends with the Ray session (shut down right after)


def run_throughput(runs: list[RunSpec], s: Settings) -> tuple[list[dict], dict]:
    """Every run in one embedded Ray session (or RAY_ADDRESS's cluster); Ray is shut down afterwards."""
    import ray

    most = {shape: max(r.workers for r in runs if r.shape == shape) for shape in {r.shape for r in runs}}
    rows = []
    try:
        for run in runs:
            print(f"[bench] throughput {run}", flush=True)
            # The same training rows for 1 and 2 workers: enough for `steps` at the shape's most workers.
            rows.append(throughput_row(run, s, s.steps_for(run.shape) * s.batch_size * most[run.shape]))
        threads = worker_threads(s) if runs else {}
    finally:
        if ray.is_initialized():
            ray.shutdown()
    return rows, threads


def _csv(text: str | None, cast=str) -> tuple | None:
    return None if text is None else tuple(cast(x.strip()) for x in text.split(",") if x.strip())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", help="tiny,1.5b-width (quick: tiny)")
    parser.add_argument("--strategies", default=",".join(STRATEGY_NAMES))
    parser.add_argument("--finetune", help="full,lora,qlora (default: each shape's DEFAULT_MATRIX; quick: full)")
    parser.add_argument("--workers", help="1,2 (default: each shape's DEFAULT_MATRIX; quick: 1,2)")
    for flag in ("steps", "warmup-steps", "batch-size", "max-length", "eval-rows"):
        parser.add_argument(f"--{flag}", type=int)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--embedding-sync", default=DEFAULT_SYNC, help="dense,rows: each for full finetuning")
    parser.add_argument("--parts", default="throughput,memory", help="throughput,memory")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny shape, full finetuning, 8 steps")
    return parser.parse_args(argv)


def plan(args: argparse.Namespace) -> tuple[Settings, list[RunSpec]]:
    from benchmarks.common import SHAPES
    from sentiment_ray.config import FINETUNE_MODES

    base = QUICK if args.quick else Settings()
    given = {k: getattr(args, k) for k in ("steps", "warmup_steps", "batch_size", "max_length", "eval_rows")}
    s = replace(base, device=args.device, **{k: v for k, v in given.items() if v is not None})
    if min(s.steps_for(shape) for shape in SHAPES) < s.warmup_steps + 2:
        raise SystemExit(f"--steps {s.steps}: need at least --warmup-steps + 2 = {s.warmup_steps + 2}")
    shapes = _csv(args.shapes) or (("tiny",) if args.quick else SHAPES)
    finetunes = _csv(args.finetune) or (("full",) if args.quick else None)
    workers = _csv(args.workers, int) or ((1, 2) if args.quick else None)
    strategies = _csv(args.strategies)
    for name, values, allowed in (
        ("shapes", shapes, SHAPES),
        ("strategies", strategies, STRATEGY_NAMES),
        ("finetune", finetunes or (), FINETUNE_MODES),
    ):
        if unknown := set(values) - set(allowed):
            raise SystemExit(f"--{name}: unknown {sorted(unknown)}; choose from {', '.join(allowed)}")
    syncs = _csv(args.embedding_sync)
    if unknown := set(syncs) - {"rows", "dense"}:
        raise SystemExit(f"--embedding-sync: unknown {sorted(unknown)}; choose from rows, dense")
    runs = build_matrix(shapes, strategies, finetunes, workers, syncs)
    if s.device == "cuda":  # one GPU per worker: leave out what this machine cannot run
        import torch

        runs = [r for r in runs if r.workers <= torch.cuda.device_count()]
    return s, runs


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    load = os.getloadavg()[0]
    s, runs = plan(args)
    parts = set(_csv(args.parts))
    rows, threads = run_throughput(runs, s) if "throughput" in parts else ([], {})
    memory = memory_table([(r.shape, r.finetune) for r in runs], STRATEGY_NAMES, s) if "memory" in parts else []
    path = write_report(s, runs, rows, memory, threads, load)
    print(path.with_suffix(".md").read_text(), flush=True)


if __name__ == "__main__":
    main()
