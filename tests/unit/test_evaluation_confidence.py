"""Confidence analysis on synthetic predictions with known calibration (no model, no mocks)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sentiment_ray.calibration import ece, lowest_reaching, threshold_table
from sentiment_ray.evaluation.confidence import apply_temperature, confidence_analysis


def calibrated_sample() -> tuple[np.ndarray, np.ndarray]:
    """Exactly calibrated: 100 rows at each P(positive) in {0.05, 0.15, ..., 0.95}, round(100 p) of them positive."""
    labels, probs = [], []
    for p in np.arange(0.05, 1.0, 0.1):
        positives = round(100 * p)
        labels += [1] * positives + [0] * (100 - positives)
        probs += [p] * 100
    return np.array(labels), np.array(probs)


def test_perfectly_calibrated_sample_has_zero_ece_and_unit_temperature():
    labels, probs = calibrated_sample()
    cal = confidence_analysis(labels, probs, None, None)["calibration"]
    assert cal["ece"] == pytest.approx(0.0, abs=1e-9)
    # Calibrated probabilities make T = 1 a stationary point of the (convex in 1/T) NLL.
    assert cal["temperature"] == pytest.approx(1.0, abs=1e-3)
    assert cal["ece_after_temperature"] == pytest.approx(0.0, abs=1e-3)
    assert cal["temperature_at_bound"] is False


def test_random_calibrated_sample_has_small_ece():
    rng = np.random.default_rng(0)
    probs = rng.uniform(0, 1, 20_000)
    labels = (rng.uniform(0, 1, probs.size) < probs).astype(int)
    assert confidence_analysis(labels, probs, None, None)["calibration"]["ece"] < 0.02


def test_overconfident_sample_has_large_ece_that_temperature_shrinks():
    labels, probs = calibrated_sample()
    overconfident = apply_temperature(probs, 0.25)  # logits x 4
    cal = confidence_analysis(labels, overconfident, None, None)["calibration"]
    assert cal["ece"] > 0.1
    assert cal["temperature"] == pytest.approx(4.0, rel=0.01)  # recovers the factor we applied
    assert cal["ece_after_temperature"] < 0.01
    assert cal["nll_after"] < cal["nll_before"]


def test_summary_histogram_and_lowest_rows():
    probs = [0.5, 0.2, 0.97, 1.0, 0.0, 0.7]
    labels = [1, 0, 1, 0, 0, 1]
    ids = np.arange(100, 106)  # numpy ids must come out JSON-serialisable
    texts = [f"t{i}" for i in range(6)]
    result = confidence_analysis(labels, probs, texts, ids, bins=5, n_lowest=2)
    conf = np.maximum(probs, 1 - np.array(probs))
    assert result["mean_confidence"] == pytest.approx(conf.mean())
    assert result["share_above_0_9"] == pytest.approx(3 / 6)
    assert result["accuracy"] == pytest.approx(5 / 6)  # only p = 1.0 with label 0 is wrong
    assert result["histogram"]["edges"] == [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert result["histogram"]["counts"] == [1, 0, 1, 1, 3]  # 0.7 goes right, 1.0 into the last bin
    lowest = result["lowest_confidence"]
    assert [r["id"] for r in lowest] == [100, 105]
    assert lowest[0] == {
        "id": 100,
        "text": "t0",
        "label": 1,
        "predicted": 1,
        "prob_positive": 0.5,
        "confidence": 0.5,
    }
    assert sum(b["count"] for b in result["calibration"]["reliability_curve"]) == 6
    json.dumps(result)


def test_abstention_threshold_is_the_clopper_pearson_rule_of_calibrate():
    # conf 0.99: 1000 right; conf 0.8: 980 right, 20 wrong; conf 0.6: 500 right, 500 wrong.
    probs = [0.99] * 1000 + [0.8] * 1000 + [0.6] * 1000
    labels = [1] * 1000 + [1] * 980 + [0] * 20 + [1] * 500 + [0] * 500
    result = confidence_analysis(labels, probs, None, None, target_precision=0.95)["abstention"]
    assert result["threshold"] == pytest.approx(0.8)
    assert result["coverage"] == pytest.approx(2 / 3) and result["n_kept"] == 2000
    assert result["precision_at_threshold"] == pytest.approx(0.99)
    assert 0.95 <= result["accuracy_lower_bound"] < 0.99
    assert "accuracy on the rows kept" in result["precision_definition"] and "Clopper-Pearson" in result["rule"]
    table = threshold_table(np.array(labels), np.array(probs))
    assert lowest_reaching(table, 0.95)[0]["threshold"] == result["threshold"]  # calibrate's rule, not a copy
    strict = confidence_analysis(labels, probs, None, None, target_precision=0.99)["abstention"]
    assert strict["threshold"] == pytest.approx(0.99) and strict["coverage"] == pytest.approx(1 / 3)
    lenient = confidence_analysis(labels, probs, None, None, target_precision=0.8)["abstention"]
    assert lenient["threshold"] == pytest.approx(0.6) and lenient["coverage"] == 1.0


def test_abstention_needs_the_lower_bound_not_the_point_estimate():
    """19 of the 20 rows above 0.8 are right (0.95), but 20 rows cannot show 0.95 with 95% confidence."""
    probs = [0.99] * 10 + [0.8] * 10 + [0.6] * 10
    labels = [1] * 10 + [1] * 9 + [0] + [1] * 5 + [0] * 5
    result = confidence_analysis(labels, probs, None, None, target_precision=0.95)["abstention"]
    assert result["threshold"] is None and result["coverage"] is None
    assert "no threshold reaches target_accuracy 0.95" in result["reason"]


def test_three_classes_top_label_confidence_bins_from_a_third_and_named_probabilities():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(600, 3)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(3, p=row) for row in probs])  # drawn from the probabilities: calibrated
    names = ["差评", "中评", "好评"]
    result = confidence_analysis(labels, probs.tolist(), None, None, names=names, n_lowest=3)
    assert result["accuracy"] == pytest.approx(np.mean(probs.argmax(axis=1) == labels))
    assert result["histogram"]["edges"][0] == pytest.approx(1 / 3) and sum(result["histogram"]["counts"]) == 600
    assert result["calibration"]["bin_range"][0] == pytest.approx(1 / 3)
    assert result["calibration"]["ece"] == pytest.approx(ece(labels, probs)) and result["calibration"]["ece"] < 0.06
    lowest = result["lowest_confidence"][0]
    assert list(lowest["probs"]) == names and lowest["confidence"] == pytest.approx(probs.max(axis=1).min())
    overconfident = apply_temperature(probs, 0.25)
    cal = confidence_analysis(labels, overconfident.tolist(), None, None, names=names)["calibration"]
    assert cal["temperature"] == pytest.approx(4.0, rel=0.1) and cal["ece_after_temperature"] < cal["ece"]
    json.dumps(result, ensure_ascii=False)


def test_empty_input_is_graceful():
    result = confidence_analysis([], [], [], [])
    assert result["n"] == 0 and result["mean_confidence"] is None
    assert result["histogram"]["counts"] == [0] * 10
    assert result["lowest_confidence"] == []
    assert result["calibration"]["ece"] is None and result["calibration"]["temperature"] is None
    assert result["abstention"]["threshold"] is None and result["abstention"]["reason"] == "no scored rows"
    json.dumps(result)


def test_single_class_labels_and_error_rows():
    # Every prediction right and one class only: the fit wants T -> 0 and says it hit the bound.
    result = confidence_analysis([1, 1, 1, None, 1], [0.9, 0.8, 0.7, 0.5, None], None, None)
    assert result["n"] == 3 and result["n_excluded"] == 2
    assert result["classes_present"] == [1]
    assert result["accuracy"] == 1.0
    assert result["calibration"]["temperature_at_bound"] is True
    assert result["abstention"]["threshold"] is None  # 3 of 3 right: a lower bound of 0.37, far below 0.95
    json.dumps(result)


def test_length_mismatch_raises():
    with pytest.raises(ValueError):
        confidence_analysis([0, 1], [0.3], None, None)
