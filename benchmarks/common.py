"""Shared parts of the benchmark suite: model shapes, the machine's matmul peak, model FLOPs, result files.

Every benchmark writes `results/bench/<name>.json` (numbers + provenance) and `results/bench/<name>.md`
(a table headed by the machine, the versions, the model shape and the data).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from sentiment_ray.provenance import provenance

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "results" / "bench"
"""Where every benchmark writes, wherever it is run from (the benchmarks live in the repository, not the package)."""

SHAPES = ("tiny", "1.5b-width")
"""Default benchmark shapes: the offline tiny preset, and Qwen2.5-1.5B's widths (hidden, MLP, heads, vocab) at
2 layers with random weights, the per-layer and vocab-projection costs of the real model at a size this machine
runs fast. `1.5b` (asked for by name: `--shapes 1.5b`) is the full 28-layer architecture, random weights
(sentiment_ray/models/shapes.py): what users score with, where the layers, not the vocabulary, dominate."""
LIBRARY_SHAPES = {"1.5b-width": "random:qwen2.5-1.5b-width", "1.5b": "random:qwen2.5-1.5b"}


PRESETS = {"lora": "jobs/configs/qwen2.5-1.5b-lora.yaml", "qlora": "jobs/configs/qwen2.5-1.5b-qlora.yaml"}
"""Qwen2.5-1.5B's presets (repository paths), which the real-shape smoke and the GPU check run."""


def shape_config(shape: str):
    """The Qwen2Config of a benchmark shape (`tiny` is the offline preset's own config)."""
    from sentiment_ray.models.shapes import RANDOM_PREFIX
    from sentiment_ray.models.shapes import shape_config as library_shape
    from sentiment_ray.models.tiny import tiny_qwen2_config

    if shape == "tiny":
        return tiny_qwen2_config()
    if shape not in LIBRARY_SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose one of tiny, {', '.join(LIBRARY_SHAPES)}")
    return library_shape(LIBRARY_SHAPES[shape].removeprefix(RANDOM_PREFIX))


def shape_base_folder(shape: str) -> str:
    """The `model.name` of a benchmark shape: `tiny`, or the `random:` name that resolves to its cached folder."""
    if shape == "tiny":
        return "tiny"
    shape_config(shape)  # an unknown shape fails here
    return LIBRARY_SHAPES[shape]


def shape_summary(shape: str) -> dict:
    c = shape_config(shape)
    keys = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads")
    return {"shape": shape, "vocab_size": c.vocab_size, **{k: getattr(c, k) for k in keys}, "random_init": True}


def layer_matmul_params(config) -> int:
    """Weights multiplied per token in the decoder layers (q, k, v, o, gate, up, down), all layers."""
    h, head = config.hidden_size, config.hidden_size // config.num_attention_heads
    kv = config.num_key_value_heads * head
    per_layer = h * h + 2 * h * kv + h * h + 3 * h * config.intermediate_size
    return per_layer * config.num_hidden_layers


def forward_flops(config, token_lengths: list[int], head_columns: int) -> float:
    """Model FLOPs of one forward over rows of the given REAL lengths (padding excluded).

    2 FLOPs per multiply-add: 2·P per token for the layer weights, 4·L·h per token per layer for
    attention scores and values (L = the row's length, causal halving ignored), and 2·h·head_columns
    per row for the output head at the scored position (2 label rows, 2 classes, or the full vocab).
    """
    h, layers = config.hidden_size, config.num_hidden_layers
    weights = 2 * layer_matmul_params(config) * sum(token_lengths)
    attention = sum(4 * n * n * h * layers for n in token_lengths)
    head = 2 * h * head_columns * len(token_lengths)
    return float(weights + attention + head)


def matmul_peak_flops(dtype, device: str = "cpu", size: int = 2048, repeats: int = 5) -> float:
    """Best FLOP/s of a `size`³ matmul in `dtype` on `device`, measured now (the denominator of MFU)."""
    import torch

    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    best = float("inf")
    for _ in range(repeats + 1):  # the first run warms up kernels and allocator
        _sync(device)
        started = time.perf_counter()
        torch.matmul(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str = "cpu"):
    """(fn(), seconds): the clock stops only after the device has finished the queued work."""
    _sync(device)
    started = time.perf_counter()
    result = fn()
    _sync(device)
    return result, time.perf_counter() - started


def timed_against_peak(fn, dtype, device: str = "cpu", size: int = 2048, repeats: int = 1):
    """(fn(), seconds, peak FLOP/s in `dtype`) for the fastest of `repeats` calls of fn.

    The matmul peak is measured right before and right after each timed call and the higher one kept, so
    that on a shared machine the denominator of MFU sees the load its numerator saw.
    """
    best = None
    for _ in range(repeats):
        before = matmul_peak_flops(dtype, device, size)
        result, seconds = timed(fn, device)
        peak = max(before, matmul_peak_flops(dtype, device, size))
        if best is None or seconds < best[1]:
            best = (result, seconds, peak)
    return best


