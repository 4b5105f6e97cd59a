"""What runs inside each Ray Train worker: the one training loop (HF Trainer + the strategy's loss).

The driver (`sentiment_ray.training.driver`) passes the resolved config and the already validated splits; every
worker builds the same model, Ray's `prepare_trainer` shards the data, and rank 0 reports the final
model folder and metrics as the run's last Ray checkpoint.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import ray.train
import torch
import torch.nn.functional as F
from ray.train.huggingface.transformers import RayTrainReportCallback, prepare_trainer
from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

from sentiment_ray.config import RunConfig, build_dataclass
from sentiment_ray.metrics import binary_metrics, softmax2
from sentiment_ray.models.strategies import pad_batch

FINAL_RESULTS = "final_results.json"


class SentimentTrainer(Trainer):
    """HF Trainer whose loss is cross-entropy over the strategy's two scores (for every strategy)."""

    def __init__(self, *args, strategy, **kwargs):
        super().__init__(*args, **kwargs)
        self.strategy = strategy

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        scores = self.strategy.scores(model, inputs)  # [batch, 2] float32
        loss = F.cross_entropy(scores, inputs["labels"])
        return (loss, {"logits": scores}) if return_outputs else loss


class LeftPadCollator:
    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        batch = pad_batch([f["input_ids"] for f in features], self.pad_id)
        batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=torch.long)
        return batch


class ProgressCallback(TrainerCallback):
    """One plain log line per logging step (step, loss, samples/s, ETA): readable in `ray job logs`."""

    def __init__(self):
        self.start = time.monotonic()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        elapsed = time.monotonic() - self.start
        rate = state.global_step / elapsed if elapsed > 0 else 0.0
        eta = (state.max_steps - state.global_step) / rate if rate > 0 else float("nan")
        print(
            f"[train] step {state.global_step}/{state.max_steps} epoch {state.epoch:.2f} loss {logs['loss']:.4f} "
            f"lr {logs.get('learning_rate', 0):.2e} elapsed {elapsed:.0f}s eta {eta:.0f}s",
            flush=True,
        )


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


class FailAtStepCallback(TrainerCallback):
    """Test hook (SENTIMENT_RAY_FAIL_AT_STEP=N): kill rank 0's process at step N, once per marker file.

    `os._exit` mimics a crashed or preempted worker (no Python cleanup, no exception to catch), so
    Ray Train's failure handling, not ours, has to bring the run back.
    """

    def __init__(self, step: int, marker: str):
        self.step, self.marker = step, Path(marker)

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step and state.is_world_process_zero and not self.marker.exists():
            self.marker.parent.mkdir(parents=True, exist_ok=True)
            # When, so the driver can report how long recovery took (killed → training again from a checkpoint).
            self.marker.write_text(json.dumps({"killed_at_step": self.step, "killed_at_unix": time.time()}))
            print(f"[train] fault injection: killing rank 0 at step {self.step}", flush=True)
            os._exit(1)


def _fault_injection(loop_config: dict) -> list:
    step = loop_config.get("fail_at_step")
    return [FailAtStepCallback(step, loop_config["fail_marker"])] if step else []


class EncodedReviews(torch.utils.data.Dataset):
    """Token ids + label per review; HF's length-grouped sampler reads `input_ids` lengths from it."""

    def __init__(self, strategy, texts: list[str], labels: list[int]):
        self.input_ids = [strategy.encode(t) for t in texts]
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.input_ids[i], "labels": self.labels[i]}


def eval_metrics(eval_pred) -> dict:
    return {
        k: v
        for k, v in binary_metrics(eval_pred.label_ids, softmax2(eval_pred.predictions)).items()
        if isinstance(v, float)
    }


def training_arguments(cfg: RunConfig, checkpoint_dir: str, bf16: bool) -> TrainingArguments:
    t = cfg.train
    return TrainingArguments(
        output_dir=checkpoint_dir,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        gradient_accumulation_steps=t.grad_accumulation,
        learning_rate=t.learning_rate,
        warmup_steps=t.warmup_ratio,  # transformers 5: a float in [0, 1) is a share of all steps
        weight_decay=t.weight_decay,
        eval_strategy="steps",  # RayTrainReportCallback reports on save, so evaluate at every save
        eval_steps=t.save_steps,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        logging_steps=t.logging_steps,
        seed=t.seed,
        bf16=bf16,
        use_cpu=not cfg.scaling.use_gpu,
        ddp_backend=None if cfg.scaling.use_gpu else "gloo",
        ddp_find_unused_parameters=False,
        train_sampling_strategy="group_by_length",  # similar lengths per batch: less padding
        remove_unused_columns=False,
        label_names=["labels"],
        report_to=[r for r in t.report_to if r != "none"] or "none",
        disable_tqdm=True,  # ProgressCallback prints plain lines instead of carriage-return bars
    )


