"""The two ways of turning a Qwen LM into a classifier of N classes, behind one small interface.

A strategy knows which HF model class it needs, how to encode a review, and how to turn a padded
batch into N scores per row: `scores(model, batch) -> [batch, N]`, column i = class i of its `labels`
(binary sentiment: 0 = negative, 1 = positive). Probabilities are `softmax(scores)` and the training loss is
the cross-entropy of the scores, for every strategy, so train / evaluate / score / serve never branch on
which strategy they hold. Label scoring lives in `label_scoring.py`.

Batches are LEFT-padded (the last real token of every row sits at position -1) and carry explicit
`position_ids`, so a row's output does not depend on how much padding its batch needed.
"""

from __future__ import annotations

from typing import Protocol

import torch

from sentiment_ray.config import PromptConfig
from sentiment_ray.labels import LabelSet, binary_sentiment
from sentiment_ray.models.label_scoring import LabelRowsHead, LabelScoringStrategy
from sentiment_ray.models.prompt import PromptEncoder, position_ids_for

__all__ = ["LabelRowsHead", "LabelScoringStrategy", "PromptEncoder", "Strategy", "make_strategy", "pad_batch"]


class Strategy(Protocol):
    name: str
    model_class_name: str
    """`AutoModelForCausalLM` or `AutoModelForSequenceClassification` (resolved lazily from transformers)."""
    peft_task_type: str
    """peft TaskType name; SEQ_CLS makes peft train and save the classifier head with the adapter."""
    labels: LabelSet
    """The classes, in score-column order."""
    model_kwargs: dict
    """Extra `from_pretrained` arguments of the model class (the classifier's N labels and their names)."""

    def encode(self, text: str) -> list[int]:
        """Token ids of the formatted prompt, fitted into max_length."""

    def specialize(self, model: torch.nn.Module) -> torch.nn.Module:
        """Adapt a freshly loaded model for this strategy's scores (weights and saved format unchanged)."""

    def scores(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """[batch, N] float32 scores; softmax gives the N class probabilities."""


class ClassifierStrategy:
    """`AutoModelForSequenceClassification`: a linear head (hidden → N) on the last token's state; `config.json`
    names the classes (`id2label` / `label2id`)."""

    name = "classifier"
    model_class_name = "AutoModelForSequenceClassification"
    peft_task_type = "SEQ_CLS"

    def __init__(self, tokenizer, prompt: PromptConfig, max_length: int, labels: LabelSet | None = None):
        self.labels = labels or binary_sentiment(prompt.label_words)
        names = self.labels.names
        self.model_kwargs = {
            "num_labels": len(names),
            "id2label": dict(enumerate(names)),
            "label2id": {name: i for i, name in enumerate(names)},
        }
        self.encode = PromptEncoder(tokenizer, prompt.template, max_length)

    def specialize(self, model):
        return model

    def scores(self, model, batch):
        mask = batch["attention_mask"]
        out = model(input_ids=batch["input_ids"], attention_mask=mask, position_ids=position_ids_for(mask))
        return out.logits.float()


STRATEGY_CLASSES = {cls.name: cls for cls in (ClassifierStrategy, LabelScoringStrategy)}


def make_strategy(name: str, tokenizer, prompt: PromptConfig, max_length: int, labels: LabelSet | None = None):
    """The strategy `name` for `labels`' classes (None: binary sentiment with `prompt.label_words`)."""
    return STRATEGY_CLASSES[name](tokenizer, prompt, max_length, labels)


def pad_batch(rows: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Left-pad token id lists into `input_ids` / `attention_mask` ([batch, longest])."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    return {"input_ids": ids, "attention_mask": mask}
