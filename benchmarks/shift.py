"""The shift check and recalibration on a calibrated model folder: false alarms in domain, warnings and repair out.

    python -m benchmarks.shift --model-path M [--domain FILE ...] [--subsets 20] [--subset-rows 1000]

1. False alarms: the folder's own held-out rows (the offline corpus' test split of the run's seed, never used for
   training or calibration) are predicted once; `--subsets` random subsets of `--subset-rows` rows (and 10 times as
   many, for a tighter estimate) are each checked against the calibration rows (`sentiment_ray.shift`), with the
   coverage test at `--target`'s threshold, as `score --target-accuracy` does.
2. Shifted sets: the held-out rows' longest quarter (a length shift the repository can ship) and every `--domain`
   file (labelled: `text`, `label` 0/1). For each: the verdict, and the kept rows' accuracy and coverage at the
   target with the folder's calibration; then `--recalibrate-rows` random labelled rows of the set are calibrated
   on with `calibrate --as` (`calibrate_folder`, in a copy of the folder) and the set's other rows are judged with
   that calibration: kept accuracy and coverage, before and after, on the same rows.

The predictor runs as `score` runs it (precision `auto`). Writes results/bench/<--name>.{json,md}.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks import common


def predict(predictor, texts: list[str], calibration: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(top-label confidence, predicted label id, tokens) per text."""
    rows = predictor.predict_batch(texts, calibration=calibration)
    conf = np.asarray([r["confidence"] for r in rows], dtype=np.float64)
    return conf, np.asarray([r["label_id"] for r in rows]), np.asarray(rows.token_lengths, dtype=np.float64)


def verdict(block: dict, conf, lengths, threshold) -> dict:
    from sentiment_ray.shift import ShiftTally, check_shift

    return check_shift(block, ShiftTally.of(block["reference"], conf.tolist(), lengths.tolist(), threshold))


