"""The evaluation suite end to end on Ray Data, for both strategies through the same code."""

import json

import pytest
import yaml
from helpers import build_model_folder

import sentiment_ray
from sentiment_ray.cli import main
from sentiment_ray.data import load_splits

PERTURBATIONS = {"synonym", "typo", "punctuation", "traditional", "width"}
PLOTS = ["confusion_matrix.png", "reliability.png", "confidence_histogram.png", "robustness.png"]


@pytest.fixture(scope="module")
def eval_csv(tmp_path_factory):
    rows = load_splits("offline", seed=42).test.head(40)
    path = tmp_path_factory.mktemp("eval") / "eval.tsv"
    rows.rename(columns={"text": "text_a"})[["id", "text_a", "label"]].to_csv(path, sep="\t", index=False)
    return path


STARS = [{"name": n, "values": [v]} for n, v in (("差评", "1"), ("中评", "3"), ("好评", "5"))]


def write_stars(rows, path):
    """Reviews with star labels: negative → 1, positive → 5, every fifth row → 3."""
    stars = ["3" if i % 5 == 0 else ("1", "5")[int(label)] for i, label in enumerate(rows["label"])]
    rows.assign(label=stars).rename(columns={"text": "text_a"})[["id", "text_a", "label"]].to_csv(
        path, sep="\t", index=False
    )
    return path


@pytest.fixture(scope="module")
def stars_files(tmp_path_factory):
    """(the same 40 test reviews as eval_csv, 200 training reviews), labelled with three star classes."""
    splits, folder = load_splits("offline", seed=42), tmp_path_factory.mktemp("stars")
    return write_stars(splits.test.head(40), folder / "eval.tsv"), write_stars(
        splits.train.head(200), folder / "train.tsv"
    )


def check_suite(out, n, names=("negative", "positive")):
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == n and 0 <= metrics["accuracy"] <= 1 and metrics["rows_with_prediction_error"] == 0
    assert list(metrics["per_class"]) == list(names) and "macro_f1" in metrics and "roc_auc" in metrics
    assert sum(map(sum, metrics["confusion_matrix"])) == n and len(metrics["confusion_matrix"]) == len(names)
    assert sum(c["support"] for c in metrics["per_class"].values()) == n
    confidence = json.loads((out / "confidence_analysis.json").read_text())
    assert 1 / len(names) <= confidence["mean_confidence"] <= 1 and 0 <= confidence["share_above_0_9"] <= 1
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
def test_evaluation_suite(ray_cluster, tmp_path, eval_csv, stars_files, model_folder, tiny_path, tokenizer, strategy):
    """Binary label scoring, and a classifier of three star classes (every part of the report for N classes; its
    zero-shot baseline scores the three class names as label words)."""
    names = ("negative", "positive") if strategy == "label_scoring" else ("差评", "中评", "好评")
    if strategy == "label_scoring":
        folder, data, train = model_folder, eval_csv, "offline"
    else:
        folder = build_model_folder(tmp_path / "stars", tiny_path, tokenizer, "classifier", STARS)
        data, train = stars_files[0], str(stars_files[1])
    metrics = sentiment_ray.evaluate(  # the Python API: EvaluateOptions' fields as keywords
        model_path=folder,
        data=data,
        output_dir=tmp_path / "eval",
        text_column="text_a",
        id_column="id",
        train_data=train,
        batch_size=16,
    )
    comparison, text = check_suite(tmp_path / "eval", 40, names)
    systems = [row["name"] for row in comparison["rows"]]
    assert systems[0].startswith(strategy) and "zero-shot" in systems and "tfidf-char-ngram" in systems
    assert all(row["macro_f1"] is not None for row in comparison["rows"])
    lowest = json.loads((tmp_path / "eval" / "confidence_analysis.json").read_text())["lowest_confidence"][0]
    if len(names) == 2:  # binary sentiment keeps its keys
        assert "prob_positive" in lowest
    else:
        assert list(lowest["probs"]) == list(names) and all(f"| {n} |" in text for n in names)
    assert comparison["n_test"] == 40
    # One Ray Data job for the model (clean + 5 perturbations, 6 x 40 texts), one for the zero-shot baseline
    scoring = json.loads((tmp_path / "eval" / "metrics.json").read_text())["scoring"]
    assert scoring["jobs"] == 2 and scoring["texts_scored"] == 6 * 40 + 40 and scoring["seconds"] > 0
    assert scoring["actors"].split(" actor(s) x ")[0].isdigit(), scoring  # the layout the jobs were sized to
    assert metrics["report"] == str(tmp_path / "eval" / "report.md") and "tiny-model numbers" in text
    assert metrics["n"] == 40 and metrics["accuracy"] == comparison["rows"][0]["accuracy"]


def test_zero_shot_evaluates_the_base_model_with_the_label_words_of_a_run_config(
    ray_cluster, tmp_path, stars_files, capsys
):
    """`zero-shot --labels-from`: the untouched base model scores the run config's three words (binary zero-shot is
    the baseline of test_evaluation_suite[label_scoring])."""
    run_yaml = tmp_path / "stars.yaml"
    words = {"差评": "差", "中评": "中", "好评": "好"}
    labels = [{**c, "word": words[c["name"]]} for c in STARS]
    run_yaml.write_text(yaml.safe_dump({"labels": labels}, allow_unicode=True), encoding="utf-8")
    args = ["zero-shot", "--model", "tiny", "--max-length", "64", "--labels-from", str(run_yaml), "--batch-size", "16"]
    args += ["--data", str(stars_files[0]), "--text-column", "text_a", "--train-data", str(stars_files[1])]
    assert main([*args, "--output-dir", str(tmp_path / "zs")]) == 0
    printed = capsys.readouterr().out.splitlines()  # the summary: metrics, what the scoring cost (clean + 5 perturbed)
    assert any(line.startswith("[evaluate] done: 40 reviews, accuracy ") for line in printed), printed
    scoring = [line for line in printed if line.startswith("scoring:  240 texts in 1 job(s), ")]
    assert scoring and "actor(s) x" in scoring[0], printed
    meta = json.loads((tmp_path / "zs" / "model" / "sentiment_meta.json").read_text())
    assert meta["finetune"] == "zero_shot" and meta["strategy"] == "label_scoring"
    assert [(c["name"], c["word"]) for c in meta["labels"]] == list(words.items())
    comparison, _ = check_suite(tmp_path / "zs", 40, tuple(words))
    assert [row["name"] for row in comparison["rows"]][1:] == ["tfidf-char-ngram"]
