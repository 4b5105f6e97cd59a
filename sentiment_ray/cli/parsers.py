"""The `sentiment-ray` argument parsers: one subparser per job (the commands live in `sentiment_ray.cli.commands`)."""

from __future__ import annotations

import argparse
import re

from sentiment_ray.cli.option_flags import add_option_flag, add_option_flags, option_fields
from sentiment_ray.config import PRECISIONS
from sentiment_ray.errors import closest
from sentiment_ray.inference import DEFAULT_BATCH_ROWS

TRAIN_FIELDS = (
    "data.source", "data.text_column", "data.label_column", "data.id_column", "data.encoding", "data.quoting",
    "data.sheet", "data.max_train_samples", "model.strategy", "model.finetune", "model.name", "scaling.num_workers",
    "scaling.use_gpu", "train.epochs", "train.max_steps", "train.batch_size", "train.learning_rate", "lora.r",
    "train.seed", "train.precision", "output_dir", "train.resume", "train.max_failures", "storage_path",
)  # fmt: skip
"""The run-config fields `train` has a named flag for (`--` + the field name); any other goes through --set."""
FLAG_NAMES = {"data.source": "--data", "model.name": "--model", "lora.r": "--lora-r"}
"""Run-config flags not named after their field."""
TUNE_FIELDS = tuple(path for path in TRAIN_FIELDS if path.startswith("data.") and path != "data.max_train_samples")
"""`tune` reads data exactly as `train` does."""


def add_config_flags(p, paths) -> None:
    """A flag per run-config field path (`section.field`); its value lands in `args.<path>`."""
    for path in paths:
        add_option_flag(p, run_config_field(path), dest=path, flag=FLAG_NAMES.get(path))


def run_config_field(path: str):
    from sentiment_ray.cli.config_docs import SECTIONS
    from sentiment_ray.config import RunConfig

    section, _, name = path.rpartition(".")
    return option_fields(SECTIONS[section] if section else RunConfig)[name]


def config_flag_values(args, paths) -> dict:
    """{path: value} of the run-config flags that were given."""
    return {path: vars(args)[path] for path in paths if vars(args)[path] is not None}


def add_read_flags(p, config_defaults: bool = False) -> None:
    """--encoding / --quoting / --sheet: how every path (train, tune, evaluate, score) reads review files.

    With `config_defaults` they default to None, so that the YAML config's values stay in force.
    """
    from sentiment_ray.data.formats import ReadOptions

    for option in option_fields(ReadOptions).values():
        add_option_flag(p, option, **({} if config_defaults else {"default": option.default}))


def add_console_flags(p, log_file: str) -> None:
    """--verbose / --quiet: what a job command shows on the console besides its summary."""
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--verbose",
        action="store_true",
        help=f"show Ray's and the libraries' own output on the console (by default it goes to {log_file})",
    )
    mode.add_argument("--quiet", action="store_true", help="no progress lines: the summary and errors only")


def _add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="fine-tune on Ray Train and write a model folder + metrics")
    p.add_argument(
        "--config",
        action="append",
        help="YAML config (jobs/configs/*.yaml); repeat to overlay a second file on the first; flags override both",
    )
    add_config_flags(p, TRAIN_FIELDS)
    p.add_argument("--use-qlora", action="store_true", help="same as --finetune qlora")
    add_console_flags(p, "<output_dir>/train.log")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override any config field, e.g. --set train.warmup_ratio=0.05 (repeatable)",
    )


def _add_export_parser(sub) -> None:
    p = sub.add_parser("export", help="a merged full-weight Hugging Face folder + model card, loadable without us")
    p.add_argument("--model-path", required=True, help="a model folder (<run>/model), local or a URI (s3://…)")
    p.add_argument("--output", required=True, help="a new local folder")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="dtype of the written weights")
    p.add_argument(
        "--sequence-classifier",
        action="store_true",
        help="label scoring with one-token label words: write an AutoModelForSequenceClassification whose head is "
        "those words' lm_head rows (vLLM /classify, TEI)",
    )


