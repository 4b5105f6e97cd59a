"""`sentiment-ray` command line: one subcommand per job; each parses flags and calls the library."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sentiment_ray.cli.config_command import cmd_config
from sentiment_ray.cli.folder_commands import cmd_calibrate, cmd_export, cmd_info
from sentiment_ray.cli.job_options import job_options
from sentiment_ray.cli.option_flags import given
from sentiment_ray.cli.parsers import TRAIN_FIELDS, TUNE_FIELDS, build_parser, config_flag_values
from sentiment_ray.cli.predict_command import cmd_predict
from sentiment_ray.console import console_mode, job_log_file
from sentiment_ray.errors import SentimentRayError


def cmd_train(args) -> int:
    from ray.train import TrainingFailedError

    from sentiment_ray.config import load_config
    from sentiment_ray.console import console_mode
    from sentiment_ray.location import Location
    from sentiment_ray.training.driver import TRAIN_LOG, has_resumable_checkpoint, run_dir, run_training

    updates = config_flag_values(args, TRAIN_FIELDS)
    if args.use_qlora:
        updates["model.load_in_4bit"] = True
        updates.setdefault("model.finetune", "qlora")
    cfg = load_config(args.config, overrides=args.set, updates=updates)
    log_file = console_mode(args.verbose, args.quiet, run_dir(Location.of(cfg.output_dir)) / TRAIN_LOG)
    try:
        outcome = run_training(cfg)
    except TrainingFailedError as err:
        print(f"error: training failed: {err}", file=sys.stderr)
        if log_file is not None:
            print(f"details: {log_file}", file=sys.stderr)
        if has_resumable_checkpoint(cfg):  # only then is there anything to resume
            print(
                f"The latest checkpoint is kept: rerun the same command with --resume auto (output dir "
                f"{cfg.output_dir}) to continue from it.",
                file=sys.stderr,
            )
        return 1
    print_train_summary(outcome, log_file)
    return 0


def print_train_summary(outcome, log_file: Path | None) -> None:
    test, train = outcome.test_results["test"], outcome.train_results
    tiny = " (tiny model: random-init weights, not Qwen2.5's numbers)" if train.get("tiny_model") else ""
    if train.get("random_weights") and not tiny:
        tiny = f" (random weights at {train['model']}'s shape: the accuracy means nothing)"
    f1 = f"F1 {test['f1']:.3f}" if "f1" in test else f"macro-F1 {test['macro_f1']:.3f}"  # two classes: class 1's
    auc = "n/a" if test.get("roc_auc") is None else f"{test['roc_auc']:.3f}"
    print(
        f"[train] done in {train['wall_time_s']:.0f}s: test accuracy {test['accuracy']:.3f}, {f1}, "
        f"ROC-AUC {auc} on {test['n']} reviews{tiny}"
    )
    if train.get("best_step") is not None and train.get("global_step", 0) < train.get("max_steps", 0):
        print(
            f"early stopping: stopped at step {train['global_step']} of {train['max_steps']}, kept step "
            f"{train['best_step']}'s weights (best validation {train['best_metric']:.4f})"
        )
    print(f"model folder: {outcome.model_dir}")
    print(f"run folder:   {outcome.output_dir}")
    if log_file is not None:
        print(f"full log:     {log_file}")


def cmd_score(args) -> int:
    from sentiment_ray.inference.batch import ScoreOptions, run_scoring

    opts = job_options(ScoreOptions, args.config, given(args, ScoreOptions) | _read_flags(args))
    log_file = console_mode(args.verbose, args.quiet, job_log_file("score", opts.output), True, args.json)
    summary = run_scoring(opts)  # checks the model folder and every input before it starts Ray
    if args.json:  # stdout is this one JSON object: scripts parse it
        shown = {k: v for k, v in summary.items() if k != "files"} | ({"log_file": str(log_file)} if log_file else {})
        print(json.dumps(shown, indent=2))
        return 0
    print_score_summary(summary, opts.output_format)
    _print_log_file(log_file)
    return 0


def print_score_summary(summary: dict, output_format: str) -> None:
    errors = summary["rows_with_error"]
    print(
        f"[score] done: {summary['rows_written']:,} rows from {len(summary['inputs'])} file(s) in "
        f"{summary['seconds']:.0f}s ({summary['rows_per_s']:,.0f} rows/s), {errors:,} with an error"
    )
    print(f"actors:   {summary['actors']}")
    if "selection" in summary:
        print(f"selection: {json.dumps(summary['selection'], ensure_ascii=False)}")
    if "shift" in summary:
        print(f"shift:    {shift_summary(summary['shift'])}")
    print(f"output:   {summary['output']} ({output_format})")


def shift_summary(verdict: dict) -> str:
    """The shift check in one line (sentiment_ray/shift.py): its verdict, the rows and calibration it compared."""
    if not verdict.get("checked"):
        return f"not checked: {verdict['reason']}"
    tests = ", ".join(f"{k} p={v['p_value']:.2g}" for k, v in verdict["tests"].items())
    what = f"{verdict['rows']:,} rows vs {verdict['calibration_rows']:,} of calibration {verdict['calibration']}"
    if verdict["shifted"]:
        return f"SHIFTED in {', '.join(verdict['shifted_tests'])} ({what}; {tests}): {verdict['advice']}"
    return f"like the calibration rows ({what}; {tests})"


def _print_log_file(log_file) -> None:
    if log_file is not None:
        print(f"full log: {log_file}")


def _read_flags(args) -> dict:
    return {"encoding": args.encoding, "quoting": args.quoting, "sheet": args.sheet}


def _evaluate_options(args, model_path: str | None):
    from sentiment_ray.evaluation.suite import EvaluateOptions

    flags = given(args, EvaluateOptions) | _read_flags(args)
    return job_options(EvaluateOptions, args.config, flags | {"model_path": model_path})


def _print_evaluation(report, log_file, as_json: bool) -> None:
    metrics = json.loads((report.parent / "metrics.json").read_text())
    headline = {k: metrics.get(k) for k in ("n", "accuracy", "macro_f1", "roc_auc")}
    if as_json:  # stdout is this one JSON object: scripts parse it
        extra = {"shift": metrics.get("shift"), "report": str(report)} | (
            {"log_file": str(log_file)} if log_file else {}
        )
        print(json.dumps(headline | extra, indent=2))
        return
    auc = "n/a" if headline["roc_auc"] is None else f"{headline['roc_auc']:.3f}"
    print(
        f"[evaluate] done: {headline['n']:,} reviews, accuracy {headline['accuracy']:.3f}, "
        f"macro-F1 {headline['macro_f1']:.3f}, ROC-AUC {auc}"
    )
    scoring = metrics.get("scoring", {})
    texts, jobs = scoring.get("texts_scored", 0), scoring.get("jobs", 0)
    print(f"scoring:  {texts:,} texts in {jobs} job(s), {scoring.get('actors')}")
    if metrics.get("shift"):
        print(f"shift:    {shift_summary(metrics['shift'])}")
    print(f"report:   {report}")
    _print_log_file(log_file)


def cmd_evaluate(args) -> int:
    from sentiment_ray.evaluation.suite import run_evaluation

    opts = _evaluate_options(args, args.model_path)
    log_file = console_mode(args.verbose, args.quiet, job_log_file("evaluate", opts.output_dir), True, args.json)
    _print_evaluation(run_evaluation(opts), log_file, args.json)
    return 0


def cmd_zero_shot(args) -> int:
    from sentiment_ray.evaluation.suite import run_zero_shot

    opts = _evaluate_options(args, "zero-shot")
    prompt, labels = None, None
    if args.labels_from:  # the classes and words a training run would use (docs/guide/training.md, Classes)
        from sentiment_ray.config import load_config

        run = load_config(args.labels_from)
        prompt, labels = run.prompt, run.label_set()
    log_file = console_mode(args.verbose, args.quiet, job_log_file("zero-shot", opts.output_dir), True, args.json)
    _print_evaluation(run_zero_shot(args.model, opts, prompt, args.max_length, labels), log_file, args.json)
    return 0


def tune_configs(args):
    """(RunConfig, TuneConfig) from `tune`'s YAML, its named flags (the data flags as in `train`) and --set."""
    from sentiment_ray.tuning.space import load_tune_config

    flags = {"tune.num_samples": args.num_samples, "tune.max_concurrent": args.max_concurrent}
    flags.update(config_flag_values(args, TUNE_FIELDS))
    updates = {k: v for k, v in {**flags, "output_dir": args.output_dir}.items() if v is not None}
    return load_tune_config(args.config, overrides=args.set, updates=updates)


