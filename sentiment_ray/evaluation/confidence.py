"""Confidence analysis of binary predictions: summary, histogram, calibration (ECE + temperature), abstention.

Inputs are per-row true labels (0/1) and P(positive), so both strategies (and any baseline) go through
the same code. A row's prediction is `P(positive) >= 0.5` (the rule of `metrics.binary_metrics` and of
the predictor) and its confidence is `max(p, 1 - p)`, so confidence always lies in [0.5, 1].

Edge cases (the result always has the same keys):
- rows whose P(positive) or label is None (e.g. Prediction rows with an `error`) are left out and
  counted in `n_excluded`;
- n = 0: statistics are None, histogram counts are zeros, lists are empty, `abstention.threshold` is None
  with a reason;
- single-class labels: everything is still defined and computed (ECE and accuracy need no second class);
  `classes_present` shows it. The temperature fit can then run to the edge of its search range (e.g.
  every prediction right → sharper is always better); `temperature_at_bound` flags that for any input.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sentiment_ray.calibration import apply_temperature, ece_of, fit_temperature, nll, temperature_at_bound

TEMPERATURE_METHOD = (
    "scipy.optimize.minimize_scalar (bounded) over log T in [0.01, 100] minimising the mean binary NLL of "
    "sigmoid(logit(p) / T), the fit of sentiment_ray.calibration; the NLL is convex in 1/T, hence unimodal in log T"
)
PRECISION_DEFINITION = "accuracy on the rows kept, i.e. rows whose confidence >= threshold (both classes together)"
ABSTENTION_CURVE_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def confidence_analysis(
    labels: Sequence,
    prob_positive: Sequence,
    texts: Sequence | None,
    ids: Sequence | None,
    *,
    bins: int = 10,
    n_lowest: int = 20,
    target_precision: float = 0.95,
) -> dict:
    """The `confidence_analysis.json` dict (see module docstring for the prediction rule and edge cases)."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    n_rows = len(labels)
    texts = list(texts) if texts is not None else [None] * n_rows
    ids = list(ids) if ids is not None else list(range(n_rows))
    if not (len(prob_positive) == len(texts) == len(ids) == n_rows):
        raise ValueError("labels, prob_positive, texts and ids must have the same length")
    keep = [i for i in range(n_rows) if labels[i] is not None and prob_positive[i] is not None]
    y = np.asarray([int(labels[i]) for i in keep], dtype=np.int64)  # [n]
    p = np.asarray([float(prob_positive[i]) for i in keep], dtype=np.float64)  # [n]
    conf = np.maximum(p, 1.0 - p)  # [n], in [0.5, 1]
    correct = ((p >= 0.5).astype(np.int64) == y).astype(np.float64)  # [n], 1.0 where the prediction is right
    rows = [(ids[i], texts[i]) for i in keep]
    return {
        "n": int(y.size),
        "n_excluded": n_rows - len(keep),
        "classes_present": sorted(int(c) for c in np.unique(y)),
        "prediction_rule": "predicted = 1 if prob_positive >= 0.5 else 0; confidence = max(p, 1 - p)",
        "accuracy": _mean_or_none(correct),
        "mean_confidence": _mean_or_none(conf),
        "share_above_0_9": _mean_or_none(conf > 0.9),
        "histogram": confidence_histogram(conf, bins),
        "lowest_confidence": lowest_confidence_rows(rows, y, p, n_lowest),
        "calibration": calibration(y, p, bins),
        "abstention": abstention(conf, correct, target_precision),
    }