def _latest_state(checkpoint_dir: Path) -> dict:
    state = checkpoint_dir / "trainer_state.json"
    return json.loads(state.read_text()) if state.is_file() else {}


def build_training_model(cfg: RunConfig):
    """(model ready to train, tokenizer, strategy, device, compute dtype) for `cfg`, as every worker builds them."""
    from sentiment_ray.models.loading import (
        compute_dtype,
        load_base_model,
        load_tokenizer,
        pick_device,
        prepare_for_training,
        resolve_base,
    )
    from sentiment_ray.models.strategies import make_strategy

    device = pick_device(cfg.scaling.use_gpu)
    dtype = compute_dtype(cfg.train.precision, device)
    base_path = resolve_base(cfg.model.name, cfg.model.tiny_seed)
    tokenizer = load_tokenizer(base_path)
    strategy = make_strategy(cfg.model.strategy, tokenizer, cfg.prompt, cfg.data.max_length)
    torch.manual_seed(cfg.train.seed)  # the classifier head's init must agree across workers
    # Full finetuning keeps fp32 master weights (bf16 comes from autocast); adapters train on a bf16 base.
    load_dtype = torch.float32 if cfg.model.finetune == "full" else dtype
    model = load_base_model(
        strategy,
        base_path,
        pad_token_id=tokenizer.pad_token_id,
        finetune=cfg.model.finetune,
        device=device,
        dtype=load_dtype,
    )
    return prepare_for_training(model, strategy, cfg.model, cfg.lora), tokenizer, strategy, device, dtype


def train_loop(loop_config: dict) -> None:
    """Ray Train entry point (runs on every worker)."""
    cfg = build_dataclass(RunConfig, loop_config["config"])
    restored = ray.train.get_checkpoint()
    model, tokenizer, strategy, _device, dtype = build_training_model(cfg)
    splits = {name: EncodedReviews(strategy, *rows) for name, rows in loop_config["splits"].items()}
    trainer = SentimentTrainer(
        model=model,
        args=training_arguments(cfg, loop_config["checkpoint_dir"], bf16=dtype == torch.bfloat16),
        train_dataset=splits["train"],
        eval_dataset=splits["validation"],
        data_collator=LeftPadCollator(tokenizer.pad_token_id),
        compute_metrics=eval_metrics,
        callbacks=[RankZeroReportCallback(), ProgressCallback(), *_fault_injection(loop_config)],
        strategy=strategy,
    )
    trainer.remove_callback(PrinterCallback)  # it prints every log dict; ProgressCallback prints one line
    trainer = prepare_trainer(trainer)
    train_output = _fit(trainer, restored, loop_config.get("resume_path"))
    _report_final(trainer, tokenizer, cfg, splits, train_output)


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
        print(f"[train] checkpoint {checkpoint_path} already reached step {state['global_step']}", flush=True)
        trainer._load_from_checkpoint(checkpoint_path)
        trainer.state.global_step = state["global_step"]
        return {"global_step": state["global_step"], "resumed_from_step": state["global_step"], "train_runtime_s": 0.0}
    if checkpoint_path:
        print(f"[train] resuming from {checkpoint_path} (step {state.get('global_step', '?')})", flush=True)
    resumed_at = time.time() if checkpoint_path else None  # wall clock: compared with the fault marker's
    output = trainer.train(resume_from_checkpoint=checkpoint_path)
    return {
        "global_step": output.global_step,
        "resumed_from_step": state.get("global_step", 0),
        "resumed_at_unix": resumed_at,
        "train_loss": output.training_loss,
        "train_runtime_s": time.monotonic() - started,
        **{k: v for k, v in output.metrics.items() if k != "train_loss"},
    }


def _split_metrics(trainer, dataset) -> dict:
    out = trainer.predict(dataset)
    return binary_metrics(out.label_ids, softmax2(out.predictions))


def _report_final(trainer, tokenizer, cfg: RunConfig, splits: dict, train_output: dict) -> None:
    """Evaluate validation + test (sharded over workers), then rank 0 reports model folder + results."""
    from sentiment_ray.models.folder import save_model_folder
    from sentiment_ray.models.loading import count_parameters

    results = {
        "train": {
            **train_output,
            "train_rows": len(splits["train"]),
            "parameters": count_parameters(trainer.model),
            "num_workers": cfg.scaling.num_workers,
            "workers": _worker_placement(),
        },
        "validation": _split_metrics(trainer, splits["validation"]),
        "test": _split_metrics(trainer, splits["test"]),
    }
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = None
        if ray.train.get_context().get_world_rank() == 0:
            save_model_folder(
                trainer.model,
                tokenizer,
                cfg,
                Path(tmp) / "model",
                metrics={"validation": results["validation"], "test": results["test"]},
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
    }
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return [here]
    everyone = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(everyone, here)  # a collective: every rank calls it at the same point
    return sorted(everyone, key=lambda worker: worker["rank"])


def _jsonable(value):
    return value.item() if isinstance(value, np.generic) else str(value)