def cmd_tune(args) -> int:
    from sentiment_ray.tuning.sweep import run_tune

    cfg, tc = tune_configs(args)
    log_file = console_mode(args.verbose, args.quiet, Path(cfg.output_dir) / "tune.log")
    outcome = run_tune(cfg, tc, tables=not args.quiet)
    statuses = [row["status"] for row in outcome.rows]
    counts = ", ".join(f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses))
    print(f"trials: {len(statuses)} ({counts})" + (", restored from an earlier run" if outcome.restored else ""))
    print(f"table:      {outcome.output_dir / 'trials.md'} (and trials.csv, sweep.png)")
    if outcome.best is None:
        print("sweep interrupted: rerun the same command to resume it (finished trials are kept)", file=sys.stderr)
        return 1
    best = outcome.best
    print(
        f"best trial: {best['trial_id']} lora_r={best['lora_r']} learning_rate={best['learning_rate']:.2e} "
        f"{tc.metric}={best[f'last_{tc.metric}']:.4f} (chosen among completed trials)"
    )
    print(f"best model: {outcome.best_dir}")
    print(f"wall time:  {outcome.wall_s:.0f}s")
    _print_log_file(log_file)
    return 0


def serve_config_of(args):
    """The ServeConfig of `serve`'s flags over its --config YAML (ServeConfig's defaults under both)."""
    from sentiment_ray.errors import ConfigError
    from sentiment_ray.inference.serve_config import ServeConfig, load_serve_yaml, serve_config

    values = load_serve_yaml(args.config) if args.config else {}
    models = dict(values.get("models") or {})
    for item in args.model:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(f"--model {item!r} must look like NAME=PATH")
        models[name.strip()] = path.strip()
    flags = given(args, ServeConfig)
    if args.batch_wait_ms is not None:
        flags["batch_wait_timeout_s"] = args.batch_wait_ms / 1000
    values |= {k: v for k, v in flags.items() if v is not None} | ({"models": models} if models else {})
    if "model_path" not in values:
        raise ConfigError("serve needs a model folder: --model-path PATH (or model_path in --config)")
    return serve_config(values, args.config or "serve")