def utilisation(flops: float | None, seconds: float, peak: float) -> dict:
    """Model GFLOP, achieved GFLOP/s, peak GFLOP/s and MFU (achieved / peak); only the peak when flops is None."""
    if flops is None:
        return {"peak_gflops": peak / 1e9}
    achieved = flops / seconds
    return {
        "model_gflop": flops / 1e9,
        "achieved_gflops": achieved / 1e9,
        "peak_gflops": peak / 1e9,
        "mfu": achieved / peak,
    }


def head_columns(model, strategy, tokenizer) -> int | None:
    """Output-head columns the strategy projects per scored position, counted from the FLOPs it really runs.

    A row goes through `strategy.scores` and through the decoder body alone (no head) under torch's FLOP
    counter; the difference is the head, 2·hidden·columns per projected position. So the answer follows the
    strategy's code: the full vocabulary (151,936) when label scoring projects every vocab row at the last
    position, 2 when it projects only the two label rows, 2 for a classifier. (HF's classifier applies its
    2-column head at every position, which shows up as head FLOPs growing with the row's length: then the
    per-position count is returned.) None for multi-token label words, whose 2×batch continuation rows
    `forward_flops` does not model.
    """
    if not getattr(strategy, "single_token", True):
        return None
    short, long = (
        _head_flops(model, strategy, tokenizer, text) for text in ("好", "质量很好，物流也快，客服耐心，值得购买")
    )
    # zero unless the head runs at every position (the two rows differ in length by a dozen tokens)
    per_position = (long[0] - short[0]) / max(1, long[1] - short[1])
    return round((per_position or short[0]) / (2 * model.config.hidden_size))


def _head_flops(model, strategy, tokenizer, text: str) -> tuple[float, int]:
    """(head FLOPs, row length) of scoring one row: scores' FLOPs minus the decoder body's."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from sentiment_ray.models.strategies import pad_batch

    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in pad_batch([strategy.encode(text)], tokenizer.pad_token_id).items()}
    body = getattr(model, model.base_model_prefix)  # Qwen2Model under both the causal-LM and the classifier class
    with torch.inference_mode():
        with FlopCounterMode(display=False) as whole:
            strategy.scores(model, batch)
        with FlopCounterMode(display=False) as trunk:
            body(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    return whole.get_total_flops() - trunk.get_total_flops(), batch["input_ids"].shape[1]


def write_result(name: str, payload: dict, table: list[dict], notes: list[str] | None = None) -> Path:
    """Write `<name>.json` (payload + table + provenance) and `<name>.md` under RESULTS_DIR."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    origin = provenance()
    full = {"name": name, **payload, "rows": table, **origin}
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(full, ensure_ascii=False, indent=2, default=str))
    (RESULTS_DIR / f"{name}.md").write_text(markdown_report(name, payload, table, origin, notes or []))
    return path


def machine_line(machine: dict) -> str:
    """`AMD EPYC, 2 CPUs (matmul flags: avx2 fma …), GPUs: none`: how every result file names its machine."""
    flags = machine.get("cpu_matmul_flags", "not recorded")
    return f"{machine['processor']}, {machine['cpu_count']} CPUs (matmul flags: {flags}), GPUs: {machine['gpus']}"


def markdown_report(name: str, payload: dict, table: list[dict], origin: dict, notes: list[str]) -> str:
    lines = [
        f"# Benchmark: {name}",
        "",
        f"- command: `{origin['command']}`",
        f"- machine: {machine_line(origin['machine'])}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in origin["versions"].items()),
        f"- created: {origin['created_at']}",
        *(f"- {k}: {json.dumps(v, ensure_ascii=False, default=str)}" for k, v in payload.items()),
        *(f"- {note}" for note in notes),
        "",
    ]
    if table:
        columns = list(dict.fromkeys(k for row in table for k in row))
        lines += ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
        lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in table]
    return "\n".join(lines) + "\n"


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def append_table(name: str, key: str, title: str, rows: list[dict]) -> None:
    """Add a second table to a result `write_result` wrote: `rows` under `key` in the JSON, a `## title` in the .md."""
    path = RESULTS_DIR / f"{name}.json"
    full = json.loads(path.read_text())
    full[key] = rows
    path.write_text(json.dumps(full, ensure_ascii=False, indent=2, default=str))
    lines = ["", f"## {title}", ""]
    if rows:
        columns = list(dict.fromkeys(k for row in rows for k in row))
        lines += ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
        lines += ["| " + " | ".join(_cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    else:
        lines.append("(none run)")
    with (RESULTS_DIR / f"{name}.md").open("a", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
