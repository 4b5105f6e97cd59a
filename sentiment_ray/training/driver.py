"""The Ray Train job's driver: validate data, launch a TorchTrainer, collect the model folder and results.

Run folder layout (`output_dir`):
    config.yaml           the resolved config of this run
    data_report.json      rows read / dropped per split and why
    model/                the model folder (docs/contracts.md), copied from the run's final Ray checkpoint
    train_results.json    steps, loss, runtime, samples/s, parameters, provenance
    test_results.json     validation + test metrics (accuracy, P, R, F1, ROC-AUC, confusion matrix)
    ray/train-<stamp>/    Ray Train storage: checkpoints (unless storage_path points elsewhere)
    hf_checkpoints/       the workers' local HF checkpoint scratch
    tensorboard/          TensorBoard event files (rank 0)

`output_dir` may be a URI (`s3://…`, `gs://…`): the driver then writes the run folder in a local staging folder
(`run_dir`) and uploads it when training ends (rank 0 uploads its TensorBoard events itself, from whichever node it
ran on), and Ray Train's storage defaults to `<output_dir>/ray`. Inside a Ray job, a relative `output_dir` is
refused: it would land in the job's temporary working dir.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from sentiment_ray.config import RunConfig, save_config
from sentiment_ray.errors import ConfigError
from sentiment_ray.location import Location
from sentiment_ray.provenance import provenance
from sentiment_ray.runtime import peak_rss_mb

RUN_PREFIX = "train-"
TRAIN_LOG = "train.log"
log = logging.getLogger(__name__)
"""The run's log file: Ray's and the libraries' output that `sentiment-ray train` keeps off the console."""


@dataclass
class TrainOutcome:
    output_dir: Path | str
    """The run folder: a local path, or the URI it was uploaded to."""
    model_dir: Path | str
    train_results: dict
    test_results: dict


def run_training(cfg: RunConfig) -> TrainOutcome:
    from sentiment_ray.models.folder_check import check_base_name

    check_base_name(cfg.model.name)  # before torch is even imported: a wrong --model fails at once
    from sentiment_ray.models.loading import prepare_base
    from sentiment_ray.runtime import check_durable, init_ray, precheck

    check_durable(cfg.output_dir, "--output-dir")  # inside a Ray job: never into its temporary working dir
    check_durable(cfg.storage_path, "storage_path")
    precheck(*scaling_request(cfg))  # an embedded Ray too small for the workers: fail before anything starts

    started = time.monotonic()
    output = Location.of(cfg.output_dir)
    output_dir = run_dir(output)
    output_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, output_dir / "config.yaml")
    storage = storage_of(cfg, output)
    name, resume_path = resolve_resume(cfg.train.resume, storage)  # a wrong --resume PATH fails before anything
    prepare_base(cfg.model.name, cfg.model.tiny_seed)  # a wrong --model fails here; shared cache entries built once
    splits, labels = load_run_splits(cfg, output_dir)
    cfg = with_labels(cfg, labels)
    save_config(cfg, output_dir / "config.yaml")  # the classes are fixed from here on: ids index this list
    init_ray()
    check_resources(cfg)
    log.info("Ray Train run '%s' in %s (%d workers)", name, storage, cfg.scaling.num_workers)
    tensorboard = output.join("tensorboard").text if output.remote else None
    result = build_trainer(cfg, splits, storage, name, resume_path, output_dir, tensorboard_uri=tensorboard).fit()
    outcome = _collect(result, cfg, output_dir, name, storage, time.monotonic() - started)
    if not output.remote:
        return outcome
    from sentiment_ray.training.publish import publish_run

    publish_run(Path(outcome.output_dir), output)
    return TrainOutcome(output.text, output.join("model").text, outcome.train_results, outcome.test_results)


def run_dir(output: Location) -> Path:
    """Where this process writes the run folder: `output` itself, or a local staging folder for a URI."""
    if output.remote:
        from sentiment_ray.cache import sentiment_ray_cache_dir, short_hash

        return sentiment_ray_cache_dir() / "staging" / f"{output.name}-{short_hash([output.text])}"
    return output.path


def storage_of(cfg: RunConfig, output: Location) -> Location:
    """Ray Train's storage: `storage_path`, else `<output_dir>/ray` (a URI stays a URI)."""
    if cfg.storage_path:
        return Location.of(cfg.storage_path)
    return output.join("ray") if output.remote else Location.of(run_dir(output) / "ray")


def with_labels(cfg: RunConfig, labels) -> RunConfig:
    """`cfg` with its `labels` list resolved (configured, or inferred from the training split)."""
    import dataclasses

    from sentiment_ray.config import LabelClass

    return dataclasses.replace(cfg, labels=[LabelClass(**c) for c in labels.to_list()])


