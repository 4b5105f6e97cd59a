"""gpu_check.json and gpu_check.md (benchmarks/gpu_check.py): every step's outcome, then one table per measurement."""

from __future__ import annotations

from pathlib import Path

from benchmarks import common

NOTES = [
    "random weights (sentiment_ray/models/shapes.py): speed, memory and agreement are real, accuracy is not",
    "MFU = model FLOP/s (real tokens; training counts forward + backward to the activations, 2 × forward) over the "
    "bf16 matmul peak measured in this run (benchmarks/gpu_check_steps.py)",
    "a rehearsal (--rehearse) runs the tiny model on the CPU for 2 steps: it proves the path, its numbers are not "
    "GPU numbers",
]

TRAIN_COLUMNS = (
    "preset", "strategy", "steps", "seconds_per_step", "tokens_per_s", "mfu", "peak_memory_gb", "first_losses",
    "last_losses", "loss_fell", "reload_max_prob_gap", "reloads",
)  # fmt: skip


def write_report(result: dict) -> list[Path]:
    payload = {k: v for k, v in result.items() if k not in ("steps", "training", "predictor", "qlora_load", "export")}
    common.write_result("gpu_check", payload, result["steps"], NOTES)
    training = [{c: row.get(c) for c in TRAIN_COLUMNS} for row in result["training"]]
    common.append_table("gpu_check", "training", "Training, one worker without Ray (bf16)", training)
    scoring = [{"strategy": s, **row} for s, rows in result["predictor"].items() for row in rows]
    common.append_table("gpu_check", "predictor", "Predictor on the reviews (bf16 against fp32)", scoring)
    single = [{"measure": "qlora_load", **result["qlora_load"]}] if result["qlora_load"] else []
    single += [{"measure": "export", **result["export"]}] if result["export"] else []
    common.append_table("gpu_check", "single_measures", "QLoRA folder load, export in plain transformers", single)
    return [common.RESULTS_DIR / "gpu_check.json", common.RESULTS_DIR / "gpu_check.md"]
