"""The `sentiment-ray` CLI as a user runs it: a real subprocess, real model folder, stdin for --interactive."""

import json
import os
import subprocess
import sys

import pytest

TOO_MANY = str(max(4, os.cpu_count() or 1) + 1)  # one more than the CPUs of the embedded Ray init_ray would start


def cli(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "sentiment_ray.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_predict_text_and_demo(model_folder):
    out = cli("predict", "--model-path", str(model_folder), "--text", "质量很好", "--text", "太差了")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["质量很好", "太差了"]
    assert all(r["label"] in ("positive", "negative") and r["error"] is None for r in rows)
    demo = cli("predict", "--model-path", str(model_folder), "--demo")
    assert demo.returncode == 0 and len(demo.stdout.splitlines()) == 4


def test_predict_interactive_reads_until_quit(model_folder):
    out = cli("predict", "--model-path", str(model_folder), "--interactive", stdin="很好\n\nquit\n不会被读到\n")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()[1:]]
    assert len(rows) == 2 and rows[0]["error"] is None and "empty" in rows[1]["error"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--config", "missing.yaml"], "config file not found: missing.yaml"),
        (["train", "--model", "tiny", "--finetune", "full", "--use-qlora"], "contradicts model.finetune='full'"),
        (["train", "--set", "train.epoch=2"], "did you mean 'epochs'"),
        (["train", "--model", "tiny", "--data", "/no/such/file.csv"], "/no/such/file.csv"),
        (["predict", "--model-path", "/no/such/folder", "--text", "x"], "not a sentiment-ray model folder"),
        (["train", "--model", "/no/such/model"], "--model /no/such/model: no such folder"),
        (["train", "--resume", "/nope"], "train.resume='/nope': not 'auto', 'none' or an HF checkpoint folder"),
        (["train", "--finetune", "qlora", "--set", "model.finetune=full"], "contradicts the flag that sets"),
        (["train", "--confg", "x.yaml"], "--confg: did you mean --config?"),
        (
            ["score", "--model-path", "/nope", "--input", "tests/data/conformance/csv_gbk.csv", "--output", "o"],
            "/nope is not",
        ),
        (["evaluate", "--model-path", "/nope", "--data", "x.csv", "--output-dir", "o"], "/nope is not a sentiment"),
        (["serve", "--model-path", "/nope"], "/nope is not a sentiment-ray model folder"),
        (["zero-shot", "--model", "/no/such", "--data", "offline", "--output-dir", "o"], "--model /no/such: no such"),
        (["train", "--num-workers", TOO_MANY], "lower --num-workers"),
        (["tune", "--config", "jobs/configs/tiny-tune.yaml", "--set", f"scaling.num_workers={TOO_MANY}"], "workers"),
    ],
)
def test_bad_input_is_one_clear_line_not_a_traceback(args, message):
    """Each mistake fails on the driver before Ray starts (no Ray output), with one line saying what to change."""
    out = cli(*args)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len([line for line in lines if not line.startswith(("usage:", " "))]) == 1  # argparse adds its usage
    assert "Ray instance" not in out.stdout + out.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["score", "--input", "tests/data/conformance/csv_gbk.csv", "--output", "{tmp}", "--num-actors", TOO_MANY],
        ["evaluate", "--data", "offline", "--output-dir", "{tmp}", "--num-actors", TOO_MANY],
        ["serve", "--replicas", TOO_MANY],
    ],
    ids=["score", "evaluate", "serve"],
)
def test_more_actors_or_replicas_than_an_embedded_ray_holds_fail_before_ray(model_folder, args, tmp_path):
    out = cli(args[0], "--model-path", str(model_folder), *(a.format(tmp=tmp_path / "out") for a in args[1:]))
    assert out.returncode == 2, out.stderr
    assert f"{TOO_MANY} CPU but the local Ray this command starts" in out.stderr and "lower --" in out.stderr
    assert "Traceback" not in out.stderr and "Ray instance" not in out.stdout + out.stderr
    assert not (tmp_path / "out").exists()