def _mean_or_none(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _bin_index(conf: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width bin of each confidence over [0.5, 1]; a value on an inner edge goes right, 1.0 goes last
    (the convention of np.histogram, so histogram counts and reliability-curve counts agree)."""
    edges = np.linspace(0.5, 1.0, bins + 1)
    return np.searchsorted(edges[1:-1], conf, side="right")  # [n] ints in [0, bins - 1]


def confidence_histogram(conf: np.ndarray, bins: int) -> dict:
    """Counts of confidence in `bins` equal-width bins over [0.5, 1]; `edges` has bins + 1 entries."""
    counts = np.bincount(_bin_index(conf, bins), minlength=bins)
    return {"edges": np.linspace(0.5, 1.0, bins + 1).round(6).tolist(), "counts": counts.tolist()}


def lowest_confidence_rows(rows: list, y: np.ndarray, p: np.ndarray, n_lowest: int) -> list[dict]:
    """The `n_lowest` least confident rows, least confident first (ties keep input order)."""
    conf = np.maximum(p, 1.0 - p)
    order = np.argsort(conf, kind="stable")[: max(n_lowest, 0)]
    return [
        {
            "id": _plain(rows[i][0]),
            "text": rows[i][1],
            "label": int(y[i]),
            "predicted": int(p[i] >= 0.5),
            "prob_positive": float(p[i]),
            "confidence": float(conf[i]),
        }
        for i in order
    ]


def _plain(value):
    """numpy scalars → Python scalars so the dict is JSON-serialisable."""
    return value.item() if isinstance(value, np.generic) else value


def reliability_curve(conf: np.ndarray, correct: np.ndarray, bins: int) -> list[dict]:
    """Per equal-width bin over [0.5, 1]: mean confidence, accuracy and count (None stats for empty bins)."""
    index = _bin_index(conf, bins)
    edges = np.linspace(0.5, 1.0, bins + 1)
    curve = []
    for b in range(bins):
        mask = index == b
        curve.append(
            {
                "lower": round(float(edges[b]), 6),
                "upper": round(float(edges[b + 1]), 6),
                "count": int(mask.sum()),
                "mean_confidence": _mean_or_none(conf[mask]),
                "accuracy": _mean_or_none(correct[mask]),
            }
        )
    return curve


def calibration(y: np.ndarray, p: np.ndarray, bins: int) -> dict:
    """ECE and reliability curve, before and after fitting a temperature on the same rows.

    The temperature is fitted on the rows it is then evaluated on (in-sample): it measures how much of
    the miscalibration is a single global scale, not what a held-out calibration split would achieve.
    """
    conf = np.maximum(p, 1.0 - p)
    correct = ((p >= 0.5).astype(np.int64) == y).astype(np.float64)
    result = {
        "bins": bins,
        "bin_range": [0.5, 1.0],
        "ece": ece_of(conf, correct, bins),
        "reliability_curve": reliability_curve(conf, correct, bins),
        "temperature": None,
        "temperature_method": TEMPERATURE_METHOD,
        "temperature_at_bound": None,
        "nll_before": None,
        "nll_after": None,
        "ece_after_temperature": None,
        "reliability_curve_after_temperature": None,
    }
    if len(y) == 0:
        return result
    temperature = fit_temperature(y, p)
    p_t = apply_temperature(p, temperature)
    conf_t = np.maximum(p_t, 1.0 - p_t)
    result.update(
        temperature=temperature,
        temperature_at_bound=temperature_at_bound(temperature),
        nll_before=nll(y, p),
        nll_after=nll(y, p_t),
        ece_after_temperature=ece_of(conf_t, correct, bins),
        reliability_curve_after_temperature=reliability_curve(conf_t, correct, bins),
    )
    return result


def abstention(conf: np.ndarray, correct: np.ndarray, target_precision: float) -> dict:
    """Smallest confidence threshold whose kept rows (confidence >= threshold) reach `target_precision`.

    Candidate thresholds are the observed confidences, so "smallest" means the largest coverage at which
    the target holds. Accuracy-of-kept is not monotone in the threshold; we scan every candidate.
    """
    result = {
        "target_precision": target_precision,
        "precision_definition": PRECISION_DEFINITION,
        "threshold": None,
        "coverage": None,
        "n_kept": None,
        "precision_at_threshold": None,
        "reason": None,
        "curve": _abstention_curve(conf, correct),
    }
    if len(conf) == 0:
        return {**result, "reason": "no scored rows"}
    order = np.argsort(-conf, kind="stable")
    sorted_conf, cum_correct = conf[order], np.cumsum(correct[order])
    # Last position of each distinct confidence: keeping conf >= t keeps exactly the prefix up to there.
    ends = np.flatnonzero(np.r_[sorted_conf[1:] != sorted_conf[:-1], True])
    precision = cum_correct[ends] / (ends + 1)  # thresholds run from high to low along `ends`
    reached = np.flatnonzero(precision >= target_precision - 1e-12)
    if reached.size == 0:
        best = int(np.argmax(precision))
        reason = (
            f"no confidence threshold reaches precision {target_precision}: the best is "
            f"{precision[best]:.4f} at threshold {sorted_conf[ends[best]]:.4f}"
        )
        return {**result, "reason": reason}
    j = reached[-1]  # lowest threshold that reaches the target = most rows kept
    return {
        **result,
        "threshold": float(sorted_conf[ends[j]]),
        "coverage": float((ends[j] + 1) / len(conf)),
        "n_kept": int(ends[j] + 1),
        "precision_at_threshold": float(precision[j]),
    }


def _abstention_curve(conf: np.ndarray, correct: np.ndarray) -> list[dict]:
    """Coverage and accuracy-of-kept at a few fixed thresholds, for the report."""
    curve = []
    for t in ABSTENTION_CURVE_THRESHOLDS:
        kept = conf >= t
        coverage = _mean_or_none(kept)
        curve.append({"threshold": t, "coverage": coverage, "precision": _mean_or_none(correct[kept])})
    return curve
