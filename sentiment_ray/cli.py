"""`sentiment-ray` command line: one subcommand per job; each parses flags and calls the library."""

from __future__ import annotations

import argparse
import json
import sys

from sentiment_ray.errors import SentimentRayError

# Named `train` flags → config field paths; anything else goes through --set section.field=value.
TRAIN_FLAGS = {
    "data": "data.source",
    "text_column": "data.text_column",
    "label_column": "data.label_column",
    "id_column": "data.id_column",
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
    "storage_path": "storage_path",
}


def _add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="fine-tune on Ray Train and write a model folder + metrics")
    p.add_argument("--config", help="YAML config (jobs/configs/*.yaml); flags below override it")
    p.add_argument("--data", help="offline | chnsenticorp | hf:<dataset id> | file | folder of splits")
    p.add_argument("--text-column")
    p.add_argument("--label-column")
    p.add_argument("--id-column")
    p.add_argument("--max-train-samples", type=int)
    p.add_argument("--strategy", choices=["classifier", "label_scoring"])
    p.add_argument("--finetune", choices=["lora", "qlora", "full"])
    p.add_argument("--use-qlora", action="store_true", help="the prototype's flag: same as --finetune qlora")
    p.add_argument("--model", help="Hub id, local model folder, or 'tiny'")
    p.add_argument("--num-workers", type=int)
    p.add_argument("--use-gpu", action="store_true", default=None)
    p.add_argument("--epochs", type=float)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--batch-size", type=int, help="per worker")
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--lora-r", type=int)
    p.add_argument("--output-dir")
    p.add_argument("--resume", help="auto (default) | none | PATH of an HF checkpoint-N folder")
    p.add_argument("--max-failures", type=int, help="worker-group failures to retry from the latest checkpoint")
    p.add_argument("--storage-path", help="Ray Train storage: shared path or s3:// / gs:// URI")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override any config field, e.g. --set train.warmup_ratio=0.05 (repeatable)",
    )


def _add_predict_parser(sub) -> None:
    p = sub.add_parser("predict", help="predict sentiment with a trained model folder")
    p.add_argument("--model-path", required=True, help="a model folder (<run>/model)")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--text", action="append", help="a review to score (repeatable)")
    mode.add_argument("--interactive", action="store_true", help="read reviews from stdin until quit/exit")
    mode.add_argument("--demo", action="store_true", help="score a few built-in example reviews")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    p.add_argument("--batch-size", type=int, default=32)


