"""Confidence analysis of N-class predictions: summary, histogram, calibration (ECE + temperature), abstention.

Inputs are per-row true labels and class probabilities: a list of N probabilities per row, or for two classes
P(class 1) alone, so both strategies (and any baseline) go through the same code. A row's prediction and its
confidence are those of `sentiment_ray.calibration` (`predicted_ids`, `top_label`): the most probable class (two
classes: class 1 when P(class 1) >= 0.5) and its probability, so confidence lies in [1/N, 1] ([0.5, 1] for two).
ECE, the temperature fit and the abstention threshold are calibration.py's own (one ECE, one threshold rule).

Edge cases (the result always has the same keys):
- rows whose probabilities or label are None (e.g. Prediction rows with an `error`) are left out and
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

from sentiment_ray.calibration import (
    DELTA,
    apply_temperature,
    as_matrix,
    ece_of,
    fit_temperature,
    lowest_reaching,
    nll,
    predicted_ids,
    temperature_at_bound,
    threshold_table,
    top_label,
)

TEMPERATURE_METHOD = (
    "scipy.optimize.minimize_scalar (bounded) over log T in [0.01, 100] minimising the mean NLL of "
    "softmax(log P / T), the fit of sentiment_ray.calibration; the NLL is convex in 1/T, hence unimodal in log T"
)
PRECISION_DEFINITION = "accuracy on the rows kept, i.e. rows whose confidence >= threshold (every class together)"
ABSTENTION_RULE = (
    f"the lowest threshold whose one-sided Clopper-Pearson lower bound (delta {DELTA}) on the kept rows' accuracy "
    "reaches the target (sentiment_ray.calibration, the rule of calibrate and --target-accuracy), found on these rows"
)
ABSTENTION_CURVE_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def confidence_analysis(
    labels: Sequence,
    probs: Sequence,
    texts: Sequence | None,
    ids: Sequence | None,
    *,
    bins: int = 10,
    n_lowest: int = 20,
    target_precision: float = 0.95,
    names: Sequence[str] | None = None,
) -> dict:
    """The `confidence_analysis.json` dict (module docstring: the prediction rule and the edge cases).

    `probs`: per row, N class probabilities or (two classes) P(class 1), or None; `names`: the classes (for the
    lowest-confidence rows' `probs`; two classes without names keep `prob_positive`)."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    n_rows = len(labels)
    texts = list(texts) if texts is not None else [None] * n_rows
    ids = list(ids) if ids is not None else list(range(n_rows))
    if not (len(probs) == len(texts) == len(ids) == n_rows):
        raise ValueError("labels, probs, texts and ids must have the same length")
    keep = [i for i in range(n_rows) if labels[i] is not None and probs[i] is not None]
    y = np.asarray([int(labels[i]) for i in keep], dtype=np.int64)  # [n]
    width = len(names) if names else 2
    p = as_matrix([probs[i] for i in keep]) if keep else np.zeros((0, width))  # [n, N]
    conf, correct = top_label(y, p)  # [n] each: top-class probability, 1.0 where the top class is right
    rows = [(ids[i], texts[i]) for i in keep]
    return {
        "n": int(y.size),
        "n_excluded": n_rows - len(keep),
        "classes_present": sorted(int(c) for c in np.unique(y)),
        "prediction_rule": "predicted = the most probable class (two classes: 1 if P(class 1) >= 0.5); "
        "confidence = its probability",
        "accuracy": _mean_or_none(correct),
        "mean_confidence": _mean_or_none(conf),
        "share_above_0_9": _mean_or_none(conf > 0.9),
        "histogram": confidence_histogram(conf, bins, low=1.0 / p.shape[1]),
        "lowest_confidence": lowest_confidence_rows(rows, y, p, n_lowest, names),
        "calibration": calibration(y, p, bins),
        "abstention": abstention(y, p, target_precision),
    }


def _mean_or_none(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _bin_index(conf: np.ndarray, bins: int, low: float) -> np.ndarray:
    """Equal-width bin of each confidence over [low, 1]; a value on an inner edge goes right, 1.0 goes last
    (the convention of np.histogram and of `calibration.ece_of`, so histogram, curve and ECE agree)."""
    edges = np.linspace(low, 1.0, bins + 1)
    return np.searchsorted(edges[1:-1], conf, side="right")  # [n] ints in [0, bins - 1]


def confidence_histogram(conf: np.ndarray, bins: int, low: float = 0.5) -> dict:
    """Counts of confidence in `bins` equal-width bins over [low, 1] (low = 1/N); `edges` has bins + 1 entries."""
    counts = np.bincount(_bin_index(conf, bins, low), minlength=bins)
    return {"edges": np.linspace(low, 1.0, bins + 1).round(6).tolist(), "counts": counts.tolist()}


def lowest_confidence_rows(rows: list, y: np.ndarray, p: np.ndarray, n_lowest: int, names=None) -> list[dict]:
    """The `n_lowest` least confident rows, least confident first (ties keep input order). `p`: [n, N]."""
    conf, predicted = p.max(axis=1), predicted_ids(p)  # [n] each
    order = np.argsort(conf, kind="stable")[: max(n_lowest, 0)]
    binary = p.shape[1] == 2 and not names
    return [
        {
            "id": _plain(rows[i][0]),
            "text": rows[i][1],
            "label": int(y[i]),
            "predicted": int(predicted[i]),
            **(
                {"prob_positive": float(p[i, 1])}
                if binary
                else {"probs": dict(zip(names or range(p.shape[1]), p[i].tolist(), strict=True))}
            ),
            "confidence": float(conf[i]),
        }
        for i in order
    ]


def _plain(value):
    """numpy scalars → Python scalars so the dict is JSON-serialisable."""
    return value.item() if isinstance(value, np.generic) else value


def reliability_curve(conf: np.ndarray, correct: np.ndarray, bins: int, low: float = 0.5) -> list[dict]:
    """Per equal-width bin over [low, 1]: mean confidence, accuracy and count (None stats for empty bins)."""
    index = _bin_index(conf, bins, low)
    edges = np.linspace(low, 1.0, bins + 1)
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
    """ECE and reliability curve, before and after fitting a temperature on the same rows. `p`: [n, N].

    The temperature is fitted on the rows it is then evaluated on (in-sample): it measures how much of
    the miscalibration is a single global scale, not what a held-out calibration split would achieve.
    """
    low = 1.0 / p.shape[1]
    conf, correct = top_label(y, p)
    result = {
        "bins": bins,
        "bin_range": [round(low, 6), 1.0],
        "ece": ece_of(conf, correct, bins, low),
        "reliability_curve": reliability_curve(conf, correct, bins, low),
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
    conf_t = p_t.max(axis=1)  # the predicted class never changes under a temperature, so `correct` stays
    result.update(
        temperature=temperature,
        temperature_at_bound=temperature_at_bound(temperature),
        nll_before=nll(y, p),
        nll_after=nll(y, p_t),
        ece_after_temperature=ece_of(conf_t, correct, bins, low),
        reliability_curve_after_temperature=reliability_curve(conf_t, correct, bins, low),
    )
    return result


def abstention(y: np.ndarray, p: np.ndarray, target_precision: float) -> dict:
    """The threshold `calibrate` would choose for `target_precision`, found on these rows (ABSTENTION_RULE): the
    lowest confidence threshold whose kept rows' accuracy has a Clopper-Pearson lower bound >= the target."""
    conf, correct = top_label(y, p)
    result = {
        "target_precision": target_precision,
        "precision_definition": PRECISION_DEFINITION,
        "rule": ABSTENTION_RULE,
        "threshold": None,
        "coverage": None,
        "n_kept": None,
        "precision_at_threshold": None,
        "accuracy_lower_bound": None,
        "reason": None,
        "curve": _abstention_curve(conf, correct),
    }
    if len(y) == 0:
        return {**result, "reason": "no scored rows"}
    table = threshold_table(y, p)
    row, reason = lowest_reaching(table, target_precision)
    if row is None:
        return {**result, "reason": reason}
    return {
        **result,
        "threshold": row["threshold"],
        "coverage": row["coverage"],
        "n_kept": row["n_kept"],
        "precision_at_threshold": row["accuracy"],
        "accuracy_lower_bound": row["accuracy_lower_bound"],
    }


def _abstention_curve(conf: np.ndarray, correct: np.ndarray) -> list[dict]:
    """Coverage and accuracy-of-kept at a few fixed thresholds, for the report."""
    curve = []
    for t in ABSTENTION_CURVE_THRESHOLDS:
        kept = conf >= t
        coverage = _mean_or_none(kept)
        curve.append({"threshold": t, "coverage": coverage, "precision": _mean_or_none(correct[kept])})
    return curve
