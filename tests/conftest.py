"""Shared fixtures: the offline tiny Qwen2 (built once, cached under ~/.cache/sentiment-ray) and its tokenizer."""

import os

import pytest
from helpers import build_model_folder

# Every process that starts or reaches a Ray cluster runs with token auth (docs/ray-2.60.md).
os.environ.setdefault("RAY_AUTH_MODE", "token")
# The Hub is unreachable here by design: fail fast instead of retrying for ~25 s.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_path():
    from sentiment_ray.models.tiny import materialize_tiny

    return str(materialize_tiny(seed=0))


@pytest.fixture(scope="session")
def tokenizer(tiny_path):
    from sentiment_ray.models.loading import load_tokenizer

    return load_tokenizer(tiny_path)


@pytest.fixture(scope="session")
def model_folder(tmp_path_factory, tiny_path, tokenizer):
    return build_model_folder(tmp_path_factory.mktemp("model") / "model", tiny_path, tokenizer)


@pytest.fixture(scope="session")
def classifier_folder(tmp_path_factory, tiny_path, tokenizer):
    return build_model_folder(tmp_path_factory.mktemp("classifier") / "model", tiny_path, tokenizer, "classifier")


@pytest.fixture(scope="session")
def calibrated_folder(tmp_path_factory, model_folder):
    """A copy of `model_folder` calibrated by `sentiment-ray calibrate` on a labelled CSV.

    The tiny fixture model has random adapters, so against the corpus' labels no confidence threshold reaches
    any accuracy target. The CSV's labels are the model's own predictions instead, with the least confident
    30% flipped: confident rows are right and unsure ones wrong, so targets between 0.5 and 1 have thresholds
    and selective prediction has something to select.
    """
    import shutil

    import numpy as np
    import pandas as pd

    from sentiment_ray.cli import main
    from sentiment_ray.data.corpus import load_offline_splits
    from sentiment_ray.inference.predictor import SentimentPredictor

    root = tmp_path_factory.mktemp("calibrated")
    folder = root / "model"
    shutil.copytree(model_folder, folder)
    texts = load_offline_splits(seed=0, val_size=600, test_size=600)[0]["validation"]["text"].tolist()
    raw = SentimentPredictor.from_pretrained(str(folder), device="cpu", precision="fp32").predict_batch(texts)
    labels = np.array([r["label_id"] for r in raw])
    unsure = np.argsort([r["confidence"] for r in raw])[: int(0.3 * len(raw))]
    labels[unsure] = 1 - labels[unsure]
    pd.DataFrame({"text": texts, "label": labels}).to_csv(root / "calibration.csv", index=False)
    argv = ["calibrate", "--model-path", str(folder), "--data", str(root / "calibration.csv"), "--device", "cpu"]
    assert main(argv) == 0
    return folder
