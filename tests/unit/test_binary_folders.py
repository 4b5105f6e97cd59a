"""Binary model folders written before N-class labels (tests/data/binary_folders/README.md) load and predict as they
did: the same labels, ids, confidences and P(positive), and the same columns when scored."""

import json

import pytest
from helpers import BINARY_FOLDERS, binary_folder

from sentiment_ray.inference.predictor import SentimentPredictor
from sentiment_ray.models.folder import labels_of, read_meta

OLD_KEYS = ("label", "label_id", "confidence", "prob_positive", "error")


@pytest.mark.parametrize("strategy", ["label_scoring", "classifier"])
def test_a_binary_folder_from_before_n_class_labels_predicts_as_it_did(strategy, tiny_path, tmp_path):
    folder = binary_folder(strategy, tiny_path, tmp_path)
    kept = json.loads((BINARY_FOLDERS / f"{strategy}_predictions.json").read_text(encoding="utf-8"))
    meta = read_meta(folder)
    assert "labels" not in meta and labels_of(meta).binary_sentiment

    now = SentimentPredictor.from_pretrained(folder, device="cpu", precision="fp32").predict_batch(kept["texts"])

    for old, new in zip(kept["predictions"], now, strict=True):
        assert {k: new[k] for k in ("label", "label_id", "error")} == {
            k: old[k] for k in ("label", "label_id", "error")
        }
        for key in ("confidence", "prob_positive"):
            assert new[key] == pytest.approx(old[key], abs=1e-6), (key, old, new)
        assert set(new) == {*OLD_KEYS, "probs"}  # the old keys, and the probabilities by class name
