"""Selective prediction on the evaluated rows: the risk–coverage curve, its area (AURC), and for each target
accuracy what the model folder's calibration promised against what the evaluated rows achieved.

The predictions given here are the predictor's default ones, i.e. calibrated when the folder holds a calibration
(sentiment_ray/calibration.py); the uncalibrated probabilities are recovered exactly with the inverse temperature,
so NLL, Brier and ECE can be shown before and after. The evaluated rows must not be the calibration rows (train
calibrates on the validation split; `calibrate` on a file the user names): then "achieved" is an honest check.
"""

from __future__ import annotations

import numpy as np

from sentiment_ray.calibration import apply_temperature, as_matrix, brier, ece, nll, threshold_for, top_label

TARGETS = (0.90, 0.95, 0.99)
SHIFT_TARGET = 0.95
"""The target whose threshold the evaluation's shift check tests coverage at."""


def risk_coverage(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(coverage [n], risk [n], AURC): keep the k most confident rows for k = 1..n; risk = their error rate.
    `p`: [n, N] class probabilities, or P(class 1) per row."""
    conf, correct = top_label(y, p)
    wrong = (1.0 - correct)[np.argsort(-conf, kind="stable")]
    k = np.arange(1, len(y) + 1)
    risk = np.cumsum(wrong) / k
    return k / len(y), risk, float(risk.mean())


def selective_result(labels, probs, calibration: dict | None, others: dict | None = None) -> dict:
    """The `selective_prediction.json` dict; rows without a prediction (None) are left out and counted.
    `probs`: per row, N class probabilities or (two classes) P(class 1), calibrated by `calibration` (the folder's
    own); `others`: the folder's named calibrations, each also reported as promised against achieved here."""
    pairs = [(int(y), p) for y, p in zip(labels, probs, strict=True) if p is not None]
    y = np.asarray([a for a, _ in pairs], dtype=np.int64)
    p = as_matrix([b for _, b in pairs]) if pairs else np.zeros((0, 2))
    result = {"n": len(pairs), "n_excluded": len(labels) - len(pairs), "calibrated": bool(calibration)}
    if not pairs:
        return {**result, "reason": "no scored rows"}
    coverage, risk, aurc = risk_coverage(y, p)
    step = max(1, len(y) // 100)  # about 100 points of the curve are enough for the plot and the JSON
    result["aurc"] = aurc
    result["risk_coverage"] = {"coverage": coverage[::step].tolist(), "risk": risk[::step].tolist()}
    if not calibration:
        return {**result, "reason": "the model folder holds no calibration (sentiment-ray calibrate)"}
    raw = apply_temperature(p, 1.0 / calibration["temperature"])  # the model's own probabilities
    result["before_after"] = {
        "temperature": calibration["temperature"],
        "before": {"nll": nll(y, raw), "brier": brier(y, raw), "ece": ece(y, raw)},
        "after": {"nll": nll(y, p), "brier": brier(y, p), "ece": ece(y, p)},
    }
    result["targets"] = [_at_target(y, p, calibration, target) for target in TARGETS]
    result["by_calibration"] = {"default": _promised_vs_achieved(y, p, calibration)}
    for name, block in (others or {}).items():  # the same rows under each named calibration's temperature
        result["by_calibration"][name] = _promised_vs_achieved(y, apply_temperature(raw, block["temperature"]), block)
    return result


def _promised_vs_achieved(y: np.ndarray, p: np.ndarray, calibration: dict) -> dict:
    fitted = calibration.get("fitted_on", {})
    return {
        "fitted_on": fitted,
        "temperature": calibration["temperature"],
        "targets": [_at_target(y, p, calibration, target) for target in TARGETS],
    }


def evaluation_shift(calibration: dict | None, probs, lengths: list) -> dict:
    """The shift check (sentiment_ray/shift.py) of the evaluated rows against the folder's own calibration, with
    the coverage test at SHIFT_TARGET's threshold. `probs` as in `selective_result`, calibrated by it."""
    from sentiment_ray.shift import ShiftTally, check_shift

    reference = (calibration or {}).get("reference")
    if not reference:
        return check_shift(calibration, None)
    conf = [None if p is None else float(as_matrix([p]).max()) for p in probs]
    threshold = threshold_for(calibration, SHIFT_TARGET)[0]
    return check_shift(calibration, ShiftTally.of(reference, conf, lengths, threshold))


def _at_target(y: np.ndarray, p: np.ndarray, calibration: dict, target: float) -> dict:
    threshold, reason = threshold_for(calibration, target)
    row = {"target_accuracy": target, "threshold": threshold, "reason": reason}
    if threshold is None:
        return {**row, "coverage": 0.0, "n_kept": 0, "accuracy": None, "promised_lower_bound": None}
    promised = next(r for r in calibration["thresholds"] if r["threshold"] == threshold)
    conf, correct = top_label(y, p)
    kept = conf >= threshold
    correct = correct[kept]
    return {
        **row,
        "coverage": float(kept.mean()),
        "n_kept": int(kept.sum()),
        "accuracy": float(correct.mean()) if kept.any() else None,
        "promised_lower_bound": promised["accuracy_lower_bound"],
        "calibration_accuracy": promised["accuracy"],
        "met": bool(kept.any() and correct.mean() >= target),
    }
