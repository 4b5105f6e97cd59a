"""Is new data like the rows a calibration was fitted on? Label-free checks of the abstention promise's premise.

A calibration's threshold keeps accuracy >= the target on rows exchangeable with its calibration rows
(calibration.py). Nothing promises that for other data, and confidence-based selection degrades under shift. So
`fit_calibration` stores a compact, label-free summary of its rows (`reference_summary`): the histogram of
calibrated top-label confidences, the histogram of input lengths in tokens (bins at the deciles of the calibration
rows' lengths), the row count and source; the threshold table beside it holds the coverage at each threshold.

New rows are counted into the same bins (`ShiftTally`, mergeable over batches, actors and windows) and compared
(`check_shift`) with up to three two-sample tests:

- confidence: chi-square test of homogeneity of the two confidence histograms;
- length_tokens: the same for the length histograms;
- coverage (a `target_accuracy` selection): Fisher's exact test of the share kept at the threshold, new rows vs
  calibration rows, with the new rows' 99% Clopper-Pearson interval.

Adjacent bins are merged until each merged bin expects >= 5 rows of the smaller sample (the chi-square's validity).
The data counts as shifted when a test's p-value is below ALPHA / (tests run) (Bonferroni: at most ALPHA false
alarms per check for data like the calibration rows) **and** the difference is large enough to matter (total
variation distance >= MIN_DISTANCE between histograms, coverage gap >= MIN_COVERAGE_GAP): with 100,000 new rows a
test finds differences far too small to move the kept rows' accuracy. What no label-free test can see: a change in
how labels follow from texts that leaves confidences and lengths alone. docs/guide/abstention.md says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ALPHA = 0.01
"""False-alarm level of one check (all its tests together) on data like the calibration rows."""
CONFIDENCE_BINS = 20
"""Equal-width bins of the top-label confidence over [1/N, 1]."""
LENGTH_QUANTILES = np.linspace(0.1, 0.9, 9)
"""Length bin edges: the calibration rows' length deciles."""
MIN_ROWS = 30
"""Fewer new rows than this are not checked: no test would have power, and the verdict says so."""
MIN_DISTANCE = 0.05
"""Total variation distance two histograms must differ by (on top of significance) to count as a shift."""
MIN_COVERAGE_GAP = 0.03
"""Coverage gap (share of rows kept) that must be reached (on top of significance) to count as a shift."""
MIN_EXPECTED = 5
NOT_CHECKED = "no calibration summary: shift not checked"
ADVICE = (
    "the accuracy promise holds for data like the calibration rows, and this data differs: label a few hundred of "
    "its rows and run `sentiment-ray calibrate --model-path MODEL --data SAMPLE.csv --as NAME`, then score with "
    "`--calibration NAME` (docs/guide/abstention.md)"
)


def reference_summary(confidences, lengths, n_classes: int, source: dict) -> dict:
    """The label-free summary of calibration rows: calibrated top-label confidences, lengths in tokens (None: not
    known, the length test is then skipped), their count and where they came from."""
    conf, edges = np.asarray(confidences, dtype=np.float64), confidence_edges(n_classes)
    summary = {
        "rows": int(len(conf)),
        "source": source,
        "confidence": {"edges": edges.tolist(), "counts": _counts(conf, edges)},
    }
    if lengths is not None and len(lengths):
        tokens = np.asarray(lengths, dtype=np.float64)
        inner = np.unique(np.ceil(np.quantile(tokens, LENGTH_QUANTILES))).tolist()
        summary["length_tokens"] = {
            "inner_edges": inner,
            "counts": np.bincount(np.searchsorted(inner, tokens, side="right"), minlength=len(inner) + 1).tolist(),
            "median": float(np.median(tokens)),
        }
    return summary


def confidence_edges(n_classes: int) -> np.ndarray:
    return np.linspace(1.0 / n_classes, 1.0, CONFIDENCE_BINS + 1)


