"""The Serve app's typed config: every key checked, by `serve run` (Ray's own validation of the builder's
annotated argument), by `sentiment-ray serve --config` and by `sentiment-ray config validate`."""

import pytest
import yaml
from pydantic import ValidationError

from sentiment_ray.errors import ConfigError
from sentiment_ray.inference.serve import app_builder
from sentiment_ray.inference.serve_config import ServeConfig, load_serve_yaml, serve_config

BAD = {"model_path": "runs/tiny/model", "max_batchsize": 8, "replica": 2}


@pytest.fixture
def cli(capsys):
    """`cli(*argv)` → (exit code, stdout, stderr) of `main(argv)` in this process (these commands start nothing)."""
    from sentiment_ray.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def test_serve_run_refuses_a_misspelled_key_through_rays_typed_builder():
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary  # what `serve run` calls

    with pytest.raises(ValidationError, match=r"unknown key 'max_batchsize' \(did you mean 'max_batch_size'\?\)"):
        call_user_app_builder_with_args_if_necessary(app_builder, BAD)


def test_a_missing_model_path_and_a_wrong_type_are_named():
    with pytest.raises(ConfigError, match=r"x.yaml: model_path: Field required"):
        serve_config({}, "x.yaml")
    with pytest.raises(ConfigError, match=r"replicas: Input should be a valid integer"):
        serve_config({"model_path": "m", "replicas": "two"}, "x.yaml")


def test_the_serve_yaml_is_a_valid_config_and_its_args_are_what_the_builder_gets():
    values = load_serve_yaml("jobs/configs/serve.yaml")
    raw = yaml.safe_load(open("jobs/configs/serve.yaml", encoding="utf-8"))["applications"][0]["args"]
    cfg = ServeConfig.model_validate(values)
    assert {k: getattr(cfg, k) for k in raw} == raw and cfg.host == "127.0.0.1"


def test_cli_refuses_the_misspelled_key_before_anything_starts(cli, tmp_path):
    bad = tmp_path / "serve.yaml"
    bad.write_text(yaml.safe_dump(BAD))
    for args in (["serve", "--config", str(bad)], ["config", "validate", str(bad)]):
        code, _, err = cli(*args)
        assert code == 2 and "unknown key 'replica' (did you mean 'replicas'?)" in err, err


def test_config_validate_prints_the_resolved_config_of_each_kind(cli):
    code, out, _ = cli("config", "validate", "tiny", "--set", "train.max_steps=2")
    assert code == 0 and yaml.safe_load(out)["train"]["max_steps"] == 2
    code, out, _ = cli("config", "validate", "jobs/configs/tiny-tune.yaml")
    assert code == 0 and "lora_r" in yaml.safe_load(out)["tune"]
    code, out, _ = cli("config", "validate", "jobs/configs/serve.yaml")
    assert code == 0 and yaml.safe_load(out)["max_batch_size"] == 32
