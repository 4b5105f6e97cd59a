"""bf16 vs fp32 for the predictor on this machine: speed and the share of identical predictions.

    python -m benchmarks.precision --model-path runs/tiny/model [--rows 1200] [--batch-size 32]

The predictor picks bf16 by default only where this benchmark shows it pays and keeps >= 99.5% of
fp32's predictions (see docs/guide/performance.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from benchmarks.common import RESULTS_DIR
from sentiment_ray.provenance import provenance


def time_predictions(model_path: str, precision: str, texts: list[str], batch_size: int) -> tuple[list, float]:
    from sentiment_ray.inference.predictor import SentimentPredictor

    predictor = SentimentPredictor.from_pretrained(model_path, device="cpu", precision=precision)
    predictor.predict_batch(texts[:batch_size], batch_size=batch_size)  # warm-up (allocator, kernels)
    started = time.perf_counter()
    predictions = predictor.predict_batch(texts, batch_size=batch_size)
    return predictions, time.perf_counter() - started


def compare(model_path: str, rows: int, batch_size: int, seed: int = 42) -> dict:
    from sentiment_ray.data import load_splits
    from sentiment_ray.models.folder import read_meta

    meta = read_meta(model_path)
    texts = load_splits("offline", seed=seed).test["text"].tolist()[:rows]
    fp32, fp32_s = time_predictions(model_path, "fp32", texts, batch_size)
    bf16, bf16_s = time_predictions(model_path, "bf16", texts, batch_size)
    same = sum(a["label"] == b["label"] for a, b in zip(fp32, bf16, strict=True))
    max_diff = max(abs(a["prob_positive"] - b["prob_positive"]) for a, b in zip(fp32, bf16, strict=True))
    return {
        "name": "predictor_precision",
        "model_path": str(model_path),
        "model": {k: meta[k] for k in ("base_model", "strategy", "finetune")},
        "tiny_model": meta["base_model"] == "tiny",
        "data": f"offline corpus test split, first {len(texts)} rows (seed {seed})",
        "batch_size": batch_size,
        "torch_threads": torch.get_num_threads(),
        "fp32_reviews_per_s": len(texts) / fp32_s,
        "bf16_reviews_per_s": len(texts) / bf16_s,
        "bf16_speedup": fp32_s / bf16_s,
        "identical_predictions": same / len(texts),
        "max_abs_prob_diff": max_diff,
        **provenance(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--rows", type=int, default=1200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", default=str(RESULTS_DIR / "predictor_precision.json"))
    args = parser.parse_args(argv)
    result = compare(args.model_path, args.rows, args.batch_size)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k not in ("machine", "versions")}, indent=2))


if __name__ == "__main__":
    main()