def test_score_refuses_a_missing_text_column_before_ray(model_folder, tmp_path):
    reviews = tmp_path / "reviews.csv"
    reviews.write_text("id,review\n1,好\n", encoding="utf-8")
    out = cli(
        "score",
        "--model-path",
        str(model_folder),
        "--input",
        str(reviews),
        "--text-column",
        "txt",
        "--output",
        str(tmp_path / "o"),
    )
    assert out.returncode == 2
    assert (
        "reviews.csv: no column 'txt'; available columns: 'id', 'review'. Choose one with --text-column." in out.stderr
    )
    assert not (tmp_path / "o").exists()


def test_predict_on_cuda_without_cuda_is_one_line(model_folder):
    out = cli("predict", "--model-path", str(model_folder), "--device", "cuda", "--text", "好")
    assert out.returncode == 2 and out.stderr.strip() == (
        "error: --device cuda: torch sees no CUDA device here; use --device cpu or auto"
    )


def test_version():
    out = cli("--version")
    assert out.returncode == 0 and out.stdout.startswith("sentiment-ray ")


def test_unreachable_hub_model_is_a_clear_error():
    """The Hub is unreachable here by design (HF_HUB_OFFLINE=1 set in conftest makes that immediate)."""
    from sentiment_ray.errors import ModelLoadError
    from sentiment_ray.models.loading import load_tokenizer

    with pytest.raises(ModelLoadError, match="Hugging Face Hub") as err:
        load_tokenizer("Qwen/Qwen2.5-1.5B")
    assert "--model tiny" in str(err.value)


def test_tune_takes_the_same_data_flags_as_train():
    from sentiment_ray.cli.commands import tune_configs
    from sentiment_ray.cli.parsers import build_parser

    data = ["--data", "reviews.tsv", "--text-column", "评论", "--label-column", "标签", "--id-column", "rid"]
    read = ["--encoding", "gb18030", "--quoting", "csv", "--sheet", "reviews"]
    args = build_parser().parse_args(["tune", "--config", "jobs/configs/tiny-tune.yaml", *data, *read])
    cfg, _ = tune_configs(args)
    d = cfg.data
    assert (d.source, d.text_column, d.label_column, d.id_column) == ("reviews.tsv", "评论", "标签", "rid")
    assert (d.encoding, d.quoting, d.sheet) == ("gb18030", "csv", "reviews")
    unset = build_parser().parse_args(["tune", "--config", "jobs/configs/tiny-tune.yaml"])
    assert tune_configs(unset)[0].data.quoting == "auto"  # the YAML's value stays when a flag is not given


def test_a_sweep_over_an_inert_parameter_is_refused():
    from sentiment_ray.cli.commands import tune_configs
    from sentiment_ray.cli.parsers import build_parser
    from sentiment_ray.errors import ConfigError

    full = ["tune", "--config", "jobs/configs/tiny-tune.yaml", "--set", "model.finetune=full"]
    with pytest.raises(ConfigError, match=r"tune.lora_r is searched, but model.finetune=full .* no effect"):
        tune_configs(build_parser().parse_args(full))
    cfg, tc = tune_configs(build_parser().parse_args([*full, "--set", "tune.lora_r=[8]"]))  # one value: fine
    assert cfg.model.finetune == "full" and tc.lora_r == [8]


def test_a_set_that_repeats_the_yaml_is_no_contradiction():
    from sentiment_ray.cli.commands import tune_configs
    from sentiment_ray.cli.parsers import build_parser

    args = ["tune", "--config", "jobs/configs/tiny-tune.yaml", "--set", "train.max_steps=4", "--num-samples", "2"]
    cfg, tc = tune_configs(build_parser().parse_args(args))
    assert cfg.train.max_steps == 4 and tc.num_samples == 2