def false_alarms(block: dict, conf, lengths, threshold, subsets: int, rows: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    shifted, by_test = 0, {}
    for _ in range(subsets):
        pick = rng.choice(len(conf), size=rows, replace=False)
        result = verdict(block, conf[pick], lengths[pick], threshold)
        shifted += result["shifted"]
        for name in result["shifted_tests"]:
            by_test[name] = by_test.get(name, 0) + 1
    return {"subsets": subsets, "rows_each": rows, "warned": shifted, "rate": shifted / subsets, "by_test": by_test}


def selection(conf, predicted, labels, threshold) -> dict:
    kept = conf >= threshold if threshold is not None else np.zeros(len(conf), dtype=bool)
    right = predicted == labels
    return {
        "coverage": float(kept.mean()),
        "kept": int(kept.sum()),
        "kept_accuracy": float(right[kept].mean()) if kept.any() else None,
        "accuracy": float(right.mean()),
    }


def shifted_set_row(name: str, folder: Path, frame: pd.DataFrame, args) -> dict:
    """Verdict and selection with the folder's calibration; then recalibration on a sample, judged on the rest."""
    from sentiment_ray.calibration import named, threshold_for
    from sentiment_ray.evaluation.calibrate import calibrate_folder
    from sentiment_ray.inference.predictor import SentimentPredictor

    predictor = SentimentPredictor.from_pretrained(str(folder), device="cpu")
    block = named(predictor.meta, None)
    threshold = threshold_for(block, args.target)[0]
    texts, labels = frame["text"].tolist(), frame["label"].astype(int).to_numpy()
    conf, predicted, lengths = predict(predictor, texts)
    whole = verdict(block, conf, lengths, threshold)
    rng = np.random.default_rng(args.seed)
    sample = rng.choice(len(frame), size=min(args.recalibrate_rows, len(frame) // 2), replace=False)
    rest = np.setdiff1d(np.arange(len(frame)), sample)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "model"
        shutil.copytree(folder, copy)
        frame.iloc[sample][["text", "label"]].to_csv(Path(tmp) / "sample.csv", index=False)
        new_block = calibrate_folder(str(copy), str(Path(tmp) / "sample.csv"), device="cpu", name="domain")
        recalibrated = SentimentPredictor.from_pretrained(str(copy), device="cpu")
        rest_texts = [texts[i] for i in rest]
        new_conf, new_pred, new_len = predict(recalibrated, rest_texts, calibration="domain")
    new_threshold = threshold_for(new_block, args.target)[0]
    before = selection(conf[rest], predicted[rest], labels[rest], threshold)
    after = selection(new_conf, new_pred, labels[rest], new_threshold)
    again = verdict(new_block, new_conf, new_len, new_threshold)
    return {
        "set": name,
        "rows": len(frame),
        "shift warned": whole["shifted"],
        "tests that warned": ", ".join(whole["shifted_tests"]) or "-",
        "p (confidence / length / coverage)": " / ".join(
            f"{whole['tests'][k]['p_value']:.2g}" if k in whole["tests"] else "-"
            for k in ("confidence", "length_tokens", "coverage")
        ),
        "recalibrated on": len(sample),
        "judged on": len(rest),
        "coverage before": before["coverage"],
        "kept accuracy before": before["kept_accuracy"],
        "coverage after": after["coverage"],
        "kept accuracy after": after["kept_accuracy"],
        "overall accuracy": before["accuracy"],
        "shift vs new calibration": again["shifted"],
    }


def main(argv: list[str] | None = None) -> int:
    from sentiment_ray.calibration import named, threshold_for
    from sentiment_ray.data import load_splits
    from sentiment_ray.inference.predictor import SentimentPredictor

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-path", required=True, help="a calibrated model folder (train or calibrate wrote)")
    parser.add_argument("--domain", action="append", default=[], help="a labelled CSV (text, label 0/1); repeatable")
    parser.add_argument("--subsets", type=int, default=20)
    parser.add_argument("--subset-rows", type=int, default=1000)
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--recalibrate-rows", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="shift", help="results/bench/<name>.{json,md}")
    parser.add_argument("--note", action="append", default=[], help="a line for the result (e.g. how M was made)")
    args = parser.parse_args(argv)

    predictor = SentimentPredictor.from_pretrained(args.model_path, device="cpu")
    block = named(predictor.meta, None)
    config = predictor.meta["config"]
    splits = load_splits(
        "offline", seed=config["train"]["seed"], **{k: config["data"][k] for k in ("val_size", "test_size")}
    )
    held_out = splits.test[["text", "label"]].reset_index(drop=True)
    threshold = threshold_for(block, args.target)[0]
    conf, _, lengths = predict(predictor, held_out["text"].tolist())
    alarms = [
        false_alarms(block, conf, lengths, threshold, n, args.subset_rows, args.seed)
        for n in (args.subsets, 10 * args.subsets)
    ]
    longest = held_out[lengths >= np.quantile(lengths, 0.75)]
    sets = [("held-out rows, longest quarter", longest)]
    sets += [(Path(p).name, pd.read_csv(p)) for p in args.domain]
    table = [shifted_set_row(name, Path(args.model_path), frame, args) for name, frame in sets]
    payload = {
        "model": args.model_path,
        "calibration": {"rows": block["reference"]["rows"], "source": block["fitted_on"]},
        "target_accuracy": args.target,
        "held_out_rows": len(held_out),
        "false_alarms": alarms,
    }
    notes = [
        f"false alarms: {a['warned']} of {a['subsets']} random subsets of {a['rows_each']:,} held-out in-domain rows "
        f"warned (rate {a['rate']:.3f}; by test {a['by_test'] or 'none'})"
        for a in alarms
    ]
    notes += args.note
    notes.append(
        "tiny model: a random-init 2-layer Qwen2 trained by the tiny preset; these numbers say how the check "
        "behaves on a weak model, not what Qwen2.5-1.5B reaches"
    )
    path = common.write_result(args.name, payload, table, notes)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
