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
    """A copy of `model_folder` calibrated by `sentiment-ray calibrate` on the offline validation split."""
    import shutil

    from sentiment_ray.cli import main

    folder = tmp_path_factory.mktemp("calibrated") / "model"
    shutil.copytree(model_folder, folder)
    assert main(["calibrate", "--model-path", str(folder), "--data", "offline", "--device", "cpu"]) == 0
    return folder
