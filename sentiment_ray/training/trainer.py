"""The training every worker runs, without Ray: the HF Trainer with the strategy's loss, its arguments, data and
metrics. `training/worker.py: train_loop` wraps it in Ray Train (data sharding, checkpoints, reports); a Ray-free
caller (scripts/gpu_check.sh on a CUDA box without Ray) calls `sentiment_trainer` and `trainer.train()` itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import PrinterCallback, Trainer, TrainingArguments

from sentiment_ray.config import RunConfig
from sentiment_ray.metrics import class_metrics, softmax
from sentiment_ray.training.batches import EncodedReviews, LeftPadCollator
from sentiment_ray.training.model import build_training_model
from sentiment_ray.training.objectives import (
    class_weights,
    early_stopping_arguments,
    early_stopping_callbacks,
    weight_tensor,
)
from sentiment_ray.training.sparse_rows import TouchedRowSync, embedding_parameter_name, keep_out_of_ddp, sparse_lookups


class SentimentTrainer(Trainer):
    """HF Trainer whose loss is cross-entropy over the strategy's N scores (for every strategy)."""

    def __init__(self, *args, strategy, embedding_sync: str, class_weights: list | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.strategy = strategy
        self.class_weights = class_weights
        self._weight = weight_tensor(class_weights)  # [N] or None (unweighted)
        self.embedding_sync = self._take_embedding_sync(embedding_sync)

    def _take_embedding_sync(self, embedding_sync: str) -> TouchedRowSync | None:
        """The row sync of the embedding gradient, which this trainer averages itself (sparse_rows), or None."""
        name = embedding_parameter_name(self.model)
        if embedding_sync != "rows" or name is None:
            return None
        weight = self.model.get_parameter(name)
        keep_out_of_ddp(self.model, weight)  # before the Trainer wraps the model in DDP, at train()
        sparse_lookups(self.model)  # backward then yields the touched rows themselves: no scan of every row
        return TouchedRowSync(weight)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        scores = self.strategy.scores(model, inputs)  # [batch, N] float32
        weight = None if self._weight is None else self._weight.to(scores.device)
        loss = F.cross_entropy(scores, inputs["labels"], weight=weight)
        return (loss, {"logits": scores}) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.embedding_sync is not None and self.accelerator.sync_gradients:  # last backward of the step
            self.embedding_sync()  # before clipping and the optimizer see the gradient
        return loss


def eval_metrics_of(names: tuple[str, ...]):
    """The Trainer's `compute_metrics` for these classes: the float metrics of `class_metrics`."""

    def eval_metrics(eval_pred) -> dict:
        scores = class_metrics(eval_pred.label_ids, softmax(eval_pred.predictions), names)
        return {k: v for k, v in scores.items() if isinstance(v, float)}

    return eval_metrics


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
        # gloo on CPU inside Ray Train's process group; none in a plain process (one worker, no group to join)
        ddp_backend="gloo" if not cfg.scaling.use_gpu and torch.distributed.is_initialized() else None,
        ddp_find_unused_parameters=False,
        train_sampling_strategy="group_by_length",  # similar lengths per batch: less padding
        remove_unused_columns=False,
        label_names=["labels"],
        report_to=[r for r in t.report_to if r != "none"] or "none",
        disable_tqdm=True,  # ProgressCallback prints plain lines instead of carriage-return bars
        **early_stopping_arguments(t),
    )


def sentiment_trainer(cfg: RunConfig, splits: dict, checkpoint_dir: str, callbacks: list) -> tuple:
    """(HF trainer, tokenizer, encoded splits) of one worker for `cfg`, without Ray: the model, data, loss and
    arguments every worker trains with. `splits`: {name: (texts, labels)} with train and validation."""
    model, tokenizer, strategy, _device, dtype = build_training_model(cfg)
    encoded = {name: EncodedReviews(strategy, *rows) for name, rows in splits.items()}
    trainer = SentimentTrainer(
        model=model,
        args=training_arguments(cfg, checkpoint_dir, bf16=dtype == torch.bfloat16),
        train_dataset=encoded["train"],
        eval_dataset=encoded["validation"],
        data_collator=LeftPadCollator(tokenizer.pad_token_id),
        compute_metrics=eval_metrics_of(strategy.labels.names),
        callbacks=[*callbacks, *early_stopping_callbacks(cfg.train)],
        strategy=strategy,
        embedding_sync=cfg.train.embedding_sync,
        class_weights=class_weights(cfg.train.class_weights, splits["train"][1], strategy.labels.names),
    )
    trainer.remove_callback(PrinterCallback)  # it prints every log dict; ProgressCallback prints one line
    return trainer, tokenizer, encoded