def load_run_splits(cfg: RunConfig, output_dir: Path) -> tuple[dict, object]:
    """({split: (texts, label ids)}, the LabelSet the ids index), the data report written into `output_dir`."""
    from sentiment_ray.data import load_splits
    from sentiment_ray.data.formats import ReadOptions

    d = cfg.data
    splits = load_splits(
        d.source,
        text_column=d.text_column,
        label_column=d.label_column,
        id_column=d.id_column,
        seed=cfg.train.seed,
        max_invalid_fraction=d.max_invalid_fraction,
        max_train_samples=d.max_train_samples,
        val_size=d.val_size,
        test_size=d.test_size,
        read_options=ReadOptions(encoding=d.encoding, quoting=d.quoting, sheet=d.sheet),
        labels=cfg.label_set(),
    )
    (output_dir / "data_report.json").write_text(json.dumps(splits.report, ensure_ascii=False, indent=2, default=str))
    frames = {"train": splits.train, "validation": splits.validation, "test": splits.test}
    log.info("data: %s", ", ".join(f"{k} {len(v)} rows" for k, v in frames.items()))
    for path, info in splits.report.get("conservation", {}).items():
        breaks = info["line_breaks_before_a_record"]["count"]
        if breaks:
            log.warning(
                "%d records of %s hold a line break followed by what looks like another record: check the quoting "
                "(--quoting; read as %s)",
                breaks,
                path,
                info["quoting"] or info["format"],
            )
    for split, info in splits.report.get("invalid_rows", {}).items():
        if info["count"]:
            log.info(
                "%s: dropped %d of %d rows (%s); details in %s",
                split,
                info["count"],
                info["rows_read"],
                info["by_reason"],
                output_dir / "data_report.json",
            )
    log.info("classes: %s", ", ".join(splits.labels.names))
    return {k: (v["text"].tolist(), [int(x) for x in v["label"]]) for k, v in frames.items()}, splits.labels


def scaling_request(cfg: RunConfig) -> tuple[str, float, float, str]:
    """(what, CPUs, GPUs, how to change it) of a run's Ray Train workers."""
    s = cfg.scaling
    gpus = s.num_workers * s.gpus_per_worker if s.use_gpu else 0.0
    what = (
        f"scaling ({s.num_workers} workers × {s.cpus_per_worker:g} CPU{f', {s.gpus_per_worker:g} GPU' if gpus else ''})"
    )
    return what, s.num_workers * s.cpus_per_worker, gpus, "lower --num-workers / scaling.cpus_per_worker"


def check_resources(cfg: RunConfig) -> None:
    """Fail fast instead of letting Ray Train wait forever for workers the cluster cannot host."""
    import ray

    from sentiment_ray.runtime import check_fits

    what, cpus, gpus, fix = scaling_request(cfg)
    try:
        check_fits(what, cpus, gpus, ray.cluster_resources(), fix)
    except ConfigError as err:
        if "RAY_ADDRESS" not in os.environ:
            raise
        log.warning("%s; waiting for the autoscaler", err)


def resolve_resume(resume: str, storage: Location) -> tuple[str, str | None]:
    """(Ray run name, HF checkpoint path to start from) for `auto`, `none` or a checkpoint PATH.

    A Ray run restarted under the same name resumes from its latest checkpoint, so `auto` reuses
    the newest `train-*` run in storage when it stopped mid-training (crash, kill, preemption); a
    finished run, `none` and PATH start a new name.
    """
    fresh = RUN_PREFIX + dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    if resume == "none":
        return fresh, None
    if resume == "auto":
        return (_latest_run_with_checkpoint(storage) or fresh), None
    path = Path(resume)
    if not (path / "trainer_state.json").is_file():
        raise ConfigError(
            f"train.resume={resume!r}: not 'auto', 'none' or an HF checkpoint folder "
            "(a checkpoint-N folder with trainer_state.json)"
        )
    return fresh, str(path.resolve())


def has_resumable_checkpoint(cfg: RunConfig) -> bool:
    """Whether `--resume auto` would continue a run of this config's storage from a mid-training checkpoint."""
    return _latest_run_with_checkpoint(storage_of(cfg, Location.of(cfg.output_dir))) is not None


def _latest_run_with_checkpoint(storage: Location) -> str | None:
    """Newest `train-*` run whose latest checkpoint is a mid-training one (a finished run is not resumed)."""
    import pyarrow.fs as pafs

    from sentiment_ray.training.worker import FINAL_RESULTS

    fs, root = storage.filesystem()
    runs = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    names = sorted(
        (r.base_name for r in runs if r.type == pafs.FileType.Directory and r.base_name.startswith(RUN_PREFIX)),
        reverse=True,
    )
    for name in names:
        inside = fs.get_file_info(pafs.FileSelector(f"{root}/{name}", allow_not_found=True))
        checkpoints = sorted(  # checkpoint_<timestamp>/ folders; Ray's checkpoint_manager_snapshot.json is not one
            i.path for i in inside if i.base_name.startswith("checkpoint_") and i.type == pafs.FileType.Directory
        )
        if checkpoints:
            finished = fs.get_file_info(f"{checkpoints[-1]}/{FINAL_RESULTS}").type != pafs.FileType.NotFound
            return None if finished else name
    return None


