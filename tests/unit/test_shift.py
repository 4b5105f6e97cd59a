"""Label-free shift checks against a calibration's summary (sentiment_ray/shift.py) and named calibrations.

Every test draws real rows from seeded numpy generators: a binary model whose P(class 1) follows a Beta law (labels
drawn from it, so the model is calibrated and the fitted temperature stays near 1) and input lengths from a rounded
lognormal. New rows are passed through the fitted temperature exactly as scoring does, so "same distribution" rows
land in the reference's bins the way the calibration rows did.
"""

import numpy as np
import pytest

from sentiment_ray.calibration import apply_temperature, as_matrix, fit_calibration, named
from sentiment_ray.errors import ConfigError
from sentiment_ray.shift import (
    ALPHA,
    MIN_COVERAGE_GAP,
    MIN_EXPECTED,
    MIN_ROWS,
    NOT_CHECKED,
    ShiftTally,
    _merged,
    binomial_interval,
    check_shift,
    describe_source,
    reference_summary,
    warning_line,
)

SOURCE = {"data": "reviews.csv", "part": "validation split"}
CALIBRATION_ROWS = 1200
NEW_ROWS = 1000


def draw(rng: np.random.Generator, n: int):
    """n rows: P(class 1), a label drawn from it, and a length in tokens (at least 1)."""
    p = rng.beta(0.7, 0.7, n)
    labels = (rng.random(n) < p).astype(int)
    lengths = np.maximum(1, np.rint(rng.lognormal(4.0, 0.6, n))).astype(int)
    return p, labels, lengths


def confidences(calibration: dict, p) -> np.ndarray:
    """Calibrated top-label confidences, as the predictor computes them before tallying."""
    return as_matrix(apply_temperature(p, calibration["temperature"])).max(axis=1)


def calibration_rows():
    return draw(np.random.default_rng(0), CALIBRATION_ROWS)


@pytest.fixture(scope="module")
def calibration():
    p, labels, lengths = calibration_rows()
    return fit_calibration(labels, p, SOURCE, lengths)


@pytest.fixture(scope="module")
def half_coverage_row(calibration):
    """The threshold table row whose coverage is closest to one half: room for the share kept to move both ways."""
    return min(calibration["thresholds"], key=lambda row: abs(row["coverage"] - 0.5))


def verdict_for(calibration, p, lengths, threshold=None):
    tally = ShiftTally.of(calibration["reference"], confidences(calibration, p), lengths, threshold)
    return check_shift(calibration, tally, "default")


def test_reference_counts_every_calibration_row_in_both_histograms(calibration):
    reference = calibration["reference"]
    assert reference["rows"] == CALIBRATION_ROWS and reference["source"] == SOURCE
    assert sum(reference["confidence"]["counts"]) == CALIBRATION_ROWS
    assert len(reference["confidence"]["counts"]) == len(reference["confidence"]["edges"]) - 1
    lengths = reference["length_tokens"]
    assert sum(lengths["counts"]) == CALIBRATION_ROWS
    assert len(lengths["counts"]) == len(lengths["inner_edges"]) + 1
    # decile edges: no length bin holds much more than its tenth of the rows (ties can stack a few on one edge)
    assert max(lengths["counts"]) < 0.2 * CALIBRATION_ROWS


def test_tallying_the_calibration_rows_reproduces_the_reference_counts(calibration, half_coverage_row):
    # new rows must be binned and kept exactly as the calibration rows were (ties on the integer length edges and
    # a confidence equal to the threshold included), or identical data would look shifted
    p, _, lengths = calibration_rows()
    threshold = half_coverage_row["threshold"]
    tally = ShiftTally.of(calibration["reference"], confidences(calibration, p), lengths, threshold)
    assert tally.rows == CALIBRATION_ROWS and tally.kept == half_coverage_row["n_kept"]
    assert tally.confidence_counts == calibration["reference"]["confidence"]["counts"]
    assert tally.length_counts == calibration["reference"]["length_tokens"]["counts"]
    verdict = check_shift(calibration, tally)
    assert set(verdict["tests"]) == {"confidence", "length_tokens", "coverage"}
    assert not verdict["shifted"] and all(test["effect"] == 0 for test in verdict["tests"].values())


def test_kept_rows_of_the_calibration_rows_match_every_threshold_table_row(calibration):
    # the table's top threshold is the highest confidence itself: a row equal to the threshold is kept
    p, _, lengths = calibration_rows()
    conf = confidences(calibration, p)
    for row in calibration["thresholds"]:
        assert ShiftTally.of(calibration["reference"], conf, lengths, row["threshold"]).kept == row["n_kept"]