def add_selective_flags(p) -> None:
    """--target-accuracy / --min-confidence: abstain on rows the model is unsure of (sentiment_ray/calibration.py)."""
    from sentiment_ray.inference.score_options import ScoreOptions

    add_option_flags(p, ScoreOptions, names=("target_accuracy", "min_confidence", "calibration"))


def _add_calibrate_parser(sub) -> None:
    p = sub.add_parser("calibrate", help="fit temperature scaling + abstention thresholds; stored in the model folder")
    p.add_argument("--model-path", required=True, help="a local model folder (<run>/model); its meta is updated")
    p.add_argument("--data", required=True, help="labelled FILE (used whole) | DIR or source (its validation split)")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    add_read_flags(p)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument(
        "--as",
        dest="name",
        metavar="NAME",
        help="store it beside the folder's own calibration under NAME (for another domain; select it with "
        "--calibration NAME); without it the folder's own is replaced",
    )


def _add_predict_parser(sub) -> None:
    p = sub.add_parser("predict", help="predict sentiment with a trained model folder")
    p.add_argument("--model-path", required=True, help="a model folder (<run>/model)")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--text", action="append", help="a review to score (repeatable)")
    mode.add_argument("--interactive", action="store_true", help="read reviews from stdin until quit/exit")
    mode.add_argument("--demo", action="store_true", help="score a few built-in example reviews")
    mode.add_argument(
        "--input", metavar="FILE|-", help="a review file (one JSON line per record, in order) or - (stdin's lines)"
    )
    p.add_argument("--text-column", default="text", help="with --input FILE")
    p.add_argument("--id-column", help="with --input FILE (default: a column named id, else the record's position)")
    add_read_flags(p)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--precision", default="auto", choices=PRECISIONS)
    rows = DEFAULT_BATCH_ROWS
    p.add_argument("--batch-size", type=int, default=rows, help=f"most rows per forward (default {rows})")
    add_selective_flags(p)
    p.add_argument("--uncalibrated", action="store_true", help="the model's raw probabilities (no temperature)")


def _add_score_parser(sub) -> None:
    from sentiment_ray.inference.score_options import ScoreOptions

    p = sub.add_parser("score", help="score review files on Ray Data (one output row per input row)")
    p.add_argument("--config", help="YAML of ScoreOptions fields (jobs/configs/score.yaml); flags override it")
    add_option_flags(p, ScoreOptions)
    add_read_flags(p, config_defaults=True)
    add_console_flags(p, "<output>.log beside a local --output")
    add_json_flag(p)


def add_json_flag(p) -> None:
    p.add_argument(
        "--json", action="store_true", help="stdout is the summary as one JSON object (for scripts), no progress lines"
    )


def _add_evaluation_flags(p, model_path: bool = True) -> None:
    from sentiment_ray.evaluation.suite import EvaluateOptions

    p.add_argument("--config", help="YAML of EvaluateOptions fields (jobs/configs/evaluate.yaml); flags override it")
    add_option_flags(p, EvaluateOptions, exclude=() if model_path else ("model_path",))
    add_read_flags(p, config_defaults=True)
    add_console_flags(p, "<output_dir>.log")
    add_json_flag(p)


def _add_evaluate_parsers(sub) -> None:
    from sentiment_ray.config import DataConfig

    p = sub.add_parser("evaluate", help="metrics, confidence/calibration, robustness, baselines, plots, report")
    _add_evaluation_flags(p)
    z = sub.add_parser("zero-shot", help="evaluate a base model with the label-scoring prompt, no training")
    z.add_argument("--model", required=True, help="Hub id, local model folder, or 'tiny'")
    add_option_flag(z, option_fields(DataConfig)["max_length"])
    z.add_argument(
        "--labels-from",
        metavar="RUN_YAML",
        help="a run config whose `labels` (words included) and `prompt` the base model scores; default: binary "
        "sentiment with the default prompt",
    )
    _add_evaluation_flags(z, model_path=False)


