"""Calibrated probabilities and abstention with an accuracy guarantee, stored in the model folder.

Temperature scaling: the N class probabilities become softmax(log P / T) (two classes: P(class 1) becomes
sigmoid(logit(p) / T), the same thing), with T fitted by minimising the mean NLL on labelled calibration rows
(`scipy.optimize.minimize_scalar` over log T, bounded). The predicted label never changes; only confidences do.

Abstention: a prediction is kept when its (calibrated) top-label confidence max_k P_k is at least a threshold t. For
each candidate t, the calibration rows give the coverage (share kept) and the accuracy of the kept rows, and a
one-sided Clopper–Pearson lower bound on that accuracy at level 1 - δ (δ = 0.05). For a `target_accuracy`, the
threshold is the lowest t whose **lower bound** reaches the target: on new rows exchangeable with the calibration
rows, the kept rows' accuracy is then at least the target with probability about 1 - δ, instead of a point
estimate tuned to the calibration rows. When no t reaches the target, every row abstains, with a reason.

The `calibration` block of `sentiment_meta.json` (docs/contracts.md) holds the temperature, what it was fitted
on, NLL / Brier / ECE before and after, and the threshold table.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence

import numpy as np

from sentiment_ray.errors import ConfigError
from sentiment_ray.shift import reference_summary

log = logging.getLogger(__name__)

DELTA = 0.05
"""One-sided risk of the Clopper–Pearson bound: the bound holds with probability 1 - DELTA."""
PROB_CLIP = 1e-7
"""Probabilities are clipped to at least 1e-7 (binary P(class 1) to [1e-7, 1 - 1e-7]) before taking logs: a float32
softmax saturates to 0 and 1."""
LOG_T_BOUNDS = (math.log(0.01), math.log(100.0))
ECE_BINS = 10
MAX_TABLE_ROWS = 200
"""The threshold table keeps at most this many candidate thresholds (quantiles of the calibration confidences)."""


def as_matrix(probs) -> np.ndarray:
    """[n, N] class probabilities; a 1-D array is binary P(class 1), i.e. [[1 - p, p], ...]."""
    probs = np.asarray(probs, dtype=np.float64)
    return np.stack([1.0 - probs, probs], axis=1) if probs.ndim == 1 else probs


def predicted_ids(probs: np.ndarray) -> np.ndarray:
    """The predicted class of each row: the most probable one (two classes: class 1 when P(class 1) >= 0.5)."""
    return (probs[:, 1] >= 0.5).astype(np.int64) if probs.shape[1] == 2 else probs.argmax(axis=1)


def apply_temperature(probs, temperature: float) -> np.ndarray:
    """softmax(log P / T) per row of [n, N] probabilities; for a 1-D P(class 1): sigmoid(logit(p) / T)."""
    matrix = as_matrix(probs)
    if matrix.shape[1] == 2:  # the binary form keeps today's clipping of p to [1e-7, 1 - 1e-7]
        p = np.clip(matrix[:, 1], PROB_CLIP, 1.0 - PROB_CLIP)
        positive = 1.0 / (1.0 + np.exp(-(np.log(p) - np.log1p(-p)) / temperature))
        return positive if np.ndim(probs) == 1 else np.stack([1.0 - positive, positive], axis=1)
    from sentiment_ray.metrics import softmax

    return softmax(clipped_log_probs(matrix) / temperature)


def clipped_log_probs(probs) -> np.ndarray:
    """log P of [n, N] probabilities, clipped as PROB_CLIP says (binary: P(class 1) to [1e-7, 1 - 1e-7])."""
    matrix = as_matrix(probs)
    if matrix.shape[1] == 2:
        p = np.clip(matrix[:, 1], PROB_CLIP, 1.0 - PROB_CLIP)
        return np.stack([np.log1p(-p), np.log(p)], axis=1)
    return np.log(np.clip(matrix, PROB_CLIP, 1.0))


def scaled_nll(y: np.ndarray, logp: np.ndarray, temperature: float) -> float:
    """Mean NLL of softmax(logp / T), in log space: -log softmax_y = log(1 + Σ_{k≠y} exp(d_k)) with d_k = (logp_k -
    logp_y) / T, through log1p so that a tiny loss stays > 0 (the fit must see it keep falling as T → 0)."""
    scaled = logp / temperature
    rows = np.arange(len(y))
    d = scaled - scaled[rows, y][:, None]
    d[rows, y] = -np.inf
    top = np.maximum(d.max(axis=1), 0.0)  # [n]; 0 unless another class beats the true one
    rest = np.exp(d - top[:, None]).sum(axis=1)
    loss = np.where(top > 0, top + np.log(np.exp(-top) + rest), np.log1p(rest))
    return float(np.mean(loss))


def nll(y: np.ndarray, probs) -> float:
    return scaled_nll(np.asarray(y, dtype=np.int64), clipped_log_probs(probs), 1.0)


def brier(y: np.ndarray, probs) -> float:
    """Two classes: mean (P(class 1) - y)^2; N classes: mean over rows of Σ_k (P_k - [y = k])^2."""
    matrix = as_matrix(probs)
    if matrix.shape[1] == 2:
        return float(np.mean((matrix[:, 1] - y) ** 2))
    onehot = np.eye(matrix.shape[1])[y]
    return float(np.mean(((matrix - onehot) ** 2).sum(axis=1)))


def top_label(y: np.ndarray, probs) -> tuple[np.ndarray, np.ndarray]:
    """(confidence = the top class's probability, 1.0 where the top class is right else 0.0) per row."""
    matrix = as_matrix(probs)
    return matrix.max(axis=1), (predicted_ids(matrix) == np.asarray(y)).astype(np.float64)


def ece(y: np.ndarray, probs, bins: int = ECE_BINS) -> float | None:
    """Expected calibration error of the top-label confidence (`ece_of`), bins over [1/N, 1]."""
    conf, correct = top_label(y, probs)
    return ece_of(conf, correct, bins, low=1.0 / as_matrix(probs).shape[1])


def ece_of(conf: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS, low: float = 0.5) -> float | None:
    """ECE = Σ over equal-width bins of [low, 1] of (bin rows / n) · |bin accuracy − bin mean confidence| (Guo et al.,
    2017); `low` = 1/N, the least a top-label confidence can be (two classes: 0.5). A value on an inner edge goes
    right, 1.0 into the last bin. None for no rows. The one ECE of the project: training, `calibrate`, `evaluate`."""
    if len(conf) == 0:
        return None
    index = np.searchsorted(np.linspace(low, 1.0, bins + 1)[1:-1], conf, side="right")
    gaps = [abs(correct[index == b].mean() - conf[index == b].mean()) * (index == b).sum() for b in set(index.tolist())]
    return float(sum(gaps) / len(conf))


def fit_temperature(y: np.ndarray, probs) -> float:
    """T minimising the mean NLL of softmax(log P / T); the NLL is convex in 1/T, so unimodal in log T."""
    from scipy.optimize import minimize_scalar

    y, logp = np.asarray(y, dtype=np.int64), clipped_log_probs(probs)
    result = minimize_scalar(
        lambda log_t: scaled_nll(y, logp, math.exp(log_t)),
        bounds=LOG_T_BOUNDS,
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(math.exp(result.x))


def temperature_at_bound(temperature: float) -> bool:
    """Whether the fit ran to the edge of its range: then no single scale explains the confidences."""
    return min(abs(math.log(temperature) - edge) for edge in LOG_T_BOUNDS) < 1e-3


def clopper_pearson_lower(successes: int, n: int, delta: float = DELTA) -> float:
    """One-sided lower (1 - delta) confidence bound on a binomial proportion; 0 when n = 0."""
    from scipy.stats import beta

    if n == 0 or successes == 0:
        return 0.0
    return float(beta.ppf(delta, successes, n - successes + 1))


def threshold_table(y: np.ndarray, probs, delta: float = DELTA) -> list[dict]:
    """Per candidate threshold t on the top-label confidence (high to low): coverage, kept rows, their accuracy
    and its lower bound."""
    conf, correct = top_label(y, probs)
    correct = correct.astype(np.int64)
    floor = 1.0 / as_matrix(probs).shape[1]
    candidates = np.unique(conf)[::-1]
    if len(candidates) > MAX_TABLE_ROWS:  # quantiles keep the table small; 1/N keeps "keep everything" possible
        candidates = np.unique(np.r_[np.quantile(conf, np.linspace(0, 1, MAX_TABLE_ROWS)), floor])[::-1]
    table = []
    for t in candidates:
        kept = conf >= t
        n_kept, right = int(kept.sum()), int(correct[kept].sum())
        table.append(
            {
                "threshold": float(t),
                "coverage": n_kept / len(y),
                "n_kept": n_kept,
                "accuracy": right / n_kept if n_kept else None,
                "accuracy_lower_bound": clopper_pearson_lower(right, n_kept, delta),
            }
        )
    return table


def fit_calibration(labels: Sequence[int], probs, source: dict, lengths: Sequence[int] | None = None) -> dict:
    """The `calibration` block: temperature, fit metrics before/after, the threshold table (calibrated) and the
    label-free summary of the rows that new data is checked against (shift.py).

    `probs`: [n, N] class probabilities, or binary P(class 1) per row; `lengths`: each row's tokens, or None."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if len(y) < 20 or len(np.unique(y)) < 2:
        raise ConfigError(
            f"calibration needs at least 20 labelled rows of two classes or more, got {len(y)} ({source})"
        )
    temperature = fit_temperature(y, p)
    if temperature_at_bound(temperature):
        log.warning(
            "the fitted temperature %.4g is at the edge of [0.01, 100]: on these %d rows the model's confidence says "
            "almost nothing about whether it is right (T -> 100 flattens every probability towards 1/N)",
            temperature,
            len(y),
        )
    calibrated = apply_temperature(p, temperature)
    digest = hashlib.sha256(np.r_[y, p.ravel()].astype(np.float64).tobytes()).hexdigest()[:16]
    return {
        "temperature": temperature,
        "method": "temperature scaling of the N-way softmax: scipy.optimize.minimize_scalar (bounded) over log T "
        "in [0.01, 100]",
        "fitted_on": {**source, "rows": int(len(y)), "hash": digest},
        "before": {"nll": nll(y, p), "brier": brier(y, p), "ece": ece(y, p)},
        "after": {"nll": nll(y, calibrated), "brier": brier(y, calibrated), "ece": ece(y, calibrated)},
        "delta": DELTA,
        "bound": "one-sided Clopper-Pearson lower bound on the accuracy of the kept rows",
        "thresholds": threshold_table(y, calibrated),
        "reference": reference_summary(as_matrix(calibrated).max(axis=1), lengths, as_matrix(p).shape[1], source),
    }


DEFAULT_NAME = "default"
"""The calibration `train` or a plain `calibrate` stores (meta `calibration`); `calibrate --as NAME` adds others."""


def named(meta: dict, name: str | None) -> dict | None:
    """The calibration block `name` selects (None or `default`: the folder's own); ConfigError naming the known
    ones for a name the folder does not hold."""
    if name in (None, DEFAULT_NAME):
        return meta.get("calibration")
    others = meta.get("calibrations") or {}
    if name not in others:
        known = ", ".join([DEFAULT_NAME, *sorted(others)])
        raise ConfigError(f"calibration {name!r} is not in the model folder (it holds: {known})")
    return others[name]


def check_request(target_accuracy=None, min_confidence=None) -> dict:
    """The selective part of a request, checked: {} (plain), {"target_accuracy": t} or {"min_confidence": c}.

    Cheap and model-free, so every path calls it before loading a model or starting Ray."""
    if target_accuracy is not None and min_confidence is not None:
        raise ConfigError("pass target_accuracy or min_confidence, not both")
    if min_confidence is not None:
        return {"min_confidence": check_min_confidence(min_confidence)}
    if target_accuracy is not None:
        return {"target_accuracy": check_target(target_accuracy)}
    return {}


def selection(calibration: dict | None, target_accuracy=None, min_confidence=None) -> tuple | None:
    """(threshold, reason when there is none) for a selective request, or None for a plain one."""
    request = check_request(target_accuracy, min_confidence)
    if "min_confidence" in request:
        return request["min_confidence"], None
    if "target_accuracy" in request:
        return threshold_for(calibration, request["target_accuracy"])
    return None


def check_target(value, what: str = "target_accuracy") -> float:
    """A target accuracy in (0.5, 1]; ConfigError naming it otherwise (below 0.5 a coin flip beats it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{what} must be a number in (0.5, 1], got {value!r}")
    if not 0.5 < value <= 1.0:
        raise ConfigError(f"{what} must be in (0.5, 1], got {value!r}")
    return float(value)


def check_min_confidence(value) -> float:
    """A top-class probability in [0, 1] (N classes: it is at least 1/N, so 0.4 is a real bar for six classes)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"min_confidence must be a number in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"min_confidence must be in [0, 1], got {value!r}")
    return float(value)


def threshold_for(calibration: dict | None, target_accuracy: float) -> tuple[float | None, str | None]:
    """(lowest threshold whose lower bound reaches the target, None) or (None, why no threshold does)."""
    if not calibration:
        return None, "the model folder holds no calibration (run `sentiment-ray calibrate`)"
    row, reason = lowest_reaching(calibration["thresholds"], target_accuracy, calibration["delta"])
    return (None, reason) if row is None else (row["threshold"], None)


def lowest_reaching(table: list[dict], target_accuracy: float, delta: float = DELTA) -> tuple[dict | None, str | None]:
    """The project's one abstention rule: the `threshold_table` row of the lowest threshold whose accuracy lower
    bound reaches the target (the most rows kept), or (None, why none does)."""
    reached = [r for r in table if r["accuracy_lower_bound"] >= target_accuracy]
    if reached:
        return min(reached, key=lambda r: r["threshold"]), None
    if not table:
        return None, "no rows to choose a threshold on"
    best = max(table, key=lambda r: r["accuracy_lower_bound"])
    return None, (
        f"no threshold reaches target_accuracy {target_accuracy} on the calibration rows with "
        f"{1 - delta:.0%} confidence (best lower bound {best['accuracy_lower_bound']:.4f} "
        f"at threshold {best['threshold']:.4f}, coverage {best['coverage']:.3f})"
    )


def abstain(row: dict, threshold: float | None, reason: str | None) -> dict:
    """`row` with `abstained`, `threshold`, `reason`: kept when its confidence reaches the threshold."""
    if row["error"] is not None:
        return {**row, "abstained": None, "threshold": threshold, "reason": reason}
    abstained = threshold is None or row["confidence"] < threshold
    return {**row, "abstained": abstained, "threshold": threshold, "reason": reason}
