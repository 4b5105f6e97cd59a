"""The README stays true: its config table is the generated one, and its commands name real things."""

import re
from pathlib import Path

from sentiment_ray.cli.commands import build_parser
from sentiment_ray.cli.config_docs import config_table, tune_table

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_config_table_is_current():
    assert config_table() in README, "regenerate with: python -m sentiment_ray.cli.config_docs"
    assert README.count("| `model.name` |") == 1, "the config table appears once (a stale copy hid here before)"
    assert tune_table() in README


def test_readme_opens_with_the_two_fresh_machine_commands():
    block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert [line.split()[0:2] for line in block.strip().splitlines()] == [["make", "train"], ["make", "test"]]
    makefile = (ROOT / "Makefile").read_text()
    assert "sentiment-ray train --config jobs/configs/tiny.yaml" in makefile
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_every_train_flag_in_the_readme_exists():
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]  # argparse keeps subparsers here
    known = {opt for action in train._actions for opt in action.option_strings}
    usage = README.split("sentiment-ray train --config jobs/configs/tiny.yaml \\", 1)[1].split("```", 1)[0]
    for flag in re.findall(r"--[a-z][a-z-]+", usage):
        assert flag in known, flag


def test_every_config_file_named_in_the_readme_exists():
    for path in set(re.findall(r"jobs/configs/[\w.\-]+\.yaml", README)):
        assert (ROOT / path).is_file(), path
