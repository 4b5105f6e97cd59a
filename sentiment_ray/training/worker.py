"""What runs inside each Ray Train worker: the one training loop (HF Trainer + the strategy's loss).

The driver (`sentiment_ray.training.driver`) passes the resolved config and the already validated splits; every
worker builds the same model, Ray's `prepare_trainer` shards the data, and rank 0 reports the final
model folder and metrics as the run's last Ray checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import ray.train
import torch
from ray.train.huggingface.transformers import RayTrainReportCallback, prepare_trainer

from sentiment_ray.config import RunConfig, build_dataclass
from sentiment_ray.console import show_progress
from sentiment_ray.errors import SentimentRayError
from sentiment_ray.metrics import class_metrics, softmax
from sentiment_ray.runtime import peak_rss_mb
from sentiment_ray.training.callbacks import ProgressCallback, StepTimeCallback, fault_injection
from sentiment_ray.training.objectives import share_rank_zero_weights
from sentiment_ray.training.trainer import sentiment_trainer

FINAL_RESULTS = "final_results.json"
log = logging.getLogger(__name__)


class RankZeroReportCallback(RayTrainReportCallback):
    """RayTrainReportCallback where only rank 0 uploads the checkpoint, after every rank finished writing it.

    On one node the workers share `output_dir`; with the stock callback every rank copies the newest
    checkpoint folder, and a rank that copies while rank 0 is still writing it crashes on vanished
    temp files. A barrier first, then one upload.
    """

    def on_save(self, args, state, control, **kwargs):
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()
        if state.is_world_process_zero:
            return super().on_save(args, state, control, **kwargs)
        ray.train.report(metrics={}, checkpoint=None)  # every rank must report (Train V2 collective)


def _latest_state(checkpoint_dir: Path) -> dict:
    state = checkpoint_dir / "trainer_state.json"
    return json.loads(state.read_text()) if state.is_file() else {}


def train_loop(loop_config: dict) -> None:
    """Ray Train entry point (runs on every worker)."""
    show_progress()  # this worker's progress lines on its stdout, which Ray forwards to the driver
    cfg = build_dataclass(RunConfig, loop_config["config"])
    restored = ray.train.get_checkpoint()
    step_timer = StepTimeCallback()
    callbacks = [RankZeroReportCallback(), ProgressCallback(), step_timer, *fault_injection(loop_config)]
    trainer, tokenizer, splits = sentiment_trainer(cfg, loop_config["splits"], loop_config["checkpoint_dir"], callbacks)
    trainer = prepare_trainer(trainer)
    train_output = _fit(trainer, restored, loop_config.get("resume_path"))
    if cfg.train.early_stopping_patience:
        share_rank_zero_weights(trainer.model)
    _upload_tensorboard(loop_config.get("tensorboard_uri"))
    _report_final(trainer, tokenizer, cfg, splits, {**train_output, **step_timer.summary()})


def _upload_tensorboard(uri: str | None) -> None:
    """Rank 0's event files to the run's URI (it may run on a node whose disk the driver never sees)."""
    events = os.environ.get("TENSORBOARD_LOGGING_DIR")
    if uri and events and Path(events).is_dir() and ray.train.get_context().get_world_rank() == 0:
        from sentiment_ray.storage import upload_folder

        upload_folder(events, uri)


def _fit(trainer, restored, resume_path: str | None) -> dict:
    """Train, resuming from Ray's latest checkpoint (failure retry / --resume auto) or an explicit path."""
    if restored is None:
        return _train_from(trainer, resume_path)
    with restored.as_directory() as folder:
        return _train_from(trainer, str(Path(folder) / RayTrainReportCallback.CHECKPOINT_NAME))


