"""The CLI's flags are generated from the typed options (sentiment_ray/cli/option_flags.py): one definition of each
flag's name, type, choices, default and help."""

from __future__ import annotations

import dataclasses

import pytest

from sentiment_ray.cli.job_options import job_options
from sentiment_ray.cli.option_flags import flag_name, given, option_fields
from sentiment_ray.cli.parsers import TRAIN_FIELDS, build_parser, config_flag_values, run_config_field
from sentiment_ray.evaluation.suite import EvaluateOptions
from sentiment_ray.inference.score_options import ScoreOptions
from sentiment_ray.inference.serve_config import ServeConfig

SCORE = ["score", "--model-path", "m", "--input", "a.csv", "--output", "o"]


def flags_of(command: str) -> dict:
    """{flag: argparse action} of one subcommand."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return {opt: action for action in sub._actions for opt in action.option_strings}


@pytest.mark.parametrize(("command", "cls"), [("score", ScoreOptions), ("evaluate", EvaluateOptions)])
def test_every_job_option_has_its_flag_with_the_fields_help_and_default(command, cls):
    flags = flags_of(command)
    for option in option_fields(cls).values():
        if option.metadata.get("flag", "") is None:
            assert flag_name(option) is None or flag_name(option) not in flags
            continue
        action = flags[flag_name(option)]
        assert action.default is None  # a --config YAML's value stays unless the flag is given
        assert option.doc and option.doc.rstrip(".") in " ".join(action.help.split()), (option.name, action.help)
        if option.default not in (None, False, dataclasses.MISSING) and "shown_default" not in option.metadata:
            assert f"(default: {option.default})" in action.help, (option.name, action.help)


def test_a_changed_dataclass_default_is_what_the_help_shows(monkeypatch):
    field = next(f for f in dataclasses.fields(ScoreOptions) if f.name == "batch_size")
    monkeypatch.setattr(field, "default", 77)
    option_fields.cache_clear()
    try:
        assert "(default: 77)" in flags_of("score")["--batch-size"].help
    finally:
        monkeypatch.undo()
        option_fields.cache_clear()


def test_list_options_parse_as_the_fields_hold_them():
    args = build_parser().parse_args([*SCORE, "--input", "b/*.tsv", "--columns", "id, stars ,", "--format", "csv"])
    values = given(args, ScoreOptions)
    assert values["inputs"] == ["a.csv", "b/*.tsv"] and values["keep_columns"] == ["id", "stars"]
    opts = job_options(ScoreOptions, None, values)
    assert (opts.output_format, opts.batch_size, opts.num_actors) == ("csv", 512, None)


@pytest.mark.parametrize(
    ("argv", "wrong"), [([*SCORE, "--format", "xml"], "--format"), ([*SCORE, "--precision", "fp8"], "--precision")]
)
def test_a_choice_outside_the_fields_choices_is_refused(capsys, argv, wrong):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("usage: sentiment-ray score") and f"argument {wrong}" in err


def test_train_flags_land_on_their_config_paths():
    argv = [
        "train",
        "--data",
        "x.csv",
        "--model",
        "tiny",
        "--lora-r",
        "4",
        "--use-gpu",
        "--epochs",
        "2",
        "--quoting",
        "csv",
    ]
    values = config_flag_values(build_parser().parse_args(argv), TRAIN_FIELDS)
    assert values == {
        "data.source": "x.csv", "model.name": "tiny", "lora.r": 4, "scaling.use_gpu": True, "train.epochs": 2.0,
        "data.quoting": "csv",
    }  # fmt: skip
    assert "(default: 8)" in flags_of("train")["--lora-r"].help  # LoraConfig.r's default, not a typed copy
    assert run_config_field("train.precision").metadata["choices"] == tuple(flags_of("train")["--precision"].choices)


def test_serve_flags_come_from_the_serve_config():
    flags = flags_of("serve")
    assert flags["--device"].choices == ("auto", "cpu", "cuda")
    assert f"(default: {ServeConfig.model_fields['max_batch_size'].default})" in flags["--max-batch-size"].help
    args = build_parser().parse_args(["serve", "--model-path", "m", "--replicas", "2"])
    assert given(args, ServeConfig) == {"model_path": "m", "replicas": 2}
