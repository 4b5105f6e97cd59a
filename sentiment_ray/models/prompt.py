"""The prompt around a review, fitted into max_length tokens, and the position ids of left-padded batches."""

from __future__ import annotations

import torch


class PromptEncoder:
    """Formats `template` around a review and fits it into `max_length` tokens.

    Truncation cuts the review, never the prompt: the text after `{text}` ends with the cue the
    model answers to, so it must survive whatever the review's length.
    """

    def __init__(self, tokenizer, template: str, max_length: int):
        self.tokenizer = tokenizer
        self.template = template
        self.max_length = max_length
        prefix, suffix = template.split("{text}")
        self._prefix_ids = self._ids(prefix)
        self._suffix_ids = self._ids(suffix)
        if len(self._prefix_ids) + len(self._suffix_ids) >= max_length:
            raise ValueError(
                f"the prompt alone needs {len(self._prefix_ids) + len(self._suffix_ids)} tokens; "
                f"max_length={max_length} leaves no room for the review"
            )

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def __call__(self, text: str) -> list[int]:
        return self.many([text])[0]

    def many(self, texts: list[str]) -> list[list[int]]:
        """`self(text)` for every text, through the fast tokenizer's batch call (one Rust call, not one per text)."""
        if not texts:
            return []
        rows = self.tokenizer([self.template.format(text=t) for t in texts], add_special_tokens=False)["input_ids"]
        long = [i for i, ids in enumerate(rows) if len(ids) > self.max_length]
        if long:  # cut the review, keep the prompt: re-encode those reviews alone
            budget = self.max_length - len(self._prefix_ids) - len(self._suffix_ids)
            reviews = self.tokenizer([texts[i] for i in long], add_special_tokens=False)["input_ids"]
            for i, ids in zip(long, reviews, strict=True):
                rows[i] = self._prefix_ids + ids[:budget] + self._suffix_ids
        return rows


def position_ids_for(attention_mask: torch.Tensor) -> torch.Tensor:
    """0-based positions of the real tokens in a left-padded batch ([batch, seq]; pads get 0)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
