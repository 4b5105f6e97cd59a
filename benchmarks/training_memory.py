"""Peak memory and time of ONE training step, label scoring against the classifier head, without Ray.

    python -m benchmarks.training_memory --child '{"shape": "tiny", "strategy": "classifier", ...}'

(`benchmarks.training` starts one such child per configuration; `measure_step` runs in-process.)

Everything comes from the library, built as `training.worker.train_loop` builds it: the strategy
(`strategies.make_strategy`), the model (`modeling.load_base_model` + `prepare_for_training`), the batch
(`EncodedReviews` + `LeftPadCollator`), and the optimizer HF Trainer makes from the loop's optimizer
settings. The step is the loop's: cross-entropy of `strategy.scores`, backward, gradient
clipping (HF's max_grad_norm), optimizer step, `zero_grad(set_to_none=True)`. So whatever the strategy
does when this runs (e.g. projecting only the label rows of lm_head) is what gets measured.

The method, as the benchmark report states it, is MEMORY_NOTE below.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

MARKER = "STEP_MEMORY_RESULT "
POOL_ROWS = 256  # the measured batch is the longest `batch_size` reviews among this many training rows
MEMORY_NOTE = (
    "Step memory: the step after a warm-up step (AdamW state exists; gradients are freed between steps as HF does), "
    f"on the longest batch of {POOL_ROWS} training rows; a fresh process per row, no Ray. CPU: growth = peak RSS "
    "(VmHWM, reset through /proc/self/clear_refs) minus RSS just before the step (after malloc_trim), peak = that "
    "VmHWM, 1 torch thread; every weight is read once before, so the lazily mapped safetensors pages are resident "
    "for both strategies. CUDA: torch.cuda.max_memory_allocated (tensors; not the caching allocator's reserve). "
    "Both strategies run the library's own `strategy.scores`, so changes to label scoring show up here."
)


@dataclass(frozen=True)
class StepSpec:
    shape: str
    strategy: str
    finetune: str
    batch_size: int = 8
    max_length: int = 128
    device: str = "cpu"
    seed: int = 42
    threads: int | None = 1
    """torch threads on CPU (1 = what a Ray Train worker with 1 CPU gets); None leaves torch's default."""
    timed_steps: int = 3
    """Further steps timed after the measured one (the measured step pays fresh page faults after malloc_trim)."""


def run_config(spec: StepSpec):
    from benchmarks.common import shape_base_folder
    from sentiment_ray.config import load_config

    updates = {
        "model.name": shape_base_folder(spec.shape),
        "model.strategy": spec.strategy,
        "model.finetune": spec.finetune,
        "data.max_length": spec.max_length,
        "train.batch_size": spec.batch_size,
        "train.seed": spec.seed,
        "scaling.use_gpu": spec.device == "cuda",
    }
    return load_config(None, updates=updates)


def build_step(spec: StepSpec, checkpoint_dir: str) -> dict:
    """Model, strategy, optimizer, batch and training arguments, made the way `train_loop` makes them."""
    import torch
    from transformers import Trainer

    from sentiment_ray.training.model import build_training_model

    cfg = run_config(spec)
    model, tokenizer, strategy, device, dtype = build_training_model(cfg)  # exactly as train_loop builds it
    model.train()
    if device.type == "cpu":
        _page_in(model)
    args = optimizer_arguments(cfg, checkpoint_dir)
    optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    params = [p for p in model.parameters() if p.requires_grad]
    return {
        "model": model,
        "strategy": strategy,
        "params": params,
        "optimizer": optimizer_cls(params, **optimizer_kwargs),
        "batch": longest_batch(cfg, strategy, tokenizer, device),
        "max_grad_norm": args.max_grad_norm,
        "autocast": dtype == torch.bfloat16,
        "device": device,
    }


def _page_in(model) -> None:
    """Read every weight once, so the whole model is resident before anything is measured.

    transformers maps safetensors files lazily: frozen weights stay file pages until first read. A classifier
    reads only the embedding rows of its batch, label scoring reads the whole tied embedding as lm_head, so
    without this the two baselines would differ by most of the embedding matrix (890 MiB at 1.5B width).
    """
    import torch

    with torch.no_grad():
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            tensor.sum()


def optimizer_arguments(cfg, checkpoint_dir: str):
    """TrainingArguments carrying the loop's optimizer settings, usable outside a process group.

    `training.trainer.training_arguments` asks for the gloo backend on CPU, which needs Ray Train's process
    group; the loop sets only lr and weight decay of the optimizer and leaves optim, betas, eps and
    max_grad_norm at HF's defaults, so these arguments give HF Trainer's very optimizer and clipping.
    """
    from transformers import TrainingArguments

    t = cfg.train
    return TrainingArguments(
        output_dir=checkpoint_dir,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        use_cpu=not cfg.scaling.use_gpu,
        report_to=[],
    )


def longest_batch(cfg, strategy, tokenizer, device) -> dict:
    """The `batch_size` longest of POOL_ROWS training reviews, encoded and left-padded by the loop's classes.

    The longest batch is the one that sizes memory (HF's length-grouped sampler also runs it first).
    """
    from sentiment_ray.data import load_splits
    from sentiment_ray.training.batches import EncodedReviews, LeftPadCollator

    train = load_splits(cfg.data.source, seed=cfg.train.seed, max_train_samples=POOL_ROWS).train
    encoded = EncodedReviews(strategy, train["text"].tolist(), [int(x) for x in train["label"]])
    order = sorted(range(len(encoded)), key=lambda i: len(encoded.input_ids[i]), reverse=True)
    batch = LeftPadCollator(tokenizer.pad_token_id)([encoded[i] for i in order[: cfg.train.batch_size]])
    return {k: v.to(device) for k, v in batch.items()}