def build_trainer(
    cfg: RunConfig,
    splits: dict,
    storage: Location,
    name: str,
    resume_path: str | None,
    output_dir: Path,
    callbacks: list | None = None,
    tensorboard_uri: str | None = None,
):
    """The TorchTrainer running `train_loop`; `callbacks` are Ray Train callbacks (Tune passes its reporter);
    `tensorboard_uri`: where rank 0 uploads its TensorBoard events (a URI run folder's `tensorboard/`)."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from sentiment_ray.console import WORKER_ENV
    from sentiment_ray.training.worker import train_loop

    s = cfg.scaling
    resources = {"CPU": s.cpus_per_worker, **({"GPU": s.gpus_per_worker} if s.use_gpu else {})}
    loop_config = {
        "config": cfg.to_dict(),
        "splits": splits,
        "resume_path": resume_path,
        "checkpoint_dir": str(output_dir / "hf_checkpoints"),
        "tensorboard_uri": tensorboard_uri,
        **_fault_injection_settings(output_dir),
    }
    env = {"env_vars": {"TENSORBOARD_LOGGING_DIR": str(output_dir / "tensorboard"), **WORKER_ENV}}
    return TorchTrainer(
        train_loop,
        train_loop_config=loop_config,
        scaling_config=ray.train.ScalingConfig(
            num_workers=s.num_workers,
            use_gpu=s.use_gpu,
            resources_per_worker=resources,
            placement_strategy=s.placement_strategy,
        ),
        run_config=ray.train.RunConfig(
            name=name,
            storage_path=storage.text,
            failure_config=ray.train.FailureConfig(max_failures=cfg.train.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=cfg.train.save_total_limit + 1),
            worker_runtime_env=env,
            callbacks=callbacks or None,
        ),
    )


def _fault_injection_settings(output_dir: Path) -> dict:
    """Test hooks. SENTIMENT_RAY_FAIL_AT_STEP=N kills rank 0 at step N once per run folder (fault tolerance);
    SENTIMENT_RAY_HOLD_AT_STEP=N holds rank 0 after step N's checkpoint (a job stopped mid-run, every time)."""
    settings = {}
    if fail := _step_from_env("SENTIMENT_RAY_FAIL_AT_STEP"):
        settings.update(fail_at_step=fail, fail_marker=str(output_dir / f"fault_injected_at_step_{fail}"))
    if hold := _step_from_env("SENTIMENT_RAY_HOLD_AT_STEP"):
        settings["hold_at_step"] = hold
    return settings


def _step_from_env(name: str) -> int | None:
    step = os.environ.get(name)
    if not step:
        return None
    if not step.isdigit() or int(step) < 1:
        raise ConfigError(f"{name}={step!r} must be a positive step number")
    return int(step)


def _recovery(train: dict, output_dir: Path) -> dict:
    """With fault injection on: when the worker was killed and how long until training ran again."""
    settings = _fault_injection_settings(output_dir)
    marker = Path(settings.get("fail_marker", output_dir / "no-fault-injection"))
    if not marker.is_file() or not train.get("resumed_at_unix"):
        return {}
    killed = json.loads(marker.read_text())
    return {"fault_injection": {**killed, "recovery_s": train["resumed_at_unix"] - killed["killed_at_unix"]}}


def _collect(result, cfg: RunConfig, output_dir: Path, name: str, storage: Location, wall_s: float) -> TrainOutcome:
    if result.checkpoint is None:
        raise RuntimeError(f"Ray Train run '{name}' ended without a checkpoint; see its logs in {storage}/{name}")
    model_dir = output_dir / "model"
    final = copy_final_checkpoint(result.checkpoint, model_dir)
    origin = run_origin(cfg)
    train = {**final["train"], "wall_time_s": wall_s, "driver_peak_rss_mb": peak_rss_mb()}
    train.update({"ray_run": f"{storage}/{name}", **origin})
    train.update(_recovery(final["train"], output_dir))
    test = {"validation": final["validation"], "test": final["test"], **origin}
    (output_dir / "train_results.json").write_text(json.dumps(train, ensure_ascii=False, indent=2))
    (output_dir / "test_results.json").write_text(json.dumps(test, ensure_ascii=False, indent=2))
    return TrainOutcome(output_dir, model_dir, train, test)


# Shared with sentiment_ray.tuning.sweep, which exports the best trial's final checkpoint the same way.
def copy_final_checkpoint(checkpoint, model_dir: Path) -> dict:
    """Copy a run's final Ray checkpoint's `model/` to `model_dir` (replacing it); return its final results."""
    from sentiment_ray.training.worker import FINAL_RESULTS

    with checkpoint.as_directory() as folder:
        final = json.loads((Path(folder) / FINAL_RESULTS).read_text())
        if model_dir.exists():
            shutil.rmtree(model_dir)
        shutil.copytree(Path(folder) / "model", model_dir)
    return final


def run_origin(cfg: RunConfig) -> dict:
    """Provenance recorded beside every result: machine, versions, command, model, data."""
    from sentiment_ray.models.shapes import is_random_weights

    return {
        **provenance(),
        "model": cfg.model.name,
        "finetune": cfg.model.finetune,
        "strategy": cfg.model.strategy,
        "data": cfg.data.source,
        "tiny_model": cfg.model.name == "tiny",
        "random_weights": is_random_weights(cfg.model.name),
    }