def _counts(conf: np.ndarray, edges: np.ndarray) -> list[int]:
    """Counts per bin; a value on an inner edge goes right, 1.0 into the last bin (as calibration.ece_of)."""
    index = np.searchsorted(edges[1:-1], conf, side="right")
    return np.bincount(index, minlength=len(edges) - 1).tolist()


@dataclass
class ShiftTally:
    """New rows counted into a reference's bins: rows with a prediction, per-bin counts, rows kept at `threshold`."""

    rows: int = 0
    confidence_counts: list[int] = field(default_factory=list)
    length_counts: list[int] = field(default_factory=list)
    kept: int = 0
    threshold: float | None = None

    @classmethod
    def of(cls, reference: dict, confidences, lengths, threshold: float | None = None) -> ShiftTally:
        """Rows without a prediction (errors: confidence None) are left out."""
        pairs = [(c, n) for c, n in zip(confidences, lengths, strict=True) if c is not None]
        conf = np.asarray([c for c, _ in pairs], dtype=np.float64)
        tally = cls(len(pairs), _counts(conf, np.asarray(reference["confidence"]["edges"])), threshold=threshold)
        if "length_tokens" in reference:
            inner = reference["length_tokens"]["inner_edges"]
            index = np.searchsorted(inner, np.asarray([n for _, n in pairs], dtype=np.float64), side="right")
            tally.length_counts = np.bincount(index, minlength=len(inner) + 1).tolist()
        tally.kept = int((conf >= threshold).sum()) if threshold is not None else 0
        return tally

    def merge(self, other: ShiftTally | None) -> ShiftTally:
        """The sum of two tallies over the same reference (and threshold)."""
        if other is None or other.rows == 0:
            return self
        if self.rows == 0:
            return other
        return ShiftTally(
            self.rows + other.rows,
            _add(self.confidence_counts, other.confidence_counts),
            _add(self.length_counts, other.length_counts),
            self.kept + other.kept,
            self.threshold if self.threshold is not None else other.threshold,
        )


def _add(a: list[int], b: list[int]) -> list[int]:
    return [x + y for x, y in zip(a, b, strict=True)] if a and b else a or b


def check_shift(calibration: dict | None, tally: ShiftTally | None, name: str | None = None) -> dict:
    """The verdict for the tallied rows against `calibration`'s summary (see the module docstring)."""
    reference = (calibration or {}).get("reference")
    if not reference:
        return {"checked": False, "shifted": None, "reason": NOT_CHECKED}
    about = {"calibration": name or "default", "calibration_rows": reference["rows"], "source": reference["source"]}
    if tally is None or tally.rows < MIN_ROWS:
        rows = tally.rows if tally else 0
        reason = f"{rows} rows with a prediction, fewer than the {MIN_ROWS} a check needs"
        return {"checked": False, "shifted": None, "reason": reason, "rows": rows, **about}
    tests = {"confidence": _histogram_test(reference["confidence"]["counts"], tally.confidence_counts)}
    if "length_tokens" in reference and tally.length_counts:
        tests["length_tokens"] = _histogram_test(reference["length_tokens"]["counts"], tally.length_counts)
    if tally.threshold is not None:
        tests["coverage"] = _coverage_test(calibration, tally)
    tests = {k: v for k, v in tests.items() if v is not None}
    level = ALPHA / max(1, len(tests))
    for test in tests.values():
        test["shifted"] = bool(test["p_value"] < level and test["effect"] >= test["min_effect"])
    shifted = [k for k, v in tests.items() if v["shifted"]]
    verdict = {"checked": True, "shifted": bool(shifted), "rows": tally.rows, **about, "alpha": ALPHA}
    verdict.update(tests=tests, shifted_tests=shifted, advice=ADVICE if shifted else None)
    return verdict


