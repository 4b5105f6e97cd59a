"""Temperature scaling, the Clopper–Pearson bound and the target-accuracy threshold (sentiment_ray/calibration.py)."""

import numpy as np
import pytest

from sentiment_ray.calibration import (
    abstain,
    apply_temperature,
    check_target,
    clopper_pearson_lower,
    ece,
    fit_calibration,
    nll,
    threshold_for,
)
from sentiment_ray.errors import ConfigError


def synthetic(n: int, seed: int, sharpen: float = 1.0):
    """Labels drawn from calibrated probabilities, then the probabilities made overconfident by `sharpen`."""
    rng = np.random.default_rng(seed)
    true_p = 1 / (1 + np.exp(-rng.normal(0, 2.5, n)))
    y = (rng.random(n) < true_p).astype(int)
    return y, apply_temperature(true_p, 1 / sharpen)


def test_calibration_undoes_overconfidence_and_keeps_labels():
    y, p = synthetic(4000, seed=1, sharpen=3.0)
    cal = fit_calibration(y, p, {"data": "synthetic"})
    assert 2.6 < cal["temperature"] < 3.4  # recovers the sharpening
    assert cal["after"]["ece"] <= 0.5 * cal["before"]["ece"]  # real work on an overconfident model
    assert cal["after"]["nll"] < cal["before"]["nll"] and cal["after"]["brier"] < cal["before"]["brier"]
    assert ((apply_temperature(p, cal["temperature"]) >= 0.5) == (p >= 0.5)).all()
    assert cal["fitted_on"]["rows"] == 4000 and len(cal["fitted_on"]["hash"]) == 16


def test_an_already_calibrated_model_is_not_made_worse():
    y, p = synthetic(4000, seed=2)
    cal = fit_calibration(y, p, {"data": "synthetic"})
    assert 0.85 < cal["temperature"] < 1.15
    assert cal["after"]["nll"] <= cal["before"]["nll"] + 1e-9 and cal["after"]["ece"] <= cal["before"]["ece"] + 0.01


def test_confidences_that_carry_no_information_are_flattened_with_a_warning(caplog):
    rng = np.random.default_rng(3)
    y, p = rng.integers(0, 2, 2000), rng.uniform(0.05, 0.95, 2000)  # confidence independent of correctness
    with caplog.at_level("WARNING", logger="sentiment_ray.calibration"):
        cal = fit_calibration(y, p, {"data": "random"})
    assert cal["temperature"] == pytest.approx(100, rel=1e-3)  # the edge: every probability goes to ~0.5
    assert "edge of [0.01, 100]" in caplog.text
    caplog.clear()
    fit_calibration(*synthetic(2000, seed=4), {"data": "calibrated"})
    assert caplog.text == ""


def test_the_clopper_pearson_lower_bound_is_exact():
    from scipy.stats import binom

    bound = clopper_pearson_lower(95, 100)
    assert binom.sf(94, 100, bound) == pytest.approx(0.05, abs=1e-6)  # P(>= 95 right | accuracy = bound) = δ
    assert clopper_pearson_lower(0, 10) == 0.0 and clopper_pearson_lower(3, 0) == 0.0


def test_the_target_threshold_is_a_guarantee_on_fresh_exchangeable_rows():
    y, p = synthetic(3000, seed=3, sharpen=2.0)
    cal = fit_calibration(y, p, {"data": "synthetic"})
    threshold, reason = threshold_for(cal, 0.95)
    assert reason is None and threshold is not None
    row = next(r for r in cal["thresholds"] if r["threshold"] == threshold)
    assert row["accuracy_lower_bound"] >= 0.95 and row["accuracy"] >= row["accuracy_lower_bound"]
    lower = [r for r in cal["thresholds"] if r["threshold"] < threshold]
    assert all(r["accuracy_lower_bound"] < 0.95 for r in lower)  # the lowest such threshold: most coverage
    fresh_y, fresh_p = synthetic(50_000, seed=4, sharpen=2.0)
    fresh_p = apply_temperature(fresh_p, cal["temperature"])
    kept = np.maximum(fresh_p, 1 - fresh_p) >= threshold
    assert ((fresh_p[kept] >= 0.5).astype(int) == fresh_y[kept]).mean() >= 0.95


def test_an_unreachable_target_abstains_every_row_with_a_reason():
    y, p = synthetic(500, seed=5)
    cal = fit_calibration(y, p, {"data": "synthetic"})
    threshold, reason = threshold_for(cal, 1.0)
    assert threshold is None and "no threshold reaches target_accuracy 1.0" in reason
    row = {"label": "positive", "label_id": 1, "confidence": 0.99, "prob_positive": 0.99, "error": None}
    assert abstain(row, threshold, reason) == {**row, "abstained": True, "threshold": None, "reason": reason}
    assert abstain(row, 0.9, None)["abstained"] is False and abstain(row, 0.995, None)["abstained"] is True
    assert threshold_for(None, 0.9)[1].startswith("the model folder holds no calibration")


@pytest.mark.parametrize("bad", [0.5, 0.2, 1.01, -1, "0.9", float("nan"), True, None])
def test_bad_targets_are_refused_with_the_value_named(bad):
    with pytest.raises(ConfigError, match="target_accuracy must be"):
        check_target(bad)


def test_nll_and_ece_of_perfect_predictions_are_near_zero():
    y = np.array([0, 1] * 50)
    p = np.where(y == 1, 1 - 1e-9, 1e-9)
    assert nll(y, p) < 1e-6 and ece(y, p) < 1e-6


