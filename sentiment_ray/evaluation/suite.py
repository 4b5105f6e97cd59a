"""`sentiment-ray evaluate` / `zero-shot`: the full evaluation suite, predictions computed on Ray Data.

Writes into the output dir: metrics.json, confidence_analysis.json, robustness_result.json,
baseline_comparison.json, four PNG plots and report.md. Every prediction (clean, perturbed,
zero-shot) goes through the same Ray Data scoring pipeline and the same predictor, whatever the strategy.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sentiment_ray.config import PRECISIONS
from sentiment_ray.data.formats import DEFAULT_READ, ReadOptions
from sentiment_ray.errors import DataError
from sentiment_ray.inference import DEFAULT_BATCH_TOKENS
from sentiment_ray.location import Location

log = logging.getLogger(__name__)


@dataclass
class EvaluateOptions:
    model_path: str
    """A model folder (<run>/model), local or a URI (s3://…)."""
    data: str
    """A labelled FILE (evaluated whole), a DIR of splits (its test split), `offline` or `chnsenticorp`."""
    output_dir: str
    """Folder of the report, metrics, plots and predictions; its log goes to <output_dir>.log beside it."""
    text_column: str = "text"
    """Column holding the review text."""
    label_column: str = "label"
    """Column holding the label."""
    id_column: str | None = None
    """Column holding record ids; none: the record's position in its file."""
    read_options: ReadOptions = field(default=DEFAULT_READ, metadata={"flag": None})
    """Encoding, quoting and sheet of the data files."""
    train_data: str | None = None
    """Training rows for the TF-IDF baseline; default: the data source's own train split, else the model's."""
    seed: int = 42
    """Seed of the data split (offline corpus / single file) and of the perturbations."""
    max_rows: int | None = None
    """Evaluate at most this many rows (the first ones), e.g. for a quick look."""
    zero_shot_baseline: bool = field(default=True, metadata={"flag": None})
    """Also score the base model zero-shot (no flag: `zero-shot` evaluates a base alone)."""
    num_actors: int | None = None
    """Predictor actors (model copies); none: sized to the CPUs (or GPUs) Ray offers, as `score` does."""
    batch_size: int = 512
    """Rows per Ray Data batch (one predictor call)."""
    batch_tokens: int | None = field(default=None, metadata={"shown_default": DEFAULT_BATCH_TOKENS})
    """Padded tokens per forward; none: the predictor's default for its device."""
    cpus_per_actor: float | None = None
    """CPUs each actor reserves, also its torch threads; none: sized with num_actors."""
    gpus_per_actor: float | None = None
    """GPUs each actor reserves; none: 1 on a cluster with GPUs (or with device cuda), else 0."""
    device: str = "auto"
    """auto | cpu | cuda: where each actor runs its predictor."""
    precision: str = field(default="auto", metadata={"choices": PRECISIONS})
    """Weights and compute dtype (auto: bf16 on GPUs that support it and on CPUs with AVX512-BF16 or AMX, else fp32)."""


class RayDataPredictions:
    """predict_fn(texts) -> Prediction dicts in input order, computed by the Ray Data scoring pipeline."""

    def __init__(self, model_path: str, workdir: Path, opts: EvaluateOptions, tally: dict | None = None, labels=None):
        self.model_path, self.workdir, self.opts = model_path, workdir, opts
        self.tally = tally if tally is not None else new_tally()  # shared by every pipeline of one evaluation
        self.labels = labels  # the model's classes (None: binary sentiment): which prob columns the output has

    def __call__(self, texts: list) -> list[dict]:
        from sentiment_ray.inference.batch import ScoreOptions, prediction_columns, read_output, run_scoring

        started = time.monotonic()
        self.tally["jobs"] += 1
        source = self.workdir / f"texts-{self.tally['jobs']}.parquet"
        pd.DataFrame({"text": pd.Series(texts, dtype=object)}).to_parquet(source)
        output = self.workdir / f"predictions-{self.tally['jobs']}"
        summary = run_scoring(
            ScoreOptions(
                model_path=self.model_path,
                inputs=[str(source)],
                output=str(output),
                num_actors=self.opts.num_actors,
                batch_size=self.opts.batch_size,
                batch_tokens=self.opts.batch_tokens,
                cpus_per_actor=self.opts.cpus_per_actor,
                gpus_per_actor=self.opts.gpus_per_actor,
                device=self.opts.device,
                precision=self.opts.precision,
                overwrite=True,
            )
        )
        frame = read_output(output)
        if len(frame) != len(texts):
            raise RuntimeError(f"scoring returned {len(frame)} rows for {len(texts)} texts")
        columns = prediction_columns(self.labels)
        frame = frame[columns].astype(object).where(frame[columns].notna(), None)
        self.tally["texts_scored"] += len(texts)
        self.tally["actors"] = summary["actors"]  # the layout of the latest job (each sizes its own)
        self.tally["seconds"] = round(self.tally["seconds"] + time.monotonic() - started, 3)
        return frame.to_dict("records")


def new_tally() -> dict:
    """What an evaluation's scoring cost: Ray Data jobs (one model load each), texts scored, their wall seconds, and
    the actor layout."""
    return {"jobs": 0, "texts_scored": 0, "seconds": 0.0, "actors": None}


def evaluation_rows(opts: EvaluateOptions, labels=None) -> tuple[pd.DataFrame, pd.DataFrame | None, dict]:
    """(rows to evaluate, training rows for the TF-IDF baseline or None, report about both). `labels`: the model's
    classes, which the label column is read as (None: binary sentiment); a value naming none is an unusable row."""
    from sentiment_ray.data import load_splits, read_reviews
    from sentiment_ray.labels import binary_sentiment

    kw = {"text_column": opts.text_column, "label_column": opts.label_column, "id_column": opts.id_column}
    kw["labels"] = labels or binary_sentiment()
    conservation = None
    data = Location.of(opts.data).local_copy()  # s3://…: this node's cached copy; a local path: itself
    if data.is_file():  # a file is evaluated whole
        rows = read_reviews(data, **kw, require_label=True, options=opts.read_options)
        conservation = rows.attrs["file"]
        train = None
    else:
        splits = load_splits(opts.data, **kw, seed=opts.seed, read_options=opts.read_options)
        rows, train = splits.test, splits.train
    unusable = rows[rows["problem"].notna()]
    usable = rows[rows["problem"].isna()]
    rows = usable.head(opts.max_rows) if opts.max_rows else usable
    if rows.empty:
        raise DataError(f"{opts.data}: no row with both text and a known label to evaluate")
    if opts.train_data:
        train = load_splits(opts.train_data, **kw, seed=opts.seed, read_options=opts.read_options).train
    report = {
        "data": opts.data,
        "rows": len(rows),
        "unusable_rows_skipped": len(unusable),
        "rows_beyond_max_rows": len(usable) - len(rows),
        "unusable_examples": unusable.head(5)[["source_row", "problem"]].to_dict("records"),
    }
    if conservation is not None:  # every record of the file: evaluated + skipped (+ beyond --max-rows)
        accounted = len(rows) + len(unusable) + report["rows_beyond_max_rows"]
        if accounted != conservation["records"]:
            raise DataError(f"{opts.data}: {conservation['records']} records but {accounted} accounted for")
        report["file"] = conservation
    return rows.reset_index(drop=True), train, report


def run_evaluation(opts: EvaluateOptions) -> Path:
    from sentiment_ray.evaluation.baselines import baseline_comparison
    from sentiment_ray.evaluation.confidence import confidence_analysis
    from sentiment_ray.evaluation.report import write_evaluation
    from sentiment_ray.evaluation.robustness import robustness_result, score_variants
    from sentiment_ray.evaluation.selective import evaluation_shift, selective_result
    from sentiment_ray.inference.batch import precheck_layout
    from sentiment_ray.inference.predictor import token_lengths
    from sentiment_ray.models.folder import labels_of, prepare_folder_base
    from sentiment_ray.provenance import provenance
    from sentiment_ray.runtime import check_durable, check_local_output, init_ray

    check_local_output(opts.output_dir, "--output-dir")
    check_durable(opts.output_dir, "--output-dir")  # inside a Ray job: never into its temporary working dir
    precheck_layout(opts)  # the least the predictor actors ask for fits, before anything starts
    meta = prepare_folder_base(opts.model_path)  # before any actor starts: builds a tiny base once
    classes = labels_of(meta)
    rows, train, data_report = evaluation_rows(opts, classes)
    init_ray()  # after the folder and the data are known to be good
    if train is None:
        train = _model_training_rows(meta, opts)
    texts, labels = rows["text"].tolist(), rows["label"].astype(int).to_numpy()
    with tempfile.TemporaryDirectory(prefix="sentiment-eval-") as tmp:
        predict = RayDataPredictions(opts.model_path, Path(tmp), opts, tally := new_tally(), classes)
        scored = score_variants(predict, texts, seed=opts.seed)  # one scoring job: clean + every perturbation
        predictions = scored.clean
        metrics = {**_metrics(labels, predictions, classes), "data": data_report}
        probs = class_probabilities(predictions, classes)
        names = None if classes.binary_sentiment else classes.names  # binary keeps its prob_positive keys
        confidence = confidence_analysis(labels, probs, texts, rows["id"].tolist(), names=names)
        selective = selective_result(labels.tolist(), probs, meta.get("calibration"), meta.get("calibrations"))
        metrics["shift"] = evaluation_shift(meta.get("calibration"), probs, token_lengths(opts.model_path, texts))
        log_shift(metrics["shift"])
        robustness = robustness_result(predict, texts, labels.tolist(), seed=opts.seed, scored=scored)
        baselines = _baselines(meta, opts, Path(tmp), texts, labels, train, tally)
    metrics["scoring"] = tally
    comparison = baseline_comparison(metrics, baselines, model_name=_model_name(meta))
    origin = provenance()
    report_meta = {
        "model": opts.model_path,
        "base_model": meta["base_model"],
        "strategy": meta["strategy"],
        "finetune": meta["finetune"],
        "dataset": opts.data,
        "n_test": len(rows),
        **{"machine": origin["machine"], "command": origin["command"], "created": origin["created_at"]},
    }
    metrics["provenance"] = {**origin, "model_path": opts.model_path, "base_model": meta["base_model"]}
    return write_evaluation(
        opts.output_dir,
        metrics=metrics,
        confidence=confidence,
        robustness=robustness,
        baselines=comparison,
        meta=report_meta,
        selective=selective,
    )


def log_shift(verdict: dict) -> None:
    from sentiment_ray.shift import warning_line

    line = warning_line(verdict)
    if line:
        log.warning(line)


def class_probabilities(predictions: list[dict], labels) -> list:
    """Per prediction row, its class probabilities: P(positive) for binary sentiment, else the N `prob_<class>`
    values in class order; None for a row with an error."""
    if labels.binary_sentiment:
        return [p["prob_positive"] if p["error"] is None else None for p in predictions]
    return [[p[f"prob_{name}"] for name in labels.names] if p["error"] is None else None for p in predictions]


def _metrics(labels: np.ndarray, predictions: list[dict], classes) -> dict:
    """`metrics.class_metrics` of the rows with a prediction, predicted as the predictor predicts (calibration.py)."""
    from sentiment_ray.calibration import as_matrix, predicted_ids
    from sentiment_ray.metrics import class_metrics

    probs = class_probabilities(predictions, classes)
    scored = [i for i, p in enumerate(probs) if p is not None]
    matrix = as_matrix([probs[i] for i in scored]) if scored else np.zeros((0, len(classes.names)))
    metrics = class_metrics(labels[scored], matrix, classes.names, predicted=predicted_ids(matrix))
    return {**metrics, "rows_with_prediction_error": len(predictions) - len(scored)}


def _model_name(meta: dict) -> str:
    return f"{meta['strategy']} ({meta['finetune']}, base {meta['base_model']})"


def _model_training_rows(meta: dict, opts: EvaluateOptions) -> pd.DataFrame | None:
    """The training split the model itself used (from its saved config), when it can be loaded here."""
    from sentiment_ray.data import load_splits
    from sentiment_ray.models.folder import labels_of

    data = meta.get("config", {}).get("data", {})
    try:
        return load_splits(
            data["source"],
            text_column=data["text_column"],
            label_column=data["label_column"],
            id_column=data.get("id_column"),
            seed=meta["config"]["train"]["seed"],
            labels=labels_of(meta),
        ).train
    except Exception as err:  # noqa: BLE001 - a missing baseline is reported, never fatal
        log.info("TF-IDF baseline skipped: the model's training data cannot be loaded here (%s)", err)
        return None


def _baselines(meta, opts, workdir: Path, texts, labels, train, tally: dict) -> dict:
    """The zero-shot base model with the folder's prompt and label words, and TF-IDF on the training rows."""
    from sentiment_ray.evaluation.baselines import tfidf_baseline
    from sentiment_ray.models.folder import ZERO_SHOT, labels_of, prompt_of, save_zero_shot_folder

    baselines, classes = {}, labels_of(meta)
    if opts.zero_shot_baseline and meta["finetune"] != ZERO_SHOT:
        base, tiny_seed = meta["base_model"], meta.get("tiny_seed", 0)
        zero_shot = workdir / "zero-shot"
        folder = save_zero_shot_folder(base, zero_shot, prompt_of(meta), meta["max_length"], tiny_seed, classes)
        predictions = RayDataPredictions(str(folder), workdir, opts, tally, classes)(texts)
        baselines["zero-shot"] = {
            "metrics": _metrics(labels, predictions, classes),
            "description": f"label scoring with the prompt and label words on the untouched base model {base}",
        }
    if train is not None:
        train_labels = train["label"].astype(int).tolist()
        baselines["tfidf-char-ngram"] = tfidf_baseline(
            train["text"].tolist(), train_labels, texts, labels.tolist(), seed=opts.seed, names=classes.names
        )
    return baselines


def run_zero_shot(model: str, opts: EvaluateOptions, prompt=None, max_length: int | None = None, labels=None) -> Path:
    """Evaluate the base model itself with the label-scoring prompt and `labels`' words (None: binary sentiment), as
    a zero-shot model folder in output_dir; `max_length` None: a run config's default."""
    from sentiment_ray.config import DataConfig, PromptConfig
    from sentiment_ray.models.folder import save_zero_shot_folder
    from sentiment_ray.models.folder_check import check_base_name
    from sentiment_ray.runtime import check_local_output

    check_local_output(opts.output_dir, "--output-dir")  # before a model folder is written into it
    check_base_name(model)  # a wrong local path fails at once, not after a Hub lookup
    folder = Path(opts.output_dir) / "model"
    max_length = max_length or DataConfig().max_length
    folder = save_zero_shot_folder(model, folder, prompt or PromptConfig(), max_length, labels=labels)
    opts.model_path, opts.zero_shot_baseline = str(folder), False
    return run_evaluation(opts)