def _histogram_test(reference_counts: list[int], new_counts: list[int]) -> dict | None:
    """Chi-square homogeneity of two histograms over the same bins (merged for validity); None: < 2 bins left."""
    from scipy.stats import chi2_contingency

    ref, new = _merged(np.asarray(reference_counts), np.asarray(new_counts))
    if len(ref) < 2:
        return None
    statistic, p_value, _, _ = chi2_contingency(np.stack([ref, new]), correction=False)
    distance = 0.5 * float(np.abs(ref / ref.sum() - new / new.sum()).sum())
    return {
        "statistic": float(statistic),
        "p_value": float(p_value),
        "bins": len(ref),
        "effect": distance,
        "min_effect": MIN_DISTANCE,
    }


def _merged(ref: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Adjacent bins merged left to right until each expects >= MIN_EXPECTED rows of the smaller sample; empty
    bins of both drop out; a short remainder joins the last merged bin."""
    n_ref, n_new = ref.sum(), new.sum()
    if n_ref == 0 or n_new == 0:
        return np.zeros(0), np.zeros(0)
    need = MIN_EXPECTED * (n_ref + n_new) / min(n_ref, n_new)  # combined count a bin needs
    merged_ref, merged_new, r, n = [], [], 0, 0
    for a, b in zip(ref, new, strict=True):
        r, n = r + a, n + b
        if r + n >= need:
            merged_ref.append(r)
            merged_new.append(n)
            r, n = 0, 0
    if (r or n) and merged_ref:
        merged_ref[-1] += r
        merged_new[-1] += n
    return np.asarray(merged_ref, dtype=np.float64), np.asarray(merged_new, dtype=np.float64)


def _coverage_test(calibration: dict, tally: ShiftTally) -> dict | None:
    """Share kept at the threshold: the calibration rows' (from the threshold table) vs the new rows'."""
    from scipy.stats import fisher_exact

    row = next((r for r in calibration["thresholds"] if r["threshold"] == tally.threshold), None)
    if row is None:  # a min_confidence threshold: the calibration rows' coverage there is not stored
        return None
    n_ref = calibration["reference"]["rows"]
    kept_ref, kept = row["n_kept"], tally.kept
    _, p_value = fisher_exact([[kept_ref, n_ref - kept_ref], [kept, tally.rows - kept]])
    expected, observed = kept_ref / n_ref, kept / tally.rows
    return {
        "threshold": tally.threshold,
        "expected": expected,
        "observed": observed,
        "interval": binomial_interval(kept, tally.rows),
        "p_value": float(p_value),
        "effect": abs(observed - expected),
        "min_effect": MIN_COVERAGE_GAP,
    }


def binomial_interval(successes: int, n: int, level: float = 1 - ALPHA) -> list[float]:
    """Two-sided Clopper-Pearson interval of a proportion at `level`."""
    from scipy.stats import beta

    tail = (1 - level) / 2
    low = float(beta.ppf(tail, successes, n - successes + 1)) if successes else 0.0
    high = float(beta.ppf(1 - tail, successes + 1, n - successes)) if successes < n else 1.0
    return [low, high]


def warning_line(verdict: dict) -> str | None:
    """One console line for a shifted verdict, naming the tests and the calibration source; None otherwise."""
    if not verdict.get("shifted"):
        return None
    parts = []
    for name in verdict["shifted_tests"]:
        test = verdict["tests"][name]
        if name == "coverage":
            parts.append(f"coverage {test['observed']:.3f} where the calibration rows give {test['expected']:.3f}")
        else:
            parts.append(f"{name} chi2={test['statistic']:.1f} p={test['p_value']:.2g} (distance {test['effect']:.2f})")
    return (
        f"shift: these {verdict['rows']:,} rows are not like the {verdict['calibration_rows']:,} calibration rows of "
        f"{describe_source(verdict['source'])} ({'; '.join(parts)}); the accuracy promise may not hold here: "
        "recalibrate on a labelled sample (`calibrate --as NAME`)"
    )


def describe_source(source: dict) -> str:
    """`offline (validation split)` or `reviews.csv (whole file)`."""
    data, part = source.get("data"), source.get("part")
    return f"{data} ({part})" if data and part else data or part or "unnamed data"