def _add_score_parser(sub) -> None:
    p = sub.add_parser("score", help="score review files on Ray Data (one output row per input row)")
    p.add_argument("--model-path", required=True, help="a model folder (<run>/model)")
    p.add_argument("--input", required=True, action="append", help="FILE | DIR | GLOB (repeatable)")
    p.add_argument("--output", required=True, help="output folder (Ray Data writes one file per block)")
    p.add_argument("--text-column", default="text")
    p.add_argument("--id-column", help="column holding ids (default: a column named `id`, else the row number)")
    p.add_argument("--format", default="parquet", choices=["parquet", "csv", "jsonl"], dest="output_format")
    p.add_argument("--columns", help="comma-separated original columns to keep (default: all)")
    p.add_argument("--num-actors", type=int, default=1, help="predictor actors (model copies)")
    p.add_argument("--batch-size", type=int, default=64, help="rows per predictor call")
    p.add_argument("--cpus-per-actor", type=float, default=1.0, help="also the torch threads per actor")
    p.add_argument("--gpus-per-actor", type=float, default=0.0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    p.add_argument("--overwrite", action="store_true", help="replace a finished output folder")


def _add_evaluation_flags(p) -> None:
    p.add_argument("--data", required=True, help="FILE (evaluated whole) | DIR of splits | offline | chnsenticorp")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--id-column")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--train-data", help="training rows for the TF-IDF baseline (default: the data's train split)")
    p.add_argument("--max-rows", type=int, help="evaluate only the first N usable rows")
    p.add_argument("--seed", type=int, default=42, help="split seed (offline / single file) and perturbation seed")
    p.add_argument("--num-actors", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--cpus-per-actor", type=float, default=1.0)


def _add_evaluate_parsers(sub) -> None:
    p = sub.add_parser("evaluate", help="metrics, confidence/calibration, robustness, baselines, plots, report")
    p.add_argument("--model-path", required=True, help="a model folder (<run>/model)")
    _add_evaluation_flags(p)
    z = sub.add_parser("zero-shot", help="evaluate a base model with the label-scoring prompt, no training")
    z.add_argument("--model", required=True, help="Hub id, local model folder, or 'tiny'")
    z.add_argument("--max-length", type=int, default=256)
    _add_evaluation_flags(z)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sentiment-ray", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train_parser(sub)
    _add_predict_parser(sub)
    _add_score_parser(sub)
    _add_evaluate_parsers(sub)
    return parser


def cmd_train(args) -> int:
    from ray.train import TrainingFailedError

    from sentiment_ray.config import load_config
    from sentiment_ray.train import run_training

    updates = {path: getattr(args, flag) for flag, path in TRAIN_FLAGS.items() if getattr(args, flag) is not None}
    if args.use_gpu:
        updates["scaling.use_gpu"] = True
    if args.use_qlora:
        updates["model.load_in_4bit"] = True
        updates.setdefault("model.finetune", "qlora")
    cfg = load_config(args.config, overrides=args.set, updates=updates)
    try:
        outcome = run_training(cfg)
    except TrainingFailedError as err:
        print(
            f"error: training failed: {err}\nThe latest checkpoint is kept: rerun the same command with "
            f"--resume auto (output dir {cfg.output_dir}) to continue from it.",
            file=sys.stderr,
        )
        return 1
    test = outcome.test_results["test"]
    print(json.dumps({k: test[k] for k in ("n", "accuracy", "precision", "recall", "f1", "roc_auc")}, indent=2))
    print(f"model folder: {outcome.model_dir}")
    print(f"run folder:   {outcome.output_dir}")
    return 0


DEMO_TEXTS = [
    "这个产品质量非常好，值得购买！",
    "物流太慢了，包装也破了，很失望。",
    "酒店位置不错，服务也很周到，下次还会再来。",
    "屏幕有坏点，客服态度差，不推荐。",
]


def cmd_predict(args) -> int:
    from sentiment_ray.predictor import SentimentPredictor

    predictor = SentimentPredictor.from_pretrained(
        args.model_path, device=args.device, precision=args.precision, batch_size=args.batch_size
    )
    if args.interactive:
        return _interactive(predictor)
    texts = DEMO_TEXTS if args.demo else args.text
    for text, prediction in zip(texts, predictor.predict_batch(texts), strict=True):
        print(json.dumps({"text": text, **prediction}, ensure_ascii=False))
    return 0


def _interactive(predictor) -> int:
    print("Type a review (quit/exit to stop).", flush=True)
    for line in sys.stdin:
        text = line.rstrip("\n")
        if text.strip().lower() in {"quit", "exit"}:
            break
        print(json.dumps(predictor.predict(text), ensure_ascii=False), flush=True)
    return 0


def cmd_score(args) -> int:
    from sentiment_ray.scoring import ScoreOptions, run_scoring
    from sentiment_ray.train import init_ray

    keep = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    opts = ScoreOptions(
        model_path=args.model_path,
        inputs=args.input,
        output=args.output,
        text_column=args.text_column,
        id_column=args.id_column,
        output_format=args.output_format,
        keep_columns=keep,
        num_actors=args.num_actors,
        batch_size=args.batch_size,
        cpus_per_actor=args.cpus_per_actor,
        gpus_per_actor=args.gpus_per_actor,
        device=args.device,
        precision=args.precision,
        overwrite=args.overwrite,
    )
    init_ray()
    summary = run_scoring(opts)
    print(json.dumps({k: v for k, v in summary.items() if k != "files"}, indent=2))
    return 0


def _evaluate_options(args, model_path: str):
    from sentiment_ray.evaluate import EvaluateOptions

    return EvaluateOptions(
        model_path=model_path,
        data=args.data,
        output_dir=args.output_dir,
        text_column=args.text_column,
        label_column=args.label_column,
        id_column=args.id_column,
        train_data=args.train_data,
        seed=args.seed,
        max_rows=args.max_rows,
        num_actors=args.num_actors,
        batch_size=args.batch_size,
        cpus_per_actor=args.cpus_per_actor,
    )


def _print_evaluation(report) -> None:
    metrics = json.loads((report.parent / "metrics.json").read_text())
    print(json.dumps({k: metrics[k] for k in ("n", "accuracy", "macro_f1", "roc_auc")}, indent=2))
    print(f"report: {report}")


def cmd_evaluate(args) -> int:
    from sentiment_ray.evaluate import run_evaluation
    from sentiment_ray.train import init_ray

    init_ray()
    _print_evaluation(run_evaluation(_evaluate_options(args, args.model_path)))
    return 0


def cmd_zero_shot(args) -> int:
    from sentiment_ray.evaluate import run_zero_shot
    from sentiment_ray.train import init_ray

    init_ray()
    _print_evaluation(run_zero_shot(args.model, _evaluate_options(args, ""), max_length=args.max_length))
    return 0


COMMANDS = {
    "train": cmd_train,
    "predict": cmd_predict,
    "score": cmd_score,
    "evaluate": cmd_evaluate,
    "zero-shot": cmd_zero_shot,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except SentimentRayError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