def test_calibration_without_lengths_runs_no_length_test():
    p, labels, lengths = draw(np.random.default_rng(1), CALIBRATION_ROWS)
    calibration = fit_calibration(labels, p, SOURCE)
    assert "length_tokens" not in calibration["reference"]
    assert sum(calibration["reference"]["confidence"]["counts"]) == CALIBRATION_ROWS
    # lengths tripled would be flagged if a length test ran (see the length-shift test); here none may
    new_p, _, new_lengths = draw(np.random.default_rng(2), NEW_ROWS)
    verdict = verdict_for(calibration, new_p, 3 * new_lengths)
    assert verdict["checked"] and set(verdict["tests"]) == {"confidence"}
    assert not verdict["shifted"]


def test_rows_like_the_calibration_rows_rarely_raise_a_false_alarm(calibration, half_coverage_row):
    # 200 independent same-distribution samples with all three tests on; Bonferroni keeps false alarms near
    # ALPHA = 0.01, so 0.05 is a loose bound that only a broken test (misbinned rows, wrong level) exceeds
    rng = np.random.default_rng(3)
    verdicts = []
    for _ in range(200):
        p, _, lengths = draw(rng, NEW_ROWS)
        verdicts.append(verdict_for(calibration, p, lengths, half_coverage_row["threshold"]))
    assert all(v["checked"] and set(v["tests"]) == {"confidence", "length_tokens", "coverage"} for v in verdicts)
    assert np.mean([v["shifted"] for v in verdicts]) <= 0.05
    assert all(v["alpha"] == ALPHA for v in verdicts)


def test_confidences_pushed_towards_one_half_are_flagged_as_a_confidence_shift(calibration):
    p, _, lengths = draw(np.random.default_rng(4), NEW_ROWS)
    verdict = verdict_for(calibration, 0.5 + 0.3 * (p - 0.5), lengths)
    assert verdict["checked"] and verdict["shifted"]
    assert verdict["shifted_tests"] == ["confidence"]
    assert verdict["tests"]["confidence"]["p_value"] < ALPHA and verdict["advice"]


def test_tripled_lengths_are_flagged_as_a_length_shift(calibration):
    p, _, lengths = draw(np.random.default_rng(5), NEW_ROWS)
    verdict = verdict_for(calibration, p, 3 * lengths)
    assert verdict["shifted"] and verdict["shifted_tests"] == ["length_tokens"]
    assert verdict["tests"]["length_tokens"]["effect"] > 0.5  # most rows move to the top length bins


def test_significant_but_small_differences_are_not_a_shift():
    # with 100,000 rows on each side every test finds a slight change significant; the effect sizes
    # (distance < MIN_DISTANCE, coverage gap < MIN_COVERAGE_GAP) are too small to move the kept rows' accuracy
    n = 100_000
    p, _, lengths = draw(np.random.default_rng(20), n)
    conf = np.maximum(p, 1 - p)
    threshold = float(np.median(conf))
    n_kept = int((conf >= threshold).sum())
    large = {
        "reference": reference_summary(conf, lengths, 2, SOURCE),
        "thresholds": [{"threshold": threshold, "n_kept": n_kept, "coverage": n_kept / n}],
    }
    new_p, _, new_lengths = draw(np.random.default_rng(21), n)
    new_conf = np.maximum(new_p, 1 - new_p)
    new_conf = 0.5 + 0.98 * (new_conf - 0.5)
    verdict = check_shift(large, ShiftTally.of(large["reference"], new_conf, np.rint(1.03 * new_lengths), threshold))
    assert set(verdict["tests"]) == {"confidence", "length_tokens", "coverage"}
    for test in verdict["tests"].values():
        assert test["p_value"] < ALPHA / 3 and test["effect"] < test["min_effect"]
    assert verdict["shifted"] is False and verdict["shifted_tests"] == []


def test_the_level_is_split_between_the_tests_run(calibration):
    # seed 430 gives 100 same-distribution rows whose confidence test lands between ALPHA / 2 and ALPHA: with the
    # length test also run (level ALPHA / 2) that is no shift; as the only test (level ALPHA) it is one
    p, _, lengths = draw(np.random.default_rng(430), 100)
    both = verdict_for(calibration, p, lengths)
    assert set(both["tests"]) == {"confidence", "length_tokens"}
    assert ALPHA / 2 < both["tests"]["confidence"]["p_value"] < ALPHA
    assert both["tests"]["confidence"]["effect"] >= both["tests"]["confidence"]["min_effect"]
    assert both["shifted"] is False
    reference = {k: v for k, v in calibration["reference"].items() if k != "length_tokens"}
    alone = verdict_for({**calibration, "reference": reference}, p, lengths)
    assert set(alone["tests"]) == {"confidence"} and alone["shifted_tests"] == ["confidence"]