def test_evaluation_shows_risk_coverage_aurc_and_promised_against_achieved(tmp_path):
    from sentiment_ray.evaluation.report import write_report
    from sentiment_ray.evaluation.selective import risk_coverage, selective_result

    y, p = synthetic(3000, seed=6, sharpen=2.0)
    cal = fit_calibration(y, p, {"data": "synthetic"})
    test_y, test_p = synthetic(3000, seed=7, sharpen=2.0)
    other_y, other_p = synthetic(600, seed=8, sharpen=1.0)  # another domain's rows: a calibration of their own
    other = fit_calibration(other_y, other_p, {"data": "other.csv"})
    calibrated = apply_temperature(test_p, cal["temperature"]).tolist()
    result = selective_result(test_y.tolist(), calibrated, cal, {"other": other})
    coverage, risk, aurc = risk_coverage(test_y, test_p)
    assert coverage[-1] == 1.0 and risk[-1] == pytest.approx(((test_p >= 0.5) != test_y).mean())
    assert result["aurc"] == pytest.approx(aurc) and 0 < aurc < risk[-1]  # confident rows err less
    assert [t["target_accuracy"] for t in result["targets"]] == [0.90, 0.95, 0.99]
    for target in result["targets"]:
        if target["threshold"] is not None:
            assert target["accuracy"] >= target["target_accuracy"] - 0.01  # achieved on fresh rows
    assert result["before_after"]["after"]["ece"] < result["before_after"]["before"]["ece"]
    named = result["by_calibration"]["other"]  # the same rows under the named calibration's own temperature
    assert named["fitted_on"]["data"] == "other.csv" and named["temperature"] == other["temperature"]
    assert named["targets"] != result["by_calibration"]["default"]["targets"]
    report = write_report(
        tmp_path, metrics=None, confidence=None, robustness=None, baselines=None, meta={}, selective=result
    ).read_text()
    assert "AURC" in report and "promised (lower bound)" in report and "| ECE |" in report
    assert "other.csv" in report  # each calibration's rows named beside what it promised


def test_the_risk_coverage_plot_is_written(tmp_path):
    from sentiment_ray.evaluation.plots import write_plots
    from sentiment_ray.evaluation.selective import selective_result

    y, p = synthetic(2000, seed=8, sharpen=2.0)
    cal = fit_calibration(y, p, {"data": "synthetic"})
    written = write_plots(tmp_path, selective=selective_result(y.tolist(), p.tolist(), cal))
    assert written["risk_coverage"].stat().st_size > 5000  # a PNG with a curve in it


def test_n_class_calibration_scales_the_softmax_keeps_the_top_class_and_bounds_the_kept_accuracy():
    """Three classes, overconfident: right 60% of the time at confidence about 0.97."""
    from sentiment_ray.calibration import apply_temperature, ece, fit_calibration, threshold_for

    rng = np.random.default_rng(0)
    n = 600
    y = rng.integers(0, 3, n)
    predicted = np.where(rng.random(n) < 0.6, y, (y + 1) % 3)
    logits = rng.normal(0, 0.3, (n, 3))
    logits[np.arange(n), predicted] += 4.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

    block = fit_calibration(y, probs, {"data": "synthetic"})

    assert block["temperature"] > 1.5 and block["after"]["ece"] < block["before"]["ece"]
    calibrated = apply_temperature(probs, block["temperature"])
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)
    assert (calibrated.argmax(axis=1) == probs.argmax(axis=1)).all()  # confidences change, labels never
    assert ece(y, calibrated) == pytest.approx(block["after"]["ece"])
    threshold, reason = threshold_for(block, 0.55)
    kept = calibrated.max(axis=1) >= threshold
    assert reason is None and kept.any() and (calibrated.argmax(axis=1)[kept] == y[kept]).mean() >= 0.55
    assert threshold_for(block, 0.99)[0] is None  # 60% right at best: no threshold reaches 0.99


def test_n_class_metrics_have_every_average_per_class_scores_the_matrix_and_one_vs_rest_auc():
    from sentiment_ray.metrics import binary_metrics, class_metrics

    y = [0, 1, 2, 2, 1, 0]
    probs = [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3], [0.1, 0.8, 0.1], [0.5, 0.2, 0.3]]
    m = class_metrics(y, probs, ("a", "b", "c"))
    assert m["accuracy"] == pytest.approx(5 / 6) and m["confusion_matrix"] == [[2, 0, 0], [0, 2, 0], [0, 1, 1]]
    assert {"macro_f1", "micro_f1", "weighted_f1", "roc_auc"} <= set(m) and "f1" not in m
    assert m["per_class"]["c"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert m["micro_f1"] == pytest.approx(m["accuracy"]) and 0.5 < m["roc_auc"] <= 1.0
    binary = binary_metrics([0, 1, 1, 0], [0.2, 0.9, 0.4, 0.6])
    assert {"precision", "recall", "f1", "roc_auc", "macro_f1"} <= set(binary) and binary["f1"] == pytest.approx(0.5)


def test_min_confidence_is_any_probability_since_n_classes_go_down_to_one_nth():
    from sentiment_ray.calibration import check_request

    assert check_request(min_confidence=0.4) == {"min_confidence": 0.4}  # six classes: above the 1/6 floor
    for bad in (1.5, -0.1, True, float("nan"), "0.9"):
        with pytest.raises(ConfigError, match="min_confidence must be"):
            check_request(min_confidence=bad)