def _train_from(trainer, checkpoint_path: str | None) -> dict:
    started = time.monotonic()
    state = _latest_state(Path(checkpoint_path)) if checkpoint_path else {}
    if state and state.get("global_step", 0) >= state.get("max_steps", 1 << 62):
        # HF would run one extra step on a finished checkpoint: load the weights and skip training instead.
        log.info("checkpoint %s already reached step %d", checkpoint_path, state["global_step"])
        trainer._load_from_checkpoint(checkpoint_path)
        trainer.state.global_step = state["global_step"]
        step = state["global_step"]
        return {"global_step": step, "resumed_from_step": step, "resumed_at_unix": None, "train_runtime_s": 0.0}
    if checkpoint_path:
        log.info("resuming from %s (step %s)", checkpoint_path, state.get("global_step", "?"))
    resumed_at = time.time() if checkpoint_path else None  # wall clock: compared with the fault marker's
    output = trainer.train(resume_from_checkpoint=checkpoint_path)
    return {
        "global_step": output.global_step,
        "max_steps": trainer.state.max_steps,
        "best_step": trainer.state.best_global_step,  # None unless early stopping tracks the best evaluation
        "best_metric": trainer.state.best_metric,
        "resumed_from_step": state.get("global_step", 0),
        "resumed_at_unix": resumed_at,
        "train_loss": output.training_loss,
        "train_runtime_s": time.monotonic() - started,
        **{k: v for k, v in output.metrics.items() if k != "train_loss"},
    }


def _split_predictions(trainer, dataset) -> tuple[list[int], np.ndarray]:
    """(labels, [n, N] class probabilities) of a split, predicted over all workers."""
    out = trainer.predict(dataset)
    return [int(y) for y in out.label_ids], softmax(out.predictions)


def _report_final(trainer, tokenizer, cfg: RunConfig, splits: dict, train_output: dict) -> None:
    """Evaluate validation + test (sharded over workers), then rank 0 reports model folder + results."""
    from sentiment_ray.calibration import fit_calibration
    from sentiment_ray.models.folder import save_model_folder
    from sentiment_ray.models.loading import count_parameters

    predicted = {name: _split_predictions(trainer, splits[name]) for name in ("validation", "test")}

    results = {
        "train": {
            **train_output,
            "train_rows": len(splits["train"]),
            "parameters": count_parameters(trainer.model),
            "num_workers": cfg.scaling.num_workers,
            "class_weights": trainer.class_weights,
            "workers": _worker_placement(),
        },
        "validation": class_metrics(*predicted["validation"], trainer.strategy.labels.names),
        "test": class_metrics(*predicted["test"], trainer.strategy.labels.names),
    }
    # Fitted on the validation split only: the test split stays for reporting (docs/contracts.md, calibration).
    source = {"data": cfg.data.source, "part": "validation split", "seed": cfg.train.seed}
    try:
        lengths = [len(ids) for ids in splits["validation"].input_ids]  # tokens, as the predictor encodes them
        calibration = fit_calibration(*predicted["validation"], source=source, lengths=lengths)
    except SentimentRayError as err:  # too few rows or one class: the folder stays uncalibrated, and says so
        log.warning("no calibration stored: %s", err)
        calibration = None
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if ray.train.get_context().get_world_rank() == 0:
            save_model_folder(
                trainer.model,
                tokenizer,
                cfg,
                Path(tmp) / "model",
                metrics={"validation": results["validation"], "test": results["test"]},
                calibration=calibration,
            )
            (Path(tmp) / FINAL_RESULTS).write_text(json.dumps(results, indent=2, default=_jsonable))
            checkpoint = ray.train.Checkpoint.from_directory(tmp)
        flat = {f"test_{k}": v for k, v in results["test"].items() if isinstance(v, float)}
        ray.train.report({"final": 1, **flat}, checkpoint=checkpoint)


def _worker_placement() -> list[dict]:
    """Where every rank ran (Ray node id, host, pid): shows how the placement strategy spread the workers."""
    import socket

    context = ray.train.get_context()
    here = {
        "rank": context.get_world_rank(),
        "node_rank": context.get_node_rank(),
        "node_id": ray.get_runtime_context().get_node_id(),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "peak_rss_mb": peak_rss_mb(),  # after training and evaluation, before the folder is written
    }
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return [here]
    everyone = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(everyone, here)  # a collective: every rank calls it at the same point
    return sorted(everyone, key=lambda worker: worker["rank"])


def _jsonable(value):
    return value.item() if isinstance(value, np.generic) else str(value)