def test_warning_line_names_the_test_the_source_and_the_row_counts(calibration):
    p, _, lengths = draw(np.random.default_rng(5), NEW_ROWS)
    line = warning_line(verdict_for(calibration, p, 3 * lengths))
    assert "length_tokens chi2=" in line
    assert describe_source(SOURCE) in line and "reviews.csv (validation split)" in line
    assert f"{NEW_ROWS:,} rows" in line and f"{CALIBRATION_ROWS:,} calibration rows" in line


def test_unshifted_verdicts_give_no_warning_line(calibration):
    p, _, lengths = draw(np.random.default_rng(6), NEW_ROWS)
    verdict = verdict_for(calibration, p, lengths)
    assert verdict["checked"] and verdict["shifted"] is False and verdict["advice"] is None
    assert warning_line(verdict) is None
    assert warning_line(check_shift(calibration, None)) is None  # not checked: nothing to warn about


def test_a_changed_share_kept_at_the_threshold_is_flagged_as_a_coverage_shift(calibration, half_coverage_row):
    p, _, lengths = draw(np.random.default_rng(7), NEW_ROWS)
    threshold = half_coverage_row["threshold"]
    conf = confidences(calibration, 0.5 + 0.7 * (p - 0.5))  # milder than the confidence test: kept share stays > 0
    kept = int((conf >= threshold).sum())
    tally = ShiftTally.of(calibration["reference"], conf, lengths, threshold)
    coverage = check_shift(calibration, tally)["tests"]["coverage"]
    assert coverage["shifted"] and coverage["effect"] > 3 * MIN_COVERAGE_GAP
    assert coverage["expected"] == half_coverage_row["coverage"]
    assert coverage["observed"] == kept / NEW_ROWS and 0 < kept < NEW_ROWS
    low, high = coverage["interval"]
    assert low < coverage["observed"] < high
    assert coverage["threshold"] == threshold


def test_coverage_warning_line_gives_observed_and_expected_share(calibration, half_coverage_row):
    p, _, lengths = draw(np.random.default_rng(7), NEW_ROWS)
    verdict = verdict_for(calibration, 0.5 + 0.7 * (p - 0.5), lengths, half_coverage_row["threshold"])
    coverage = verdict["tests"]["coverage"]
    line = warning_line(verdict)
    assert "coverage" in verdict["shifted_tests"]
    assert f"coverage {coverage['observed']:.3f} where the calibration rows give {coverage['expected']:.3f}" in line


def test_a_threshold_missing_from_the_table_runs_no_coverage_test(calibration):
    # a min_confidence selection: the calibration rows' coverage at an arbitrary value is not stored
    p, _, lengths = draw(np.random.default_rng(8), NEW_ROWS)
    stored = {row["threshold"] for row in calibration["thresholds"]}
    threshold = 0.7123456789
    assert threshold not in stored
    assert "coverage" not in verdict_for(calibration, p, lengths, threshold)["tests"]


def test_clopper_pearson_interval_covers_the_share_at_the_stated_level():
    rng = np.random.default_rng(9)
    # 2,000 binomial draws of 200 rows at a true share of 0.3: a 99% interval misses it in about 1% of them
    successes = rng.binomial(200, 0.3, 2000)
    misses = sum(not (lo <= 0.3 <= hi) for lo, hi in (binomial_interval(int(k), 200) for k in successes))
    assert misses / 2000 <= 0.02
    assert binomial_interval(0, 50)[0] == 0.0 and binomial_interval(50, 50)[1] == 1.0


def test_merging_tallies_of_two_halves_equals_the_tally_of_the_whole(calibration, half_coverage_row):
    p, _, lengths = draw(np.random.default_rng(10), NEW_ROWS)
    conf = [float(c) for c in confidences(calibration, p)]
    for i in np.random.default_rng(11).choice(NEW_ROWS, 40, replace=False):
        conf[i] = None  # error rows: no prediction
    reference, threshold = calibration["reference"], half_coverage_row["threshold"]
    whole = ShiftTally.of(reference, conf, lengths, threshold)
    halves = ShiftTally.of(reference, conf[:400], lengths[:400], threshold).merge(
        ShiftTally.of(reference, conf[400:], lengths[400:], threshold)
    )
    assert whole.rows == NEW_ROWS - 40 == halves.rows
    assert sum(whole.confidence_counts) == whole.rows and sum(whole.length_counts) == whole.rows
    assert halves.confidence_counts == whole.confidence_counts
    assert halves.length_counts == whole.length_counts
    assert halves.kept == whole.kept == sum(c is not None and c >= threshold for c in conf)
    assert halves.threshold == threshold


