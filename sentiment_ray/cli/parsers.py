"""The `sentiment-ray` argument parsers: one subparser per job (the commands live in `sentiment_ray.cli.commands`)."""

from __future__ import annotations

import argparse
import difflib
import re

from sentiment_ray.config import QUOTING_CHOICES

READ_FLAGS = ("encoding", "quoting", "sheet")

# Named `train` flags → config field paths; anything else goes through --set section.field=value.
TRAIN_FLAGS = {
    "data": "data.source",
    "text_column": "data.text_column",
    "label_column": "data.label_column",
    "id_column": "data.id_column",
    "encoding": "data.encoding",
    "quoting": "data.quoting",
    "sheet": "data.sheet",
    "max_train_samples": "data.max_train_samples",
    "strategy": "model.strategy",
    "finetune": "model.finetune",
    "model": "model.name",
    "num_workers": "scaling.num_workers",
    "epochs": "train.epochs",
    "max_steps": "train.max_steps",
    "batch_size": "train.batch_size",
    "learning_rate": "train.learning_rate",
    "lora_r": "lora.r",
    "output_dir": "output_dir",
    "resume": "train.resume",
    "max_failures": "train.max_failures",
    "seed": "train.seed",
    "precision": "train.precision",
    "storage_path": "storage_path",
}


# `tune` reads data exactly as `train` does.
TUNE_DATA_FLAGS = {k: TRAIN_FLAGS[k] for k in ("data", "text_column", "label_column", "id_column", *READ_FLAGS)}


def add_read_flags(p, config_defaults: bool = False) -> None:
    """--encoding / --quoting / --sheet: how every path (train, tune, evaluate, score) reads review files.

    With `config_defaults` they default to None, so that the YAML config's `data.*` values stay in force.
    """
    default = (lambda value: None) if config_defaults else (lambda value: value)
    p.add_argument(
        "--encoding",
        default=default("auto"),
        help="auto (BOM, else UTF-8, else detected; GB18030 for Chinese) or a codec, e.g. gb18030, utf-16",
    )
    p.add_argument(
        "--quoting",
        default=default("auto"),
        choices=QUOTING_CHOICES,
        help="auto: TSV unquoted (each line a record), CSV per RFC 4180; none or csv: the same for both",
    )
    p.add_argument("--sheet", help="the .xlsx sheet to read (default: the first)")


def add_console_flags(p, log_file: str) -> None:
    """--verbose / --quiet: what a job command shows on the console besides its summary."""
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--verbose",
        action="store_true",
        help=f"show Ray's and the libraries' own output on the console (by default it goes to {log_file})",
    )
    mode.add_argument("--quiet", action="store_true", help="no progress lines: the summary and errors only")


def _add_data_flags(p) -> None:
    p.add_argument("--data", help="offline | chnsenticorp | hf:<dataset id> | file | folder of splits")
    p.add_argument("--text-column")
    p.add_argument("--label-column")
    p.add_argument("--id-column")
    add_read_flags(p, config_defaults=True)


def _add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="fine-tune on Ray Train and write a model folder + metrics")
    p.add_argument(
        "--config",
        action="append",
        help="YAML config (jobs/configs/*.yaml); repeat to overlay a second file on the first; flags override both",
    )
    _add_data_flags(p)
    p.add_argument("--max-train-samples", type=int)
    p.add_argument("--strategy", choices=["classifier", "label_scoring"])
    p.add_argument("--finetune", choices=["lora", "qlora", "full"])
    p.add_argument("--use-qlora", action="store_true", help="same as --finetune qlora")
    p.add_argument("--model", help="Hub id, local model folder, or 'tiny'")
    p.add_argument("--num-workers", type=int)
    p.add_argument("--use-gpu", action="store_true", default=None)
    p.add_argument("--epochs", type=float)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--batch-size", type=int, help="per worker")
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--lora-r", type=int)
    p.add_argument("--seed", type=int, help="train.seed: data order, dropout and new heads")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], help="auto: bf16 on GPUs that support it")
    p.add_argument("--output-dir")
    p.add_argument("--resume", help="auto (default) | none | PATH of an HF checkpoint-N folder")
    p.add_argument("--max-failures", type=int, help="worker-group failures to retry from the latest checkpoint")
    p.add_argument("--storage-path", help="Ray Train storage: shared path or s3:// / gs:// URI")
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
    p.add_argument(
        "--target-accuracy",
        type=float,
        help="keep rows only above the lowest calibrated threshold whose accuracy lower bound reaches this, e.g. 0.97",
    )
    p.add_argument("--min-confidence", type=float, help="keep rows whose calibrated confidence is at least this")


def _add_calibrate_parser(sub) -> None:
    p = sub.add_parser("calibrate", help="fit temperature scaling + abstention thresholds; stored in the model folder")
    p.add_argument("--model-path", required=True, help="a local model folder (<run>/model); its meta is updated")
    p.add_argument("--data", required=True, help="labelled FILE (used whole) | DIR or source (its validation split)")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    add_read_flags(p)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")


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
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    p.add_argument("--batch-size", type=int, default=128, help="most rows per forward")
    add_selective_flags(p)
    p.add_argument("--uncalibrated", action="store_true", help="the model's raw probabilities (no temperature)")


