"""Every strategy x fine-tune mode through the trainer each Ray Train worker builds (`sentiment_trainer`), in process.

Nothing here depends on Ray: the model, the loss, the trainable parameters of each mode, and the model folder the
run saves. What Ray adds (2 workers, checkpoints, the final report, calibration) is checked on the shared Ray runs in
tests/integration/test_train_ray.py.
"""

import math

import numpy as np
import pytest
import torch
from helpers import small_run

from sentiment_ray.inference.predictor import SentimentPredictor
from sentiment_ray.labels import LabelSet
from sentiment_ray.models.folder import save_model_folder
from sentiment_ray.training.driver import with_labels
from sentiment_ray.training.trainer import sentiment_trainer

MODES = [(s, f) for s in ("label_scoring", "classifier") for f in ("full", "lora", "qlora")]


@pytest.fixture(scope="module")
def splits():
    from sentiment_ray.data import load_splits

    data = load_splits("offline", seed=0, max_train_samples=16, val_size=8, test_size=8)
    frames = {"train": data.train, "validation": data.validation, "test": data.test}
    return {name: (frame["text"].tolist(), [int(y) for y in frame["label"]]) for name, frame in frames.items()}


@pytest.mark.parametrize(("strategy", "finetune"), MODES)
def test_each_strategy_and_mode_trains_the_right_weights_and_saves_a_folder_that_predicts_alike(
    tmp_path, splits, strategy, finetune
):
    updates = {"model.strategy": strategy, "model.finetune": finetune, "train.max_steps": 2, "train.batch_size": 8}
    cfg = small_run(tmp_path / "run", **updates, **{"train.report_to": ["none"], "train.precision": "fp32"})
    trainer, tokenizer, encoded = sentiment_trainer(cfg, splits, str(tmp_path / "checkpoints"), callbacks=[])
    params = dict(trainer.model.named_parameters())
    before = {name: p.detach().clone() for name, p in params.items() if p.requires_grad}
    if finetune == "full":
        assert len(before) == len(params)  # every weight trains
    else:  # adapters (and the classifier's new head) only: a small share of the weights
        assert 0 < sum(params[n].numel() for n in before) < 0.05 * sum(p.numel() for p in params.values())
        assert all("lora_" in name or "score" in name for name in before), sorted(before)

    output = trainer.train()

    assert output.global_step == 2 and math.isfinite(output.training_loss)
    changed = [name for name, value in before.items() if not torch.equal(params[name].detach(), value)]
    assert changed, "no trainable weight moved in two steps"
    folder = save_model_folder(trainer.model, tokenizer, cfg, tmp_path / "model")
    predictor = SentimentPredictor.from_pretrained(str(folder), device="cpu", precision="fp32")
    assert (predictor.meta["strategy"], predictor.meta["finetune"]) == (strategy, finetune)
    texts = splits["validation"][0]
    loaded = np.array([p["prob_positive"] for p in predictor.predict_batch(texts)])
    rows = [encoded["validation"][i] for i in range(len(texts))]
    with torch.no_grad():  # the loss's two scores [rows, 2] of the trained model, rows in the texts' order
        scores = trainer.strategy.scores(trainer.model.eval(), trainer.data_collator(rows))
    in_memory = scores.float().softmax(-1)[:, 1].numpy()
    np.testing.assert_allclose(loaded, in_memory, atol=1e-4 if finetune != "qlora" else 2e-2)


THREE = [
    {"name": "negative", "values": ["0"], "word": "差评，不推荐"},
    {"name": "neutral", "values": ["2"], "word": "一般"},
    {"name": "positive", "values": ["1"], "word": "好评"},
]


@pytest.mark.parametrize("strategy", ["label_scoring", "classifier"])
def test_three_classes_train_and_the_folder_predicts_them_by_name(tmp_path, splits, strategy):
    """N = 3, label scoring with words of several tokens: the loss is over 3 scores, and the saved folder answers
    with the class names and 3 probabilities that sum to 1, equal to the trained model's own."""

    def as_three(ids):  # binary ids 0 / 1 → negative 0 / positive 2, every fifth row neutral (1)
        return [1 if i % 5 == 0 else 2 * y for i, y in enumerate(ids)]

    three = {name: (texts, as_three(ids)) for name, (texts, ids) in splits.items()}
    updates = {"model.strategy": strategy, "model.finetune": "lora", "train.max_steps": 2, "train.batch_size": 8}
    cfg = small_run(tmp_path / "run", **updates, **{"train.report_to": ["none"], "train.precision": "fp32"})
    cfg = with_labels(cfg, LabelSet.from_list(THREE))
    trainer, tokenizer, encoded = sentiment_trainer(cfg, three, str(tmp_path / "checkpoints"), callbacks=[])
    assert trainer.strategy.labels.names == ("negative", "neutral", "positive")
    assert strategy == "classifier" or not trainer.strategy.single_token

    output = trainer.train()

    assert output.global_step == 2 and math.isfinite(output.training_loss)
    folder = save_model_folder(trainer.model, tokenizer, cfg, tmp_path / "model")
    predictor = SentimentPredictor.from_pretrained(str(folder), device="cpu", precision="fp32")
    assert [c["name"] for c in predictor.meta["labels"]] == ["negative", "neutral", "positive"]
    texts = three["validation"][0]
    rows = predictor.predict_batch(texts)
    assert all(list(r["probs"]) == ["negative", "neutral", "positive"] and "prob_positive" not in r for r in rows)
    loaded = np.array([list(r["probs"].values()) for r in rows])
    np.testing.assert_allclose(loaded.sum(axis=1), 1.0, atol=1e-6)
    assert [r["label"] for r in rows] == [("negative", "neutral", "positive")[i] for i in loaded.argmax(axis=1)]
    batch = trainer.data_collator([encoded["validation"][i] for i in range(len(texts))])
    with torch.no_grad():
        in_memory = trainer.strategy.scores(trainer.model.eval(), batch).float().softmax(-1).numpy()
    np.testing.assert_allclose(loaded, in_memory, atol=1e-4)


def test_step_time_summary_quotes_a_median_that_is_one_of_its_listed_steps():
    """The median is taken over the listed (ms-rounded) values, so it never exceeds their maximum by rounding."""
    from sentiment_ray.training.callbacks import StepTimeCallback

    timer = StepTimeCallback()
    timer.seconds = [0.0141, 0.0121, 0.031065, 0.0310649]  # the 4 steps of a CI run whose median was 0.031065
    summary = timer.summary()
    assert summary["step_seconds"] == [0.014, 0.012, 0.031, 0.031]
    assert summary["seconds_per_step"] in summary["step_seconds"][1:]
