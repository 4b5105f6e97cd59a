"""`score` and `evaluate` options: dataclass defaults, then the --config YAML, then the flags; unknown keys named."""

import pytest
import yaml

from sentiment_ray.cli.job_options import job_options
from sentiment_ray.errors import ConfigError
from sentiment_ray.evaluation.suite import EvaluateOptions
from sentiment_ray.inference.batch import ScoreOptions


def write(tmp_path, values) -> str:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return str(path)


def test_flags_override_the_yaml_which_overrides_the_defaults(tmp_path):
    config = write(tmp_path, {"batch_size": 64, "num_actors": 3, "encoding": "gb18030", "text_column": "review"})
    flags = {"model_path": "m", "inputs": ["a.csv"], "output": "o", "num_actors": 2, "device": None}
    opts = job_options(ScoreOptions, config, flags)
    assert (opts.batch_size, opts.num_actors, opts.text_column, opts.device) == (64, 2, "review", "auto")
    assert opts.read_options.encoding == "gb18030" and opts.read_options.quoting == "auto"


def test_the_shipped_yamls_hold_the_dataclass_defaults():
    score = job_options(ScoreOptions, "jobs/configs/score.yaml", {"model_path": "m", "inputs": ["a"], "output": "o"})
    assert score == ScoreOptions(model_path="m", inputs=["a"], output="o")
    evaluate = job_options(EvaluateOptions, "jobs/configs/evaluate.yaml", {"model_path": "m", "output_dir": "o"})
    assert evaluate == EvaluateOptions(model_path="m", data="offline", output_dir="o")


def test_an_unknown_key_and_a_missing_field_are_named(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'batch_sise' \(did you mean 'batch_size'\?\)"):
        job_options(ScoreOptions, write(tmp_path, {"batch_sise": 3}), {})
    with pytest.raises(ConfigError, match=r"missing inputs, output \(give --input, --output or set it in --config\)"):
        job_options(ScoreOptions, None, {"model_path": "m"})