def test_merging_with_an_empty_tally_keeps_the_other(calibration):
    p, _, lengths = draw(np.random.default_rng(12), 100)
    tally = ShiftTally.of(calibration["reference"], confidences(calibration, p), lengths)
    # a window starts from ShiftTally() and merges each batch into it
    assert ShiftTally().merge(tally) == tally and tally.merge(ShiftTally()) == tally and tally.merge(None) == tally


def test_fewer_than_min_rows_are_not_checked_and_the_reason_gives_the_count(calibration):
    p, _, lengths = draw(np.random.default_rng(13), MIN_ROWS - 1)
    verdict = verdict_for(calibration, 0.5 + 0.1 * (p - 0.5), lengths)  # shifted, but too few rows to tell
    assert verdict["checked"] is False and verdict["shifted"] is None
    assert verdict["rows"] == MIN_ROWS - 1 and f"{MIN_ROWS - 1} rows" in verdict["reason"]
    assert str(MIN_ROWS) in verdict["reason"]
    assert check_shift(calibration, None)["reason"].startswith("0 rows")


def test_min_rows_rows_are_checked(calibration):
    p, _, lengths = draw(np.random.default_rng(14), MIN_ROWS)
    verdict = verdict_for(calibration, p, lengths)
    assert verdict["checked"] is True and verdict["rows"] == MIN_ROWS


def test_a_calibration_without_a_reference_is_not_checked(calibration):
    # a folder calibrated before shift checks existed: its calibration block has no summary
    older = {k: v for k, v in calibration.items() if k != "reference"}
    p, _, lengths = draw(np.random.default_rng(15), NEW_ROWS)
    tally = ShiftTally.of(calibration["reference"], confidences(calibration, p), lengths)
    verdict = check_shift(older, tally)
    assert verdict == {"checked": False, "shifted": None, "reason": NOT_CHECKED}
    assert NOT_CHECKED == "no calibration summary: shift not checked"
    assert check_shift(None, tally)["reason"] == NOT_CHECKED


def test_merged_bins_each_expect_enough_rows_and_keep_the_totals():
    rng = np.random.default_rng(16)
    # a peaked histogram with near-empty tails and a small new sample: many bins must be merged
    weights = np.exp(-0.5 * ((np.arange(20) - 14) / 2.5) ** 2)
    weights /= weights.sum()
    ref, new = rng.multinomial(1200, weights), rng.multinomial(80, weights)
    merged_ref, merged_new = _merged(ref, new)
    assert merged_ref.sum() == ref.sum() and merged_new.sum() == new.sum()
    assert 2 <= len(merged_ref) < 20
    smaller_share = min(ref.sum(), new.sum()) / (ref.sum() + new.sum())
    assert ((merged_ref + merged_new) * smaller_share >= MIN_EXPECTED).all()


def test_merged_bins_from_large_samples_stay_as_they_are():
    rng = np.random.default_rng(17)
    ref, new = rng.multinomial(5000, np.full(10, 0.1)), rng.multinomial(5000, np.full(10, 0.1))
    merged_ref, merged_new = _merged(ref, new)
    assert merged_ref.tolist() == ref.tolist() and merged_new.tolist() == new.tolist()


def test_describe_source_reads_data_and_part():
    assert describe_source({"data": "offline", "part": "validation split"}) == "offline (validation split)"
    assert describe_source({"data": "reviews.csv"}) == "reviews.csv"
    assert describe_source({}) == "unnamed data"


META = {
    "calibration": {"temperature": 1.0},
    "calibrations": {"support": {"temperature": 1.5}, "news": {"temperature": 0.8}},
}


def test_named_gives_the_default_block_for_none_and_default():
    assert named(META, None) is META["calibration"]
    assert named(META, "default") is META["calibration"]


def test_named_gives_a_stored_calibration_by_name():
    assert named(META, "support") is META["calibrations"]["support"]


def test_named_rejects_an_unknown_name_listing_the_known_ones():
    with pytest.raises(ConfigError, match=r"'sports'.*default, news, support"):
        named(META, "sports")
    with pytest.raises(ConfigError, match=r"it holds: default\)"):
        named({"calibration": {"temperature": 1.0}}, "support")