def _add_tune_parser(sub) -> None:
    p = sub.add_parser("tune", help="Ray Tune sweep over LoRA rank and learning rate; keeps the best model in best/")
    p.add_argument(
        "--config",
        required=True,
        action="append",
        help="YAML config with a `tune:` section (jobs/configs/tiny-tune.yaml); repeat to overlay a second file",
    )
    p.add_argument("--num-samples", type=int, help="trials to run (tune.num_samples)")
    p.add_argument("--output-dir", help="sweep folder; rerunning into it resumes the sweep")
    add_console_flags(p, "<output_dir>/tune.log; Tune's trial table stays on the console, --quiet drops it")
    p.add_argument("--max-concurrent", type=int, help="trials at once (default: derived from the cluster)")
    add_config_flags(p, TUNE_FIELDS)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override any config or tune field, e.g. --set tune.scheduler=none (repeatable)",
    )


SERVE_FIELDS = (
    "model_path", "host", "port", "replicas", "max_batch_size", "max_models_per_replica", "cpus_per_replica",
    "gpus_per_replica", "device", "precision",
)  # fmt: skip
"""The ServeConfig fields `serve` has a flag for (request limits and the rest: --config)."""


def _add_serve_parser(sub) -> None:
    from sentiment_ray.inference.serve_config import ServeConfig

    p = sub.add_parser("serve", help="serve model folders over HTTP with Ray Serve (POST /predict)")
    p.add_argument(
        "--config", help="YAML: ServeConfig keys, or a Serve config file (jobs/configs/serve.yaml); flags override"
    )
    add_option_flags(p, ServeConfig, names=SERVE_FIELDS)
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="another model folder, selected per request by id (repeatable)",
    )
    add_console_flags(p, "<cache>/logs/serve-<time>-<pid>.log")
    wait_ms = option_fields(ServeConfig)["batch_wait_timeout_s"].default * 1000
    p.add_argument("--batch-wait-ms", type=float, help=f"how long a batch waits to fill (default {wait_ms:g})")


class SuggestingParser(argparse.ArgumentParser):
    """argparse without abbreviations (`--num-sample` is an error, not `--num-samples`), whose errors print the
    subcommand's usage and, for a mistyped flag, "did you mean" among that subcommand's flags only."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_args(self, args=None, namespace=None):
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:  # the subcommand that was chosen reports them, with its own usage and flags
            chosen_parser(self, parsed).error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def error(self, message: str):
        unknown = (
            re.findall(r"(--[\w-]+)", message.split("unrecognized arguments:", 1)[1])
            if "unrecognized" in message
            else []
        )
        known = [opt for action in self._actions for opt in action.option_strings]
        hints = [f"{flag}: did you mean {match}?" for flag in unknown if (match := closest(flag, known))]
        super().error(message + ("; " + "; ".join(hints) if hints else ""))


def chosen_parser(parser: argparse.ArgumentParser, parsed: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost subparser that `parsed` went through (`config validate` → the `validate` parser)."""
    while parser._subparsers is not None:
        (choices,) = [a for a in parser._subparsers._group_actions if isinstance(a, argparse._SubParsersAction)]
        name = getattr(parsed, choices.dest, None)
        if name not in choices.choices:
            break
        parser = choices.choices[name]
    return parser


def build_parser() -> argparse.ArgumentParser:
    from importlib.metadata import version

    parser = SuggestingParser(
        prog="sentiment-ray", description="Fine-tune, score, evaluate, tune and serve Qwen sentiment models on Ray."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('sentiment-ray')}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train_parser(sub)
    _add_predict_parser(sub)
    _add_score_parser(sub)
    _add_evaluate_parsers(sub)
    _add_serve_parser(sub)
    _add_tune_parser(sub)
    _add_export_parser(sub)
    _add_calibrate_parser(sub)
    _add_config_parser(sub)
    info = sub.add_parser("info", help="what a model or run folder holds: base, strategy, classes, metrics, sizes")
    info.add_argument("path", help="a model folder (<run>/model), a run folder, or their s3:// URI")
    info.add_argument("--json", action="store_true", help="everything as one JSON object")
    return parser


def _add_config_parser(sub) -> None:
    p = sub.add_parser("config", help="check a config file without running anything")
    actions = p.add_subparsers(dest="action", required=True)
    validate = actions.add_parser("validate", help="load FILE as its job would and print it resolved (no Ray)")
    validate.add_argument(
        "file", nargs="+", help="YAML (train, tune or serve config) or preset name such as tiny; later files overlay"
    )
    validate.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE")
