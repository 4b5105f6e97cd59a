"""The `sentiment-ray` CLI as a user runs it: `main(argv)` in this process for mistakes that fail before Ray starts,
a real subprocess where the process itself is the subject (the entry point, a Ray that must never start)."""

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sentiment_ray import console
from sentiment_ray.cli import main

ROOT = Path(__file__).parents[2]
GBK = str(ROOT / "tests" / "data" / "conformance" / "csv_gbk.csv")
TUNE_PRESET = str(ROOT / "jobs" / "configs" / "tiny-tune.yaml")
TOO_MANY = str(max(4, os.cpu_count() or 1) + 1)  # one more than the CPUs of the embedded Ray init_ray would start


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    """`cli(*argv)` → (exit code, stdout, stderr) of `main(argv)`, run from an empty folder (a run folder a command
    creates lands there). Afterwards this process's logging is as it was: `train` routes it to a log file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(console, "_log_file", None)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS", "0"))
    root = logging.getLogger()
    saved_root = (root.level, list(root.handlers))
    ours = logging.getLogger("sentiment_ray")
    saved_ours = ours.level  # --quiet raises it
    saved = {name: [(h, h.level) for h in logging.getLogger(name).handlers] for name in ("ray", "transformers")}

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exit_:  # argparse: usage errors and --version
            code = exit_.code
        out = capsys.readouterr()
        return code, out.out, out.err

    yield run
    for handler in root.handlers[len(saved_root[1]) :]:
        handler.close()
    root.setLevel(saved_root[0])
    root.handlers[:] = saved_root[1]
    logging.captureWarnings(False)
    ours.setLevel(saved_ours)
    for name, handlers in saved.items():
        logging.getLogger(name).handlers[:] = [h for h, _ in handlers]
        for handler, level in handlers:
            handler.setLevel(level)


def test_predict_text_through_the_entry_point(model_folder):
    """A real `python -m sentiment_ray.cli` process: the entry point users run."""
    command = [sys.executable, "-m", "sentiment_ray.cli", "predict", "--model-path", str(model_folder)]
    texts = ["--text", "质量很好", "--text", "太差了"]
    out = subprocess.run([*command, *texts], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["质量很好", "太差了"]
    assert all(r["label"] in ("positive", "negative") and r["error"] is None for r in rows)


def test_predict_demo(cli, model_folder):
    code, out, err = cli("predict", "--model-path", str(model_folder), "--demo")
    assert code == 0 and len(out.splitlines()) == 4, err


def test_predict_interactive_reads_until_quit(cli, model_folder, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("很好\n\nquit\n不会被读到\n"))
    code, out, err = cli("predict", "--model-path", str(model_folder), "--interactive")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()[1:]]
    assert len(rows) == 2 and rows[0]["error"] is None and "empty" in rows[1]["error"]


def test_predict_input_file_writes_one_line_per_record_in_order(cli, model_folder, tmp_path):
    """A JSONL file with a broken line and an empty text: every record gets its line, the bad ones an error."""
    reviews = tmp_path / "reviews.jsonl"
    lines = ['{"id": "a", "text": "质量很好"}', "{not json", '{"id": "c", "text": ""}', '{"id": "d", "text": "太差了"}']
    reviews.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, err = cli("predict", "--model-path", str(model_folder), "--input", str(reviews))  # ids: column id
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0, err
    assert [r["source_row"] for r in rows] == [1, 2, 3, 4] and [rows[0]["id"], rows[3]["id"]] == ["a", "d"]
    assert rows[0]["error"] is None and rows[0]["label"] in ("positive", "negative") and rows[3]["error"] is None
    assert "JSON" in rows[1]["error"] and rows[1]["label"] is None and "empty" in rows[2]["error"]


def test_predict_input_dash_reads_stdin_lines(cli, model_folder, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("很好\n太差了\n"))
    code, out, err = cli("predict", "--model-path", str(model_folder), "--input", "-")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [(r["source_row"], r["text"]) for r in rows] == [(1, "很好"), (2, "太差了")], err


def test_predict_input_names_a_missing_column_before_the_model_loads(cli, tmp_path):
    reviews = tmp_path / "reviews.csv"
    reviews.write_text("review,stars\n很好,5\n", encoding="utf-8")
    code, _, err = cli("predict", "--model-path", "/not/loaded", "--input", str(reviews))
    assert code == 2 and f"{reviews}: no column 'text' (--text-column); its columns: review, stars" in err, err


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
        (["score", "--model-path", "/nope", "--input", GBK, "--output", "o"], "/nope is not"),
        (["evaluate", "--model-path", "/nope", "--data", "x.csv", "--output-dir", "o"], "/nope is not a sentiment"),
        (["serve", "--model-path", "/nope"], "/nope is not a sentiment-ray model folder"),
        (["zero-shot", "--model", "/no/such", "--data", "offline", "--output-dir", "o"], "--model /no/such: no such"),
    ],
)
def test_bad_input_is_one_clear_line_not_a_traceback(cli, args, message):
    """Each mistake fails on the driver before Ray starts, with one line saying what to change."""
    code, out, err = cli(*args)
    assert code == 2
    assert message in err and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len([line for line in lines if not line.startswith(("usage:", " "))]) == 1  # argparse adds its usage


EMBEDDED = {  # asks for more CPUs than the Ray these commands would start holds
    "train": ["train", "--num-workers", TOO_MANY],
    "tune": ["tune", "--config", TUNE_PRESET, "--set", f"scaling.num_workers={TOO_MANY}"],
    "score": ["score", "--model-path", "{model}", "--input", GBK, "--output", "{tmp}", "--num-actors", TOO_MANY],
    "evaluate": ["evaluate", "--model-path", "{model}", "--data", "offline", "--output-dir", "{tmp}"]
    + ["--num-actors", TOO_MANY],
    "serve": ["serve", "--model-path", "{model}", "--replicas", TOO_MANY],
}
EMBEDDED_SCRIPT = """
import contextlib, io, json, sys
import ray
from sentiment_ray.cli import main
results = {}
for name, argv in json.loads(sys.argv[1]).items():
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    results[name] = {"code": code, "stderr": err.getvalue(), "ray_started": ray.is_initialized()}
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def embedded_refusals(model_folder, tmp_path_factory) -> dict:
    """Every EMBEDDED command in one fresh process that has no Ray to join (no RAY_ADDRESS): its subject is the
    embedded Ray that process would start, and whether it starts at all."""
    tmp = tmp_path_factory.mktemp("embedded")
    cases = {n: [a.format(model=model_folder, tmp=tmp / n / "out") for a in argv] for n, argv in EMBEDDED.items()}
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run(
        [sys.executable, "-c", EMBEDDED_SCRIPT, json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Ray instance" not in done.stdout + done.stderr
    return {**json.loads(done.stdout.splitlines()[-1]), "tmp": tmp}


@pytest.mark.parametrize("command", sorted(EMBEDDED))
def test_more_workers_actors_or_replicas_than_an_embedded_ray_holds_fail_before_ray(embedded_refusals, command):
    result = embedded_refusals[command]
    assert result["code"] == 2 and not result["ray_started"], result
    assert f"{TOO_MANY} CPU but the local Ray this command starts" in result["stderr"], result
    assert "lower --" in result["stderr"]
    assert "Traceback" not in result["stderr"]
    assert not (embedded_refusals["tmp"] / command / "out").exists()


def test_score_refuses_a_missing_text_column_before_ray(cli, model_folder, tmp_path):
    reviews = tmp_path / "reviews.csv"
    reviews.write_text("id,review\n1,好\n", encoding="utf-8")
    args = ["--model-path", str(model_folder), "--input", str(reviews), "--text-column", "txt"]
    code, _, err = cli("score", *args, "--output", str(tmp_path / "o"))
    assert code == 2
    assert "reviews.csv: no column 'txt'; available columns: 'id', 'review'. Choose one with --text-column." in err
    assert not (tmp_path / "o").exists()


def test_predict_on_cuda_without_cuda_is_one_line(cli, model_folder):
    code, _, err = cli("predict", "--model-path", str(model_folder), "--device", "cuda", "--text", "好")
    assert code == 2 and err.strip() == "error: --device cuda: torch sees no CUDA device here; use --device cpu or auto"


def test_version(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.startswith("sentiment-ray ")


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
    args = build_parser().parse_args(["tune", "--config", TUNE_PRESET, *data, *read])
    cfg, _ = tune_configs(args)
    d = cfg.data
    assert (d.source, d.text_column, d.label_column, d.id_column) == ("reviews.tsv", "评论", "标签", "rid")
    assert (d.encoding, d.quoting, d.sheet) == ("gb18030", "csv", "reviews")
    unset = build_parser().parse_args(["tune", "--config", TUNE_PRESET])
    assert tune_configs(unset)[0].data.quoting == "auto"  # the YAML's value stays when a flag is not given


def test_a_sweep_over_an_inert_parameter_is_refused():
    from sentiment_ray.cli.commands import tune_configs
    from sentiment_ray.cli.parsers import build_parser
    from sentiment_ray.errors import ConfigError

    full = ["tune", "--config", TUNE_PRESET, "--set", "model.finetune=full"]
    with pytest.raises(ConfigError, match=r"tune.lora_r is searched, but model.finetune=full .* no effect"):
        tune_configs(build_parser().parse_args(full))
    cfg, tc = tune_configs(build_parser().parse_args([*full, "--set", "tune.lora_r=[8]"]))  # one value: fine
    assert cfg.model.finetune == "full" and tc.lora_r == [8]


def test_a_set_that_repeats_the_yaml_is_no_contradiction():
    from sentiment_ray.cli.commands import tune_configs
    from sentiment_ray.cli.parsers import build_parser

    args = ["tune", "--config", TUNE_PRESET, "--set", "train.max_steps=4", "--num-samples", "2"]
    cfg, tc = tune_configs(build_parser().parse_args(args))
    assert cfg.train.max_steps == 4 and tc.num_samples == 2


def test_a_bare_command_prints_help(cli):
    code, out, err = cli()
    assert code == 0 and out.startswith("usage: sentiment-ray") and "train" in out and not err


@pytest.mark.parametrize(
    ("args", "usage", "message"),
    [
        # an abbreviation is an error (argparse would otherwise run `--num-samples 2`)
        (["tune", "--config", "no-such.yaml", "--num-sample", "2"], "usage: sentiment-ray tune", "--num-samples?"),
        # the subcommand's usage, and a suggestion among its own flags only (score has --batch-tokens, train not)
        (["train", "--batch-token", "9"], "usage: sentiment-ray train", "--batch-size?"),
        (["config", "validate", "tiny", "--sett", "x"], "usage: sentiment-ray config validate", "--set?"),
    ],
)
def test_flag_mistakes_print_the_subcommands_usage_and_its_own_suggestion(cli, args, usage, message):
    code, _, err = cli(*args)
    assert code == 2 and err.startswith(usage) and f"did you mean {message}" in err, err


@pytest.mark.parametrize("preset", ["qwen2.5-1.5b-lora", "qwen2.5-1.5b-qlora", "tiny"])
def test_presets_load_by_name_whatever_their_characters(cli, preset):
    code, out, err = cli("config", "validate", preset)
    assert code == 0 and f"{preset}.yaml: a valid train config" in err and "model:" in out, err


def test_config_validate_overlays_files_as_train_does(cli):
    code, out, err = cli("config", "validate", "qwen2.5-1.5b-qlora", "cpu-real-shape", "--set", "train.seed=7")
    import yaml

    resolved = yaml.safe_load(out)
    assert code == 0 and resolved["train"]["seed"] == 7 and resolved["model"]["finetune"] == "qlora", err
    assert resolved["train"]["max_steps"] == 3  # from the overlay, on top of the preset


def test_train_seed_and_precision_flags_reach_the_config():
    from sentiment_ray.cli.parsers import TRAIN_FIELDS, build_parser, config_flag_values

    args = build_parser().parse_args(["train", "--config", "tiny", "--seed", "7", "--precision", "fp32"])
    assert config_flag_values(args, TRAIN_FIELDS) == {"train.seed": 7, "train.precision": "fp32"}


def test_evaluate_takes_batch_tokens_as_score_does():
    from sentiment_ray.cli.commands import _evaluate_options
    from sentiment_ray.cli.parsers import build_parser

    args = build_parser().parse_args(["evaluate", "--model-path", "m", "--data", "d.csv", "--output-dir", "o"])
    assert _evaluate_options(args, "m").batch_tokens is None  # the predictor's per-device default
    args = build_parser().parse_args(
        ["evaluate", "--model-path", "m", "--data", "d.csv", "--output-dir", "o", "--batch-tokens", "512"]
    )
    assert _evaluate_options(args, "m").batch_tokens == 512


@pytest.mark.parametrize("job", ["train", "score", "evaluate", "tune", "zero_shot"])
def test_each_ray_job_entry_point_runs_its_subcommand(job):
    """`ray job submit -- python jobs/<job>.py …` runs `sentiment-ray <job> …` (the cluster suite submits train,
    score and evaluate for real)."""
    done = subprocess.run([sys.executable, f"jobs/{job}.py", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith(f"usage: sentiment-ray {job.replace('_', '-')} "), done
