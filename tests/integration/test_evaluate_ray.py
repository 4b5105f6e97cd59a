"""The evaluation suite end to end on Ray Data, for both strategies through the same code."""

import json

import pytest

from sentiment_ray.data import load_splits
from sentiment_ray.evaluation.suite import EvaluateOptions, run_evaluation, run_zero_shot

PERTURBATIONS = {"synonym", "typo", "punctuation", "traditional", "width"}
PLOTS = ["confusion_matrix.png", "reliability.png", "confidence_histogram.png", "robustness.png"]


@pytest.fixture(scope="module")
def eval_csv(tmp_path_factory):
    rows = load_splits("offline", seed=42).test.head(40)
    path = tmp_path_factory.mktemp("eval") / "eval.tsv"
    rows.rename(columns={"text": "text_a"})[["id", "text_a", "label"]].to_csv(path, sep="\t", index=False)
    return path


def check_suite(out, n):
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == n and 0 <= metrics["accuracy"] <= 1 and metrics["rows_with_prediction_error"] == 0
    assert set(metrics["per_class"]) == {"negative", "positive"} and "macro_f1" in metrics and "roc_auc" in metrics
    assert sum(map(sum, metrics["confusion_matrix"])) == n
    confidence = json.loads((out / "confidence_analysis.json").read_text())
    assert 0.5 <= confidence["mean_confidence"] <= 1 and 0 <= confidence["share_above_0_9"] <= 1
    assert sum(confidence["histogram"]["counts"]) == n and confidence["lowest_confidence"]
    calibration = confidence["calibration"]
    assert 0 <= calibration["ece"] <= 1 and calibration["temperature"] > 0 and calibration["reliability_curve"]
    assert "coverage" in confidence["abstention"] and "threshold" in confidence["abstention"]
    robustness = json.loads((out / "robustness_result.json").read_text())
    assert set(robustness["perturbations"]) == PERTURBATIONS and 0 <= robustness["robustness_score"] <= 1
    for result in robustness["perturbations"].values():
        assert 0 <= result["flip_rate"] <= 1 and result["n_evaluated"] == n
    for plot in PLOTS:
        assert (out / plot).stat().st_size > 1000, plot
    return json.loads((out / "baseline_comparison.json").read_text()), (out / "report.md").read_text()


@pytest.mark.parametrize("strategy", ["label_scoring", "classifier"])
def test_evaluation_suite(ray_cluster, tmp_path, eval_csv, model_folder, classifier_folder, strategy):
    folder = model_folder if strategy == "label_scoring" else classifier_folder
    opts = EvaluateOptions(
        model_path=str(folder),
        data=str(eval_csv),
        output_dir=str(tmp_path / "eval"),
        text_column="text_a",
        id_column="id",
        train_data="offline",
        batch_size=16,
    )
    report = run_evaluation(opts)
    comparison, text = check_suite(tmp_path / "eval", 40)
    names = [row["name"] for row in comparison["rows"]]
    assert names[0].startswith(strategy) and "zero-shot" in names and "tfidf-char-ngram" in names
    assert comparison["n_test"] == 40
    # One Ray Data job for the model (clean + 5 perturbations, 6 x 40 texts), one for the zero-shot baseline
    scoring = json.loads((tmp_path / "eval" / "metrics.json").read_text())["scoring"]
    assert scoring["jobs"] == 2 and scoring["texts_scored"] == 6 * 40 + 40 and scoring["seconds"] > 0
    assert report.name == "report.md" and "tiny-model numbers" in text


def test_zero_shot_evaluates_the_base_model(ray_cluster, tmp_path, eval_csv):
    opts = EvaluateOptions(
        model_path="",
        data=str(eval_csv),
        output_dir=str(tmp_path / "zs"),
        text_column="text_a",
        train_data="offline",
        batch_size=16,
    )
    run_zero_shot("tiny", opts, max_length=64)
    meta = json.loads((tmp_path / "zs" / "model" / "sentiment_meta.json").read_text())
    assert meta["finetune"] == "zero_shot" and meta["strategy"] == "label_scoring"
    comparison, _ = check_suite(tmp_path / "zs", 40)
    assert [row["name"] for row in comparison["rows"]][1:] == ["tfidf-char-ngram"]
