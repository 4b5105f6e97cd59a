"""What the training loop optimises and when it stops: class weights of the loss and early stopping.

Both are read from `train` (class_weights, early_stopping_patience, early_stopping_metric) and applied the same way in
every worker, so the workers of one run agree on the loss and on the step they stop at.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from sentiment_ray.config.schema import TrainConfig
from sentiment_ray.errors import ConfigError


def class_weights(setting: list[float] | str | None, train_labels: Sequence[int], names: Sequence[str]) -> list | None:
    """The loss weight of each class (None: unweighted). `balanced` is sklearn's rule: n_rows / (N × rows of the
    class), counted on the whole training split (every worker sees the same split, so every worker agrees)."""
    if setting is None:
        return None
    if isinstance(setting, list):
        if len(setting) != len(names):
            raise ConfigError(
                f"train.class_weights has {len(setting)} numbers for {len(names)} classes ({', '.join(names)})"
            )
        return [float(w) for w in setting]
    counts = np.bincount(np.asarray(train_labels, dtype=np.int64), minlength=len(names))
    missing = [name for name, count in zip(names, counts, strict=True) if count == 0]
    if missing:
        raise ConfigError(
            f"train.class_weights=balanced: class {', '.join(missing)} has no training rows, so it has no weight; "
            "give the weights as a list or add rows of that class"
        )
    return (counts.sum() / (len(names) * counts)).tolist()


def weight_tensor(weights: list | None) -> torch.Tensor | None:
    """[N] float32 weights for `F.cross_entropy` (moved to the scores' device at the loss)."""
    return None if weights is None else torch.tensor(weights, dtype=torch.float32)


def early_stopping_arguments(train: TrainConfig) -> dict:
    """`TrainingArguments` fields early stopping needs: the best evaluation is tracked and its weights loaded at the
    end (HF keeps that checkpoint beside the newest `save_total_limit`)."""
    if train.early_stopping_patience == 0:
        return {}
    metric = train.early_stopping_metric
    return {"metric_for_best_model": metric, "greater_is_better": metric != "loss", "load_best_model_at_end": True}


def early_stopping_callbacks(train: TrainConfig) -> list:
    if train.early_stopping_patience == 0:
        return []
    from transformers import EarlyStoppingCallback

    return [EarlyStoppingCallback(early_stopping_patience=train.early_stopping_patience)]


def share_rank_zero_weights(model: torch.nn.Module) -> None:
    """Copy rank 0's trainable weights to every worker. HF loads the best checkpoint from the folder rank 0 saved it
    in; a worker on another node cannot read it and would keep its last weights, so rank 0's become everyone's."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    for parameter in model.parameters():
        if parameter.requires_grad:
            torch.distributed.broadcast(parameter.data, src=0)
