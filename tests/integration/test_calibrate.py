"""`sentiment-ray calibrate` on the folders users have: a zero-shot folder on a labelled file, a trained folder on
its own source (validation split only), and a file with unusable rows (counted, not hidden). No Ray needed."""

import json

import numpy as np
import pandas as pd
import pytest

from sentiment_ray.calibration import apply_temperature, threshold_for
from sentiment_ray.cli import main
from sentiment_ray.config import PromptConfig
from sentiment_ray.inference.predictor import SentimentPredictor
from sentiment_ray.models.folder import ZERO_SHOT, save_zero_shot_folder


@pytest.fixture(scope="module")
def labelled_texts():
    from sentiment_ray.data.corpus import load_offline_splits

    validation = load_offline_splits(seed=0, val_size=300, test_size=300)[0]["validation"]
    return validation["text"].tolist(), validation["label"].astype(int).tolist()


def calibrate(folder, data) -> dict:
    assert main(["calibrate", "--model-path", str(folder), "--data", str(data), "--device", "cpu"]) == 0
    return json.loads((folder / "sentiment_meta.json").read_text(encoding="utf-8"))["calibration"]


def test_a_zero_shot_folder_is_calibrated_on_a_labelled_file_and_its_predictions_use_it(tmp_path, labelled_texts):
    texts, labels = labelled_texts
    folder = save_zero_shot_folder("tiny", tmp_path / "zero-shot", PromptConfig())
    data = tmp_path / "labelled.tsv"
    pd.DataFrame({"text": texts, "label": ["正面" if y else "负面" for y in labels]}).to_csv(
        data, sep="\t", index=False
    )

    calibration = calibrate(folder, data)

    assert calibration["fitted_on"]["part"] == "whole file" and calibration["fitted_on"]["rows"] == len(texts)
    temperature = calibration["temperature"]
    assert temperature > 0 and temperature != pytest.approx(1.0, abs=1e-3)  # random weights: T does real work
    raw = SentimentPredictor.from_pretrained(str(folder), device="cpu", precision="fp32", calibrated=False)
    calibrated = SentimentPredictor.from_pretrained(str(folder), device="cpu", precision="fp32")
    assert raw.meta["finetune"] == ZERO_SHOT
    p_raw = np.array([r["prob_positive"] for r in raw.predict_batch(texts[:50])])
    rows = calibrated.predict_batch(texts[:50], min_confidence=0.6)
    np.testing.assert_allclose([r["prob_positive"] for r in rows], apply_temperature(p_raw, temperature), atol=1e-5)
    assert [r["abstained"] for r in rows] == [r["confidence"] < 0.6 for r in rows]
    assert [r["label_id"] for r in rows] == [int(p >= 0.5) for p in p_raw]  # calibration never flips a label
    threshold, reason = threshold_for(calibration, 0.9)  # random weights: likely no threshold, then all abstain
    targeted = calibrated.predict_batch(texts[:50], target_accuracy=0.9)
    assert {(r["threshold"], r["reason"]) for r in targeted} == {(threshold, reason)}
    assert [r["abstained"] for r in targeted] == [threshold is None or r["confidence"] < threshold for r in targeted]


def test_a_trained_folder_calibrated_on_its_own_source_uses_only_the_validation_split(tmp_path, model_folder):
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(model_folder, folder)
    source = json.loads((folder / "sentiment_meta.json").read_text(encoding="utf-8"))["config"]["data"]
    assert source["source"] == "offline"

    calibration = calibrate(folder, "offline")

    assert calibration["fitted_on"]["part"] == "validation split"
    assert calibration["fitted_on"]["rows"] == source["val_size"]  # not the test split, not the whole corpus


def test_unusable_rows_of_the_calibration_file_are_counted_not_hidden(tmp_path, labelled_texts):
    texts, labels = labelled_texts
    folder = save_zero_shot_folder("tiny", tmp_path / "zero-shot", PromptConfig())
    frame = pd.DataFrame({"text": texts[:40] + ["", "   "], "label": labels[:40] + [1, 0]})
    frame.to_csv(tmp_path / "with_blanks.csv", index=False)

    fitted_on = calibrate(folder, tmp_path / "with_blanks.csv")["fitted_on"]

    assert (fitted_on["rows"], fitted_on["unusable_rows"]) == (40, 2)
