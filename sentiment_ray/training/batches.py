"""How reviews become training batches: token ids per review, then left-padded tensors per batch.

Used by the training loop (`worker.py`) and by the training benchmarks, which must batch exactly as it does.
"""

from __future__ import annotations

import torch

from sentiment_ray.models.strategies import pad_batch


class EncodedReviews(torch.utils.data.Dataset):
    """Token ids + label per review; HF's length-grouped sampler reads `input_ids` lengths from it."""

    def __init__(self, strategy, texts: list[str], labels: list[int]):
        self.input_ids = strategy.encode.many(list(texts))
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.input_ids[i], "labels": self.labels[i]}


class LeftPadCollator:
    """Features → `input_ids`, `attention_mask` [batch, longest] and `labels` [batch].

    Left padding keeps every text's last token in the last column, where label scoring reads its logits.
    """

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        batch = pad_batch([f["input_ids"] for f in features], self.pad_id)
        batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=torch.long)
        return batch
