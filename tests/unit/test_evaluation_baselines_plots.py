"""TF-IDF baseline on a synthetic separable set; plots and the report written from real evaluation dicts."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from sentiment_ray.evaluation.baselines import baseline_comparison, tfidf_baseline
from sentiment_ray.evaluation.confidence import confidence_analysis
from sentiment_ray.evaluation.plots import PLOT_FILES, plot_confusion_matrix, write_plots
from sentiment_ray.evaluation.report import JSON_FILES, TINY_WARNING, write_evaluation, write_report
from sentiment_ray.evaluation.robustness import robustness_result
from sentiment_ray.evaluation.selective import selective_result
from sentiment_ray.metrics import binary_metrics

POSITIVE = ["很好", "喜欢", "满意", "推荐", "不错", "划算"]
NEGATIVE = ["很差", "失望", "后悔", "退货", "垃圾", "太慢"]
FILLER = list("这个东西酒店房间快递价格质量服务我们觉得还是")


def synthetic_reviews(n: int, seed: int) -> tuple[list[str], list[int]]:
    """Filler characters plus one or two polarity words: separable by character n-grams."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = rng.sample(POSITIVE if label else NEGATIVE, k=rng.randint(1, 2))
        chars = [rng.choice(FILLER) for _ in range(rng.randint(4, 10))]
        for word in words:
            chars.insert(rng.randrange(len(chars) + 1), word)
        texts.append("".join(chars))
        labels.append(label)
    return texts, labels


@pytest.fixture(scope="module")
def evaluation():
    """Real evaluation dicts for a rule-based 'model' and the TF-IDF baseline on the same test rows."""
    train_texts, train_labels = synthetic_reviews(200, seed=0)
    test_texts, test_labels = synthetic_reviews(100, seed=1)
    baseline = tfidf_baseline(train_texts, train_labels, test_texts, test_labels)

    def rule(texts):
        probs = [0.8 if any(w in t for w in POSITIVE) else 0.3 for t in texts]
        return [{"label_id": int(p >= 0.5), "prob_positive": p, "error": None} for p in probs]

    probs = [r["prob_positive"] for r in rule(test_texts)]
    metrics = binary_metrics(test_labels, probs)
    return {
        "baseline": baseline,
        "metrics": metrics,
        "confidence": confidence_analysis(test_labels, probs, test_texts, list(range(100))),
        "robustness": robustness_result(rule, test_texts, test_labels, seed=0),
        "baselines": baseline_comparison(metrics, {"tfidf": baseline}, model_name="keyword rule"),
        "selective": selective_result(test_labels, probs, None),  # an uncalibrated folder: curve and AURC only
    }


def test_tfidf_baseline_separates_synthetic_reviews(evaluation):
    baseline = evaluation["baseline"]
    assert baseline["metrics"]["accuracy"] > 0.8
    assert baseline["metrics"]["n"] == 100 and len(baseline["prob_positive"]) == 100
    assert baseline["fit_seconds"] >= 0 and baseline["n_features"] > 0
    assert "TF-IDF" in baseline["description"]
    json.dumps(baseline)


def test_baseline_comparison_rows_and_deltas(evaluation):
    comparison = evaluation["baselines"]
    model_row, tfidf_row = comparison["rows"]
    assert model_row["name"] == "keyword rule" and tfidf_row["name"] == "tfidf"
    expected = evaluation["metrics"]["accuracy"] - evaluation["baseline"]["metrics"]["accuracy"]
    assert tfidf_row["accuracy_model_minus_baseline"] == pytest.approx(expected)
    assert "prob_positive" not in tfidf_row
    json.dumps(comparison)


def is_png(path) -> bool:
    data = path.read_bytes()
    return len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_write_png_files(tmp_path, evaluation):
    written = write_plots(
        tmp_path,
        metrics=evaluation["metrics"],
        confidence=evaluation["confidence"],
        robustness=evaluation["robustness"],
        selective=evaluation["selective"],
    )
    assert set(written) == set(PLOT_FILES)
    assert all(is_png(path) for path in written.values())
    # An empty evaluation (no rows) must still plot.
    empty = confidence_analysis([], [], [], [])
    assert set(write_plots(tmp_path / "empty", confidence=empty)) == {"reliability", "confidence_histogram"}
    assert is_png(plot_confusion_matrix(np.zeros((2, 2), dtype=int), tmp_path / "zeros.png"))


def test_report_mentions_every_section_and_the_tiny_warning(tmp_path, evaluation):
    meta = {"model": "runs/x/model", "base_model": "tiny", "strategy": "label_scoring", "finetune": "full"}
    report = write_evaluation(
        tmp_path,
        metrics=evaluation["metrics"],
        confidence=evaluation["confidence"],
        robustness=evaluation["robustness"],
        baselines=evaluation["baselines"],
        meta=meta,
        selective=evaluation["selective"],
    )
    text = report.read_text(encoding="utf-8")
    for heading in ("## Metrics", "## Confidence and calibration", "## Abstention", "## Robustness"):
        assert heading in text
    assert "## Baseline comparison" in text and "tfidf" in text
    assert "tiny-model numbers, not Qwen2.5-1.5B's" in text and TINY_WARNING in text
    assert "runs/x/model" in text and "label_scoring" in text
    for name in PLOT_FILES.values():
        assert f"]({name})" in text and is_png(tmp_path / name)
    for key, name in JSON_FILES.items():
        assert json.loads((tmp_path / name).read_text()) == json.loads(json.dumps(evaluation[key])), key
        assert f"]({name})" in text
    for perturbation in ("synonym", "typo", "punctuation", "traditional", "width"):
        assert f"| {perturbation} |" in text


def test_report_without_results_and_for_a_real_model(tmp_path):
    meta = {"model": "m", "base_model": "Qwen/Qwen2.5-1.5B", "strategy": "label_scoring"}
    text = write_report(tmp_path, metrics=None, confidence=None, robustness=None, baselines=None, meta=meta).read_text()
    assert "tiny-model" not in text
    assert text.count("Not computed in this run") == 6  # + the selective-prediction section
