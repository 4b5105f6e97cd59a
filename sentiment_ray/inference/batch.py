"""Offline batch scoring on Ray Data: read review files → stateful predictor actors → write predictions.

Exactly one output row per input record, ids preserved, bad records carried with an `error`: the read counts
each file's records as it goes (`ray_source`, into the job's RowCounter) and the driver checks the rows written
against that count.
Resumable:
Ray Data's checkpointing records which `row_key`s were written, in `<output>.checkpoint/`; a rerun
of the same command after a crash writes only the rows that are missing, and the checkpoint folder
is deleted when a run completes.
"""

from __future__ import annotations

import dataclasses
import os
import time

import pandas as pd

from sentiment_ray.data.ray_source import META_COLUMNS
from sentiment_ray.errors import DataError
from sentiment_ray.inference.batch_inputs import describe_inputs, expand_inputs
from sentiment_ray.inference.batch_output import (
    checkpoint_dir,
    count_errors,
    count_kept,
    count_rows,
    prepare_output,
    read_output,
    write,
)
from sentiment_ray.inference.output_lock import output_lock
from sentiment_ray.inference.progress import ScoreProgress, counter_actor, log, progress_line, stop_job_actors
from sentiment_ray.inference.promise import job_shift, selection_on_driver
from sentiment_ray.inference.score_options import FORMATS, ScoreOptions
from sentiment_ray.location import Location

__all__ = [
    "PREDICTION_COLUMNS",
    "ScoreOptions",
    "checkpoint_dir",
    "describe_inputs",
    "expand_inputs",
    "read_output",
    "run_scoring",
]

PREDICTION_COLUMNS = ["label", "label_id", "confidence", "prob_positive", "error"]
"""The prediction columns of binary sentiment; other classes get `prob_<class name>` columns (`prediction_columns`)."""


def prediction_columns(labels=None) -> list[str]:
    """The output's prediction columns for a model's classes (None or binary sentiment: PREDICTION_COLUMNS)."""
    if labels is None or labels.binary_sentiment:
        return list(PREDICTION_COLUMNS)
    return ["label", "label_id", "confidence", *(f"prob_{name}" for name in labels.names), "error"]


SELECTIVE_COLUMNS = ["abstained", "threshold", "reason"]
"""Added with --target-accuracy / --min-confidence (the predictor's selective-prediction fields)."""


class PredictorActor:
    """Ray Data map_batches class: loads the model once per actor, then scores pandas batches."""

    def __init__(
        self,
        model_path: str,
        text_column: str,
        device: str,
        precision: str,
        threads: int,
        fail_on_file: str | None = None,
        batch_tokens: int | None = None,
        selective: dict | None = None,
        counter=None,
        calibration: str | None = None,
    ):
        import torch

        from sentiment_ray.inference.predictor import SentimentPredictor

        torch.set_num_threads(max(1, threads))
        self.predictor = SentimentPredictor.from_pretrained(
            model_path, device=device, precision=precision, batch_tokens=batch_tokens
        )
        self.text_column = text_column
        self.fail_on_file = fail_on_file
        self.selective = selective or {}
        self.calibration = calibration
        self.counter = counter  # the job's RowCounter actor (progress.py), or None
        if counter is not None:
            import ray

            counter.register.remote(ray.get_runtime_context().current_actor)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        if self.fail_on_file and batch["source_file"].str.contains(self.fail_on_file, regex=False).any():
            raise RuntimeError(f"fault injection: SENTIMENT_RAY_SCORE_FAIL_ON={self.fail_on_file!r}")
        texts = batch[self.text_column].tolist() if self.text_column in batch else [None] * len(batch)
        readable = batch["read_error"].isna().tolist()
        texts = [_missing_to_none(t) if ok else None for t, ok in zip(texts, readable, strict=True)]
        predictions = self.predictor.predict_batch(texts, calibration=self.calibration, **self.selective)
        out = pd.DataFrame(predictions, index=batch.index)
        labels, probs = self.predictor.labels, out.pop("probs")
        if not labels.binary_sentiment:  # one column per class, right after `confidence`
            at = out.columns.get_loc("confidence") + 1
            for i, name in enumerate(labels.names):
                column = [p[name] if isinstance(p, dict) else None for p in probs]
                out.insert(at + i, f"prob_{name}", pd.Series(column, index=batch.index, dtype="Float64"))
        if self.selective:  # one arrow type per column in every block, whatever a block holds
            out["abstained"] = out["abstained"].astype("boolean")
            out["threshold"] = out["threshold"].astype("Float64")
            out["reason"] = pd.Series([r if isinstance(r, str) else None for r in out["reason"]], index=batch.index)
        # read errors win over prediction errors; plain str/None keeps one arrow type across blocks
        out["error"] = pd.Series(
            [_first_message(r, e) for r, e in zip(batch["read_error"], out["error"], strict=True)],
            index=batch.index,
            dtype=object,
        )
        out["label_id"] = out["label_id"].astype("Int64")
        inputs = batch.drop(columns=["read_error"]).rename(columns=input_column_names(batch, labels))
        if self.counter is not None:
            self.counter.add.remote(len(batch), predictions.tally)  # not awaited: never slows scoring down
        return pd.concat([inputs, out], axis=1)