def _add_score_parser(sub) -> None:
    p = sub.add_parser("score", help="score review files on Ray Data (one output row per input row)")
    p.add_argument("--config", help="YAML of ScoreOptions fields (jobs/configs/score.yaml); flags override it")
    p.add_argument("--model-path", help="a model folder (<run>/model)")
    p.add_argument("--input", action="append", help="FILE | DIR | GLOB (repeatable)")
    p.add_argument("--output", help="output folder (Ray Data writes one file per block)")
    p.add_argument("--text-column", help="default: text")
    p.add_argument("--id-column", help="column holding ids (default: a column named `id`, else the record number)")
    add_read_flags(p, config_defaults=True)
    p.add_argument("--format", choices=["parquet", "csv", "jsonl"], dest="output_format", help="default: parquet")
    p.add_argument("--columns", help="comma-separated original columns to keep (default: all)")
    p.add_argument("--num-actors", type=int, help="predictor actors (model copies)")
    p.add_argument("--batch-size", type=int, help="rows per Ray Data batch (one predictor call)")
    p.add_argument("--batch-tokens", type=int, help="padded tokens per forward (default: 2048 on CPU, 32768 on GPU)")
    p.add_argument("--cpus-per-actor", type=float, help="also the torch threads per actor")
    p.add_argument("--gpus-per-actor", type=float)
    p.add_argument("--device", help="auto | cpu | cuda")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"])
    p.add_argument("--overwrite", action="store_true", default=None, help="replace a finished output folder")
    add_console_flags(p, "<output>.log beside a local --output")
    add_selective_flags(p)


def _add_evaluation_flags(p) -> None:
    p.add_argument("--config", help="YAML of EvaluateOptions fields (jobs/configs/evaluate.yaml); flags override it")
    p.add_argument("--data", help="FILE (evaluated whole) | DIR of splits | offline | chnsenticorp")
    p.add_argument("--text-column", help="default: text")
    p.add_argument("--label-column", help="default: label")
    p.add_argument("--id-column")
    add_read_flags(p, config_defaults=True)
    p.add_argument("--output-dir")
    p.add_argument("--train-data", help="training rows for the TF-IDF baseline (default: the data's train split)")
    p.add_argument("--max-rows", type=int, help="evaluate only the first N usable rows")
    p.add_argument("--seed", type=int, help="split seed (offline / single file) and perturbation seed (default 42)")
    p.add_argument("--num-actors", type=int)
    p.add_argument("--batch-size", type=int, help="rows per Ray Data batch")
    p.add_argument("--batch-tokens", type=int, help="padded tokens per forward (default: 2048 on CPU, 32768 on GPU)")
    p.add_argument("--cpus-per-actor", type=float)
    p.add_argument("--gpus-per-actor", type=float, help="GPUs per predictor actor (1 with --device cuda)")
    p.add_argument("--device", help="auto | cpu | cuda")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"])
    add_console_flags(p, "<output_dir>.log")


def _add_evaluate_parsers(sub) -> None:
    p = sub.add_parser("evaluate", help="metrics, confidence/calibration, robustness, baselines, plots, report")
    p.add_argument("--model-path", help="a model folder (<run>/model)")
    _add_evaluation_flags(p)
    z = sub.add_parser("zero-shot", help="evaluate a base model with the label-scoring prompt, no training")
    z.add_argument("--model", required=True, help="Hub id, local model folder, or 'tiny'")
    z.add_argument("--max-length", type=int, default=256)
    z.add_argument(
        "--labels-from",
        metavar="RUN_YAML",
        help="a run config whose `labels` (words included) and `prompt` the base model scores; default: binary "
        "sentiment with the default prompt",
    )
    _add_evaluation_flags(z)


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
    _add_data_flags(p)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override any config or tune field, e.g. --set tune.scheduler=none (repeatable)",
    )


def _add_serve_parser(sub) -> None:
    from sentiment_ray.inference.serve_config import ServeConfig

    defaults = {name: field.default for name, field in ServeConfig.model_fields.items()}
    p = sub.add_parser("serve", help="serve model folders over HTTP with Ray Serve (POST /predict)")
    p.add_argument(
        "--config", help="YAML: ServeConfig keys, or a Serve config file (jobs/configs/serve.yaml); flags override"
    )
    p.add_argument("--model-path", help="the default model folder (model id `default`)")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="another model folder, selected per request by id (repeatable)",
    )
    p.add_argument("--host", help=f"bind address (default {defaults['host']}: this machine only)")
    p.add_argument("--port", type=int, help=f"default {defaults['port']}")
    p.add_argument("--replicas", type=int, help=f"default {defaults['replicas']}")
    p.add_argument("--max-batch-size", type=int, help=f"texts per dynamic batch (default {defaults['max_batch_size']})")
    wait_ms = defaults["batch_wait_timeout_s"] * 1000
    p.add_argument("--batch-wait-ms", type=float, help=f"how long a batch waits to fill (default {wait_ms:g})")
    p.add_argument("--max-models-per-replica", type=int, help="LRU bound of loaded models")
    p.add_argument("--cpus-per-replica", type=float, help="CPUs reserved per replica (= torch threads)")
    p.add_argument("--gpus-per-replica", type=float, help="GPUs per replica (1 with --device cuda)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"])


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
        hints = [
            f"{flag}: did you mean {match[0]}?"
            for flag in unknown
            if (match := difflib.get_close_matches(flag, known, 1))
        ]
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
