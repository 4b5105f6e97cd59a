"""The Python API's checks, which fail before any Ray or model work. Its runs are tested where the jobs are: the
session's trained runs come from `sentiment_ray.train` (tests/conftest.py), and test_score_ray.py and
test_evaluate_ray.py call `sentiment_ray.score` and `sentiment_ray.evaluate`."""

import subprocess
import sys

import pytest

import sentiment_ray
from sentiment_ray.errors import ConfigError


def test_import_loads_neither_torch_nor_ray():
    script = "import sys, sentiment_ray; sentiment_ray.train; print(sorted({'torch', 'ray'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"


def test_an_unknown_option_is_named_with_the_closest_one(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'num_actor' \\(did you mean 'num_actors'\\?\\)"):
        sentiment_ray.score(model_path=tmp_path, inputs=tmp_path, output=tmp_path / "out", num_actor=2)
    with pytest.raises(ConfigError, match="missing output \\(give --output"):
        sentiment_ray.score(model_path=tmp_path, inputs=tmp_path)
    with pytest.raises(ConfigError, match="missing model_path"):
        sentiment_ray.evaluate(data="offline", output_dir=tmp_path)


def test_train_checks_its_options_before_ray(tmp_path):
    with pytest.raises(ConfigError, match="train.max_step"):
        sentiment_ray.train("tiny", {"output_dir": str(tmp_path)}, ["train.max_step=4"])