def _missing_to_none(value):
    """pandas hands a missing text over as NaN or pd.NA; the predictor's contract says None."""
    if isinstance(value, str) or value is None:
        return value
    try:
        return None if pd.isna(value) is True else value
    except (TypeError, ValueError):  # arrays and other non-scalars: not missing, just not text
        return value


def _first_message(*candidates) -> str | None:
    """The first real message (pandas 3 turns a missing string into NaN, which is no message)."""
    return next((c for c in candidates if isinstance(c, str)), None)


def input_column_names(columns, labels=None) -> dict[str, str]:
    """Input columns that share a name with a prediction column are kept as `input_<name>` (e.g. the
    input's `label` becomes `input_label` beside the predicted `label`)."""
    predicted = prediction_columns(labels)
    return {c: f"input_{c}" for c in columns if c in predicted}


def build_pipeline(opts: ScoreOptions, files: list[Location], labels=None, counter=None):
    """Read → map_batches(PredictorActor) → select columns (the write happens in `run_scoring`)."""
    import ray.data

    from sentiment_ray.data.ray_source import ReviewFileDatasource

    source = ReviewFileDatasource(
        files, text_column=opts.text_column, id_column=opts.id_column, options=opts.read_options, counter=counter
    )
    ds = ray.data.read_datasource(source)
    ds = ds.map_batches(
        PredictorActor,
        batch_format="pandas",
        batch_size=opts.batch_size,
        compute=ray.data.ActorPoolStrategy(size=opts.num_actors),
        num_cpus=opts.cpus_per_actor,
        num_gpus=opts.gpus_per_actor,
        fn_constructor_kwargs={
            "model_path": Location.of(opts.model_path),  # a URI: each actor reads its node's cached copy
            "text_column": opts.text_column,
            "device": opts.device,
            "precision": opts.precision,
            "threads": int(max(1, opts.cpus_per_actor)),
            "batch_tokens": opts.batch_tokens,
            "selective": selective_request(opts),
            "calibration": opts.calibration,
            # test hook: fail every batch from files whose path contains this string
            "fail_on_file": os.environ.get("SENTIMENT_RAY_SCORE_FAIL_ON"),
            "counter": counter,
        },
    )
    if opts.keep_columns is not None:
        kept = [input_column_names([c], labels).get(c, c) for c in opts.keep_columns]
        selective = SELECTIVE_COLUMNS if selective_request(opts) else []
        ds = ds.select_columns([*kept, *META_COLUMNS[:-1], *prediction_columns(labels), *selective])
    return ds


def selective_request(opts: ScoreOptions) -> dict:
    """The predictor's selective-prediction arguments of this job ({} for a plain one)."""
    request = {"target_accuracy": opts.target_accuracy, "min_confidence": opts.min_confidence}
    return {k: v for k, v in request.items() if v is not None}


def run_scoring(opts: ScoreOptions) -> dict:
    from sentiment_ray.models.folder import prepare_folder_base
    from sentiment_ray.runtime import check_durable

    begun = time.monotonic()
    check_durable(opts.output, "--output")  # inside a Ray job: never into its temporary working dir
    precheck_layout(opts)
    if opts.output_format not in FORMATS:
        raise DataError(f"--format {opts.output_format!r} is not one of {', '.join(FORMATS)}")
    output = Location.of(opts.output)
    files = expand_inputs(opts.inputs)
    meta = prepare_folder_base(opts.model_path)  # fail before starting actors when the folder is wrong; build base
    selection = selection_on_driver(opts, meta)  # a bad target fails here, before Ray starts
    inputs = describe_inputs(files, opts)  # header and column checks, encodings: before Ray works
    with output_lock(output):  # one job per output: a second one refuses, naming the first
        return _score(opts, output, files, meta, selection, inputs, begun)


