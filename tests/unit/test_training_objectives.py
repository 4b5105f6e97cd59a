"""Class weights and early stopping through the trainer each Ray Train worker builds (`sentiment_trainer`), in
process: neither depends on Ray (every worker computes the same weights from the same training split, and HF's
early stopping runs in every worker alike)."""

import random

import numpy as np
import pytest
import torch
from helpers import small_run
from safetensors.torch import load_file

from sentiment_ray.config import load_config
from sentiment_ray.errors import ConfigError
from sentiment_ray.metrics import class_metrics, softmax
from sentiment_ray.training.batches import EncodedReviews
from sentiment_ray.training.objectives import class_weights
from sentiment_ray.training.trainer import sentiment_trainer

FILLER = [chr(0x4E00 + k) for k in range(0, 4000, 7) if chr(0x4E00 + k) not in "好坏"]


def keyword_reviews(n_good: int, n_bad: int, seed: int) -> tuple[list[str], list[int]]:
    """Reviews of 8 random characters with 好好 (class 0) or 坏坏 (class 1) inserted: learnable in a few steps."""
    rng = random.Random(seed)
    rows = []
    for label in [0] * n_good + [1] * n_bad:
        body = "".join(rng.choice(FILLER) for _ in range(8))
        at = rng.randrange(len(body))
        rows.append((body[:at] + ("好好", "坏坏")[label] + body[at:], label))
    rng.shuffle(rows)
    return [text for text, _ in rows], [label for _, label in rows]


def run_config(tmp_path, **updates):
    base = {"model.finetune": "lora", "train.report_to": ["none"], "train.precision": "fp32", "train.batch_size": 16}
    return small_run(tmp_path / "run", **base, **updates)


def test_balanced_class_weights_raise_the_recall_of_the_rare_class(tmp_path):
    """128 training rows, 8 of class 1: unweighted, 10 steps learn to answer class 0 (recall of class 1 is 0);
    balanced weights (0.53, 8.0) make the rare class count and its recall rises on a balanced test set. The weights
    enter the one loss every strategy shares (`SentimentTrainer.compute_loss`), so one strategy shows it."""
    strategy = "classifier"
    splits = {"train": keyword_reviews(120, 8, seed=0), "validation": keyword_reviews(40, 40, seed=1)}
    test = keyword_reviews(40, 40, seed=2)
    recall = {}
    for weights in (None, "balanced"):
        updates = {"model.strategy": strategy, "train.max_steps": 10, "train.save_steps": 1000}
        updates |= {"train.learning_rate": 3e-3, "train.warmup_ratio": 0.0, "train.class_weights": weights}
        trainer, _, _ = sentiment_trainer(run_config(tmp_path, **updates), splits, str(tmp_path / "ck"), callbacks=[])
        trainer.train()
        out = trainer.predict(EncodedReviews(trainer.strategy, *test))
        metrics = class_metrics(out.label_ids, softmax(out.predictions), trainer.strategy.labels.names)
        recall[weights] = metrics["per_class"]["positive"]["recall"]
        if weights:
            assert trainer.class_weights == pytest.approx([128 / (2 * 120), 128 / (2 * 8)])
    assert recall[None] < 0.2 and recall["balanced"] >= recall[None] + 0.3, recall


def test_early_stopping_stops_when_the_validation_metric_stops_improving_and_keeps_the_best_weights(tmp_path):
    """A learning rate of 0.5 makes the validation loss jump around: once two evaluations in a row (one every 2
    steps) fail to beat the best, patience 2 stops the run long before its 40 steps, and the model keeps the best
    evaluation's adapter weights, not the last step's."""
    splits = {"train": keyword_reviews(32, 32, seed=0), "validation": keyword_reviews(16, 16, seed=1)}
    updates = {"train.max_steps": 40, "train.save_steps": 2, "train.learning_rate": 0.5, "train.warmup_ratio": 0.0}
    updates |= {"train.early_stopping_patience": 2, "train.early_stopping_metric": "loss", "train.save_total_limit": 1}
    checkpoints = tmp_path / "ck"
    trainer, _, _ = sentiment_trainer(run_config(tmp_path, **updates), splits, str(checkpoints), callbacks=[])

    output = trainer.train()

    losses = [e["eval_loss"] for e in trainer.state.log_history if "eval_loss" in e]  # at steps 2, 4, ...
    best_at = 2 * (int(np.argmin(losses)) + 1)
    assert output.global_step == 2 * len(losses) == best_at + 4 < 40, losses
    assert all(later >= min(losses) for later in losses[len(losses) - 2 :])
    assert trainer.state.best_global_step == best_at and trainer.state.max_steps == 40
    best = load_file(checkpoints / f"checkpoint-{best_at}" / "adapter_model.safetensors")
    trained = {
        name.replace(".default", ""): p.detach() for name, p in trainer.model.named_parameters() if p.requires_grad
    }
    assert sorted(best) == sorted(trained)
    for name, value in best.items():
        torch.testing.assert_close(trained[name], value, rtol=0, atol=0)


def test_without_early_stopping_the_same_run_trains_every_step(tmp_path):
    splits = {"train": keyword_reviews(16, 16, seed=0), "validation": keyword_reviews(8, 8, seed=1)}
    updates = {"train.max_steps": 8, "train.save_steps": 2, "train.learning_rate": 1e-12}
    trainer, _, _ = sentiment_trainer(run_config(tmp_path, **updates), splits, str(tmp_path / "ck"), callbacks=[])
    assert trainer.train().global_step == 8 and trainer.state.best_global_step is None


def test_class_weights_in_the_config_and_their_errors():
    assert load_config(None, updates={"train.class_weights": "balanced"}).train.class_weights == "balanced"
    assert load_config(None, updates={"train.class_weights": "1,3.5"}).train.class_weights == [1.0, 3.5]
    assert load_config(None, updates={"train.class_weights": [2, 1]}).train.class_weights == [2.0, 1.0]
    with pytest.raises(ConfigError, match="balanced` or a list"):
        load_config(None, updates={"train.class_weights": "balance"})
    with pytest.raises(ConfigError, match="positive finite"):
        load_config(None, updates={"train.class_weights": "1,-1"})
    three = [{"name": n} for n in ("a", "b", "c")]
    with pytest.raises(ConfigError, match="2 numbers for 3 classes"):
        load_config(None, updates={"train.class_weights": "1,2", "labels": three})
    with pytest.raises(ConfigError, match="class b has no training rows"):
        class_weights("balanced", [0, 0, 2], ("a", "b", "c"))
    with pytest.raises(ConfigError, match="3 numbers for 2 classes"):
        class_weights([1, 2, 3], [0, 1], ("negative", "positive"))
    assert class_weights("balanced", [0, 0, 0, 1], ("a", "b")) == pytest.approx([4 / 6, 2.0])
    with pytest.raises(ConfigError, match="early_stopping_metric"):
        load_config(None, updates={"train.early_stopping_metric": "f1"})
    assert np.isclose(class_weights(None, [0], ("a", "b")) or 1, 1)
