"""The README and the user guide stay true: every command in their bash blocks parses with the CLI's own parser
(commands, subcommands, flags, choices), every repository file they name exists, and the config tables are the
generated ones. No command runs here; the quickstart's commands run in CI's tests of each command."""

import glob
import re
import shlex
from pathlib import Path

import pytest

from sentiment_ray.cli.commands import build_parser
from sentiment_ray.cli.config_docs import config_table, tune_table
from sentiment_ray.config import resolve_config_path

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs" / "guide").glob("*.md"))]
JOBS = {"jobs/train.py": "train", "jobs/score.py": "score", "jobs/evaluate.py": "evaluate", "jobs/tune.py": "tune"}
JOBS["jobs/zero_shot.py"] = "zero-shot"
REPO_PATH = re.compile(r"^(examples|jobs|tests/data|scripts|benchmarks)/")
"""Arguments under these folders name files the repository ships; `runs/…` and URIs are the user's."""


def bash_commands(text: str) -> list[tuple[int, list[str]]]:
    """(line, argv) of each command in the ```bash blocks: continuations joined, comments and redirections dropped,
    and lines cut at `&&`, `;`, `|` and `&`."""
    commands = []
    for block in re.finditer(r"```bash\n(.*?)```", text, re.S):
        first = text[: block.start()].count("\n") + 2
        joined = re.sub(r"\\\n", " ", block.group(1))
        for offset, line in enumerate(joined.splitlines()):
            lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
            lexer.whitespace_split, lexer.commenters = True, "#"
            words, current, redirected = list(lexer), [], False
            for word in [*words, ";"]:
                if word in {";", "&&", "&", "|", "||"}:
                    if current:
                        commands.append((first + offset, current))
                    current = []
                elif word in {">", ">>", "<"}:
                    redirected = True  # `> FILE`: the file is the shell's, not an argument
                elif redirected:
                    redirected = False
                else:
                    current.append(word)
    return commands


def cli_argv(words: list[str]) -> list[str] | None:
    """The `sentiment-ray` argv a command line runs, or None for other programs (make, curl, ray, pip)."""
    if "--" in words and words[0] == "ray":  # ray job submit … -- ENTRYPOINT
        words = words[words.index("--") + 1 :]
    if words[0].endswith("sentiment-ray"):
        return words[1:]
    if words[:3] == ["python", "-m", "sentiment_ray.cli"]:
        return words[3:]
    if words[0] == "python" and len(words) > 1 and words[1] in JOBS:
        return [JOBS[words[1]], *words[2:]]
    return None


def cases() -> list:
    found = []
    for doc in DOCUMENTS:
        for line, words in bash_commands(doc.read_text(encoding="utf-8")):
            argv = cli_argv(words)
            if argv is not None:
                found.append(pytest.param(argv, id=f"{doc.relative_to(ROOT)}:{line}"))
    return found


@pytest.mark.parametrize("argv", cases())
def test_every_documented_command_parses_and_names_files_that_exist(argv):
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        raise AssertionError(f"`sentiment-ray {' '.join(argv)}` does not parse (exit {exit_.code})") from None
    for word in argv:
        value = word.split("=", 1)[1] if word.startswith("--") and "=" in word else word
        if REPO_PATH.match(value):
            assert glob.glob(str(ROOT / value)), f"{value}: no such file in the repository"
    configs = getattr(args, "config", None) or []  # train and tune take several (overlays), the rest one
    for config in [configs] if isinstance(configs, str) else configs:
        if not config.startswith("$"):
            assert (ROOT / resolve_config_path(config)).is_file(), f"--config {config}: no such file or preset"


def test_the_documents_hold_commands_of_every_kind():
    """The parsing above sees the commands: a change to the extraction that finds none fails here."""
    kinds = {argv[0] for param in cases() for argv in param.values}
    assert {
        "train",
        "predict",
        "score",
        "evaluate",
        "serve",
        "tune",
        "zero-shot",
        "calibrate",
        "export",
        "info",
    } <= kinds


def test_a_planted_wrong_flag_is_caught():
    text = (
        "```bash\nsentiment-ray score --model-path runs/tiny/model --inptu examples/reviews.tsv \\\n  --output o\n```\n"
    )
    ((line, words),) = bash_commands(text)
    with pytest.raises(AssertionError, match="does not parse"):
        test_every_documented_command_parses_and_names_files_that_exist(cli_argv(words))
    missing = cli_argv(shlex.split("sentiment-ray predict --model-path m --input examples/no-such.tsv"))
    with pytest.raises(AssertionError, match="no such file in the repository"):
        test_every_documented_command_parses_and_names_files_that_exist(missing)


def test_the_readme_is_short_and_opens_with_the_two_fresh_machine_commands():
    assert len(README.splitlines()) <= 250
    block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert [line.split()[0:2] for line in block.strip().splitlines()] == [["make", "train"], ["make", "test"]]
    assert "sentiment-ray train --config jobs/configs/tiny.yaml" in (ROOT / "Makefile").read_text()
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_config_tables_are_current():
    config = (ROOT / "docs" / "guide" / "config.md").read_text(encoding="utf-8")
    assert config_table() in config, "regenerate with: python -m sentiment_ray.cli.config_docs"
    assert tune_table() in (ROOT / "docs" / "guide" / "tune.md").read_text(encoding="utf-8")
    every = "".join(doc.read_text(encoding="utf-8") for doc in [*DOCUMENTS, *(ROOT / "docs").glob("*.md")])
    assert every.count("| `model.name` |") == 1, "the config table appears once"


def test_every_config_file_named_exists():
    for doc in DOCUMENTS:
        for path in set(re.findall(r"jobs/configs/[\w.\-]+\.yaml", doc.read_text(encoding="utf-8"))):
            assert (ROOT / path).is_file(), f"{doc.name}: {path}"


def test_every_flag_of_a_usage_synopsis_exists():
    """The ```text synopses (`sentiment-ray train --config … [--data …] …`) name only the subcommand's flags."""
    subcommands = build_parser()._subparsers._group_actions[0].choices  # argparse keeps subparsers here
    synopses = 0
    for doc in DOCUMENTS:
        for block in re.findall(r"```text\n(sentiment-ray [a-z-]+ .*?)```", doc.read_text(encoding="utf-8"), re.S):
            parser = subcommands[block.split()[1]]
            known = {opt for action in parser._actions for opt in action.option_strings}
            synopses += 1
            for flag in re.findall(r"--[a-z][a-z-]+", block):
                assert flag in known, f"{doc.name}: {block.split()[1]} has no {flag}"
    assert synopses >= 2