def cmd_serve(args) -> int:
    from sentiment_ray.cli.stop_signals import StopSignals, shutdown_serve
    from sentiment_ray.inference.serve import run

    cfg = serve_config_of(args)
    log_file = console_mode(args.verbose, args.quiet, job_log_file("serve", None))
    stop = StopSignals()  # from here on SIGTERM and Ctrl-C stop `serve`, also while it starts
    try:
        run(cfg, on_ray_connected=stop.install)  # checks the model folders and the replicas' resources before Ray
    except KeyboardInterrupt:
        if not stop.received:
            raise
        print(f"{stop.name()}: shutting Serve down (it was still starting)", flush=True)
        shutdown_serve()
        return 0
    stop.serving()
    names = ", ".join(cfg.all_models())
    print(f"serving {names} on http://{cfg.host}:{cfg.port} (POST /predict); Ctrl-C stops", flush=True)
    if log_file is not None:
        print(f"full log: {log_file}", flush=True)
    stop.wait()
    print(f"{stop.name()}: shutting Serve down", flush=True)
    shutdown_serve()
    return 0


COMMANDS = {
    "train": cmd_train,
    "predict": cmd_predict,
    "score": cmd_score,
    "evaluate": cmd_evaluate,
    "zero-shot": cmd_zero_shot,
    "serve": cmd_serve,
    "tune": cmd_tune,
    "export": cmd_export,
    "calibrate": cmd_calibrate,
    "config": cmd_config,
    "info": cmd_info,
}


def main(argv: list[str] | None = None) -> int:
    from sentiment_ray.console import show_progress

    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):  # a bare `sentiment-ray`: what it can do, not an error
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    show_progress()  # the library's progress records ([train] ..., [tune] ...) on stdout
    try:
        return COMMANDS[args.command](args)
    except SentimentRayError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