def train_step(parts: dict) -> float:
    """One optimizer step of the training loop's loss; returns the loss (its .item() also syncs CUDA)."""
    import torch
    import torch.nn.functional as F

    model, batch = parts["model"], parts["batch"]
    with torch.autocast(parts["device"].type, dtype=torch.bfloat16, enabled=parts["autocast"]):
        # as SentimentTrainer.compute_loss (HF runs it under its autocast): scores are [batch, 2] float32
        loss = F.cross_entropy(parts["strategy"].scores(model, batch), batch["labels"])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parts["params"], parts["max_grad_norm"])
    parts["optimizer"].step()
    model.zero_grad(set_to_none=True)  # as HF Trainer: gradients live only within a step
    return loss.item()


def _proc_status() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in bytes."""
    with open("/proc/self/status", encoding="ascii") as f:
        rows = dict(line.split(":", 1) for line in f if line.startswith(("VmRSS", "VmHWM")))
    return {k: int(v.split()[0]) * 1024 for k, v in rows.items()}  # the kernel reports kB


class CpuPeak:
    """Peak resident memory of a code region: VmHWM after resetting it to the current RSS."""

    kind = "process RSS (VmHWM during the step)"

    def start(self) -> int:
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back, so the step's pages show as growth
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")  # 5: reset the peak-RSS counter (VmHWM) to the current RSS
        return _proc_status()["VmRSS"]

    def stop(self) -> int:
        return _proc_status()["VmHWM"]


class CudaPeak:
    kind = "torch.cuda.max_memory_allocated"

    def start(self) -> int:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()

    def stop(self) -> int:
        import torch

        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()


def measure_step(spec: StepSpec) -> dict:
    """Peak memory (bytes) and time (s) of the training step after a warm-up step, for one configuration."""
    import torch

    if spec.device == "cpu" and spec.threads:
        torch.set_num_threads(spec.threads)
    with tempfile.TemporaryDirectory(prefix="bench-step-") as scratch:
        parts = build_step(spec, scratch)
        train_step(parts)  # warm-up: optimizer state, kernels, allocator
        probe = CudaPeak() if parts["device"].type == "cuda" else CpuPeak()
        before = probe.start()
        started = time.perf_counter()
        train_step(parts)
        measured_s = time.perf_counter() - started
        peak = probe.stop()
        times = [_timed(parts) for _ in range(spec.timed_steps)] or [measured_s]  # steps with a warm heap
    batch, model = parts["batch"], parts["model"]
    return {
        **asdict(spec),
        "memory_kind": probe.kind,
        "pre_step_bytes": before,
        "peak_bytes": peak,
        "step_peak_growth_bytes": peak - before,
        "measured_step_s": measured_s,
        "median_step_s": statistics.median(times),
        "batch_rows": int(batch["input_ids"].shape[0]),
        "batch_width": int(batch["input_ids"].shape[1]),  # tokens per row after left padding
        "batch_real_tokens": int(batch["attention_mask"].sum()),
        "trainable_params": sum(p.numel() for p in parts["params"]),
        "total_params": sum(p.numel() for p in model.parameters()),
        "torch_threads": torch.get_num_threads(),
    }


def _timed(parts: dict) -> float:
    started = time.perf_counter()
    train_step(parts)
    return time.perf_counter() - started


def measure_in_subprocess(spec: StepSpec, timeout_s: float = 1800) -> dict:
    """`measure_step` in a fresh Python process (a clean heap per configuration); returns its result."""
    env = dict(os.environ)
    if spec.device == "cpu" and spec.threads:
        env["OMP_NUM_THREADS"] = str(spec.threads)
    command = [sys.executable, "-m", "benchmarks.training_memory", "--child", json.dumps(asdict(spec))]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout_s, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARKER)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"step measurement {spec} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len(MARKER) :])


def memory_table(configs: list[tuple[str, str]], strategies, s) -> list[dict]:
    """One fresh-process measurement per (shape, finetune) × strategy, as table rows (MiB, seconds).

    `s` is the throughput benchmark's Settings: the same per-worker batch, max_length, device and seed.
    """
    rows = []
    for (shape, finetune), strategy in itertools.product(dict.fromkeys(configs), strategies):
        spec = StepSpec(shape, strategy, finetune, s.batch_size, s.max_length, s.device, s.seed)
        print(f"[bench] step memory {spec}", flush=True)
        rows.append(memory_row(measure_in_subprocess(spec)))
    return rows


def memory_row(result: dict) -> dict:
    keep = ("shape", "strategy", "finetune", "batch_rows", "batch_width", "batch_real_tokens", "torch_threads")
    mib = 2**20
    return {
        **{k: result[k] for k in keep},
        "step_peak_growth_mib": result["step_peak_growth_bytes"] / mib,
        "peak_mib": result["peak_bytes"] / mib,
        "pre_step_mib": result["pre_step_bytes"] / mib,
        "median_step_s": result["median_step_s"],
        "measured_step_s": result["measured_step_s"],
        "trainable_params": result["trainable_params"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", required=True, help="a StepSpec as JSON")
    spec = StepSpec(**json.loads(parser.parse_args(argv).child))
    print(MARKER + json.dumps(measure_step(spec)), flush=True)


if __name__ == "__main__":
    main()