def _score(
    opts: ScoreOptions, output: Location, files: list[Location], meta: dict, selection, inputs: list[dict], begun: float
) -> dict:
    """run_scoring once its checks passed and it holds the output's lock."""
    import ray.data
    from ray.data.checkpoint import CheckpointConfig

    from sentiment_ray.models.folder import labels_of
    from sentiment_ray.runtime import init_ray

    prepare_output(opts, output)
    checked = time.monotonic()
    init_ray()  # a no-op when Ray is up already (evaluation, tests)
    layout = sized_layout(opts, meta)
    opts = dataclasses.replace(
        opts, num_actors=layout.num_actors, cpus_per_actor=layout.cpus_per_actor, gpus_per_actor=layout.gpus_per_actor
    )
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # output blocks follow input order
    context.checkpoint_config = CheckpointConfig(id_column="row_key", checkpoint_path=checkpoint_dir(output).text)
    counter = counter_actor()
    already = count_rows(output, opts.output_format)  # by an interrupted run of this output: resumed, not redone
    started = time.monotonic()
    try:
        with ScoreProgress(counter, len(files), already_done=already):
            write(build_pipeline(opts, files, labels_of(meta), counter), output, opts.output_format)
        records = records_read(counter, inputs, output)
        shift = job_shift(meta, opts.calibration, counter, records - already)
    except Exception as err:
        if "No space left on device" in f"{err!r} {err}":  # a worker's OSError (errno 28), as Ray re-raises it
            raise DataError(
                f"--output {output}: no space left on device while writing scored rows; free space and run the same "
                "command again: it resumes, keeping the rows written (or score into another --output)"
            ) from err
        raise
    finally:  # the context is process-global: later pipelines (e.g. evaluation's) must not inherit it
        context.checkpoint_config = None
        stop_job_actors(counter)  # a failed job's actors would otherwise keep their CPUs (progress.py)
    elapsed = time.monotonic() - started
    rows = count_rows(output, opts.output_format)
    if rows != records:  # the conservation contract: one row per record, none lost, none merged
        raise DataError(f"scoring wrote {rows} rows for {records} input records in {output}; please report")
    log.info(progress_line(rows, records, elapsed, rows - already))
    phases = {"checks_s": checked - begun, "ray_and_layout_s": started - checked, "scoring_s": elapsed}
    return {
        "files": [f.text for f in files],
        "inputs": inputs,
        "output": str(output),
        "records": records,
        "rows_written": rows,
        "rows_with_error": count_errors(output, opts.output_format),
        "seconds": elapsed,
        "rows_per_s": rows / elapsed if elapsed else None,
        "num_actors": layout.num_actors,
        "actors": layout.describe(),
        "phases_s": {**phases, "output_check_s": time.monotonic() - started - elapsed},
        **({"selection": {**selection, **count_kept(output, opts.output_format)}} if selection else {}),
        "shift": shift,
    }


def records_read(counter, inputs: list[dict], output) -> int:
    """The job's records, as its read counted them: each input's count goes into its entry of `inputs`. A file
    the read never finished is a bug of ours (a row would be missing), never a file's."""
    import ray

    counts = ray.get(counter.files_read.remote())
    for entry in inputs:
        if entry["path"] not in counts:
            raise DataError(f"{entry['path']}: the job into {output} ended without reading it whole; please report")
        entry["records"] = counts[entry["path"]]
    return sum(entry["records"] for entry in inputs)


LAYOUT_FIX = "lower --num-actors / --cpus-per-actor / --gpus-per-actor"


def precheck_layout(opts) -> None:
    """`ScoreOptions` or `EvaluateOptions`, before Ray starts: the least the job asks for (one actor, one CPU, a GPU
    with device cuda) must fit."""
    from sentiment_ray.runtime import precheck

    n, cpus = opts.num_actors or 1, opts.cpus_per_actor or 1.0
    gpus = opts.gpus_per_actor if opts.gpus_per_actor is not None else float(opts.device.startswith("cuda"))
    actors = f"--num-actors {n} × (--cpus-per-actor {cpus:g}{f', --gpus-per-actor {gpus:g}' if gpus else ''})"
    precheck(actors, n * cpus, n * gpus, LAYOUT_FIX)


def sized_layout(opts: ScoreOptions, meta: dict):
    """The actor layout on the Ray this process is connected to: the given values, the rest sized (layout.py)."""
    import ray

    from sentiment_ray.inference.layout import actor_layout, weight_bytes
    from sentiment_ray.runtime import check_fits

    nodes = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
    total, free = ray.cluster_resources(), ray.available_resources()
    # What is free now: another job's actors (or a failed run's, still shutting down) keep their CPUs, and a pool
    # sized over them would leave Ray Data's read tasks nothing to run on.
    cluster = {key: min(total.get(key, 0), free.get(key, 0)) for key in ("CPU", "GPU")}
    gpus = opts.gpus_per_actor
    if gpus is None and opts.device.startswith("cuda"):
        gpus = 1.0  # device cuda asks for a GPU per actor, whatever the cluster has (check_fits says if it has none)
    layout = actor_layout(
        opts.num_actors, opts.cpus_per_actor, gpus, opts.device, cluster, nodes, weight_bytes(meta, opts.model_path)
    )
    n = layout.num_actors
    what = layout.describe()
    check_fits(what, n * layout.cpus_per_actor, n * layout.gpus_per_actor, total, LAYOUT_FIX)
    return layout
