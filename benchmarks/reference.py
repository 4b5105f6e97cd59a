"""The reference algorithm of label scoring, kept as a yardstick for our scorer's speed and agreement.

The straightforward way to score label words: one review at a time, one forward pass per label word over
`prompt + label word` (no batching, no padding), the full-vocabulary logits at every position, fp32.
`ReferenceScorer` does exactly that on one of our model folders, so the benchmark can compare
it with `SentimentPredictor` on the same model and the same rows (`compare_to_reference`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F

from sentiment_ray.labels import LABEL_NAMES


class ReferenceScorer:
    """One text at a time, one fp32 forward per label word, full-vocab logits; label-scoring folders only."""

    def __init__(self, folder, device: str = "cpu"):
        from sentiment_ray.models.folder import load_model_folder, read_meta

        strategy = read_meta(folder)["strategy"]
        if strategy != "label_scoring":  # checked before loading: a classifier has no label words to score
            raise ValueError(
                f"{folder} is a {strategy!r} model folder; the reference algorithm scores label words, "
                "so it needs a 'label_scoring' folder"
            )
        self.device = torch.device(device)
        # specialize=False: the stock lm_head over the whole vocabulary, as the reference algorithm uses it
        self.model, self.tokenizer, self.strategy, self.meta = load_model_folder(
            folder, self.device, torch.float32, specialize=False
        )
        self.label_token_ids: list[list[int]] = self.strategy.label_token_ids  # [negative word ids, positive ids]

    @torch.inference_mode()
    def word_logprob(self, prompt_ids: list[int], word_ids: list[int]) -> float:
        """log P(word | prompt) = sum of the word's token log-probs, from one forward of prompt + word."""
        ids = torch.tensor([prompt_ids + word_ids], device=self.device)
        logits = self.model(ids).logits[0].float()  # [prompt + word tokens, vocab]: every position projected
        if logits.shape[-1] != self.model.config.vocab_size:  # a specialised head would make this another algorithm
            raise RuntimeError(f"expected full-vocabulary logits, got {logits.shape[-1]} columns")
        # the logits at position p predict token p + 1, so the word's tokens are read from the positions before them
        start = len(prompt_ids) - 1
        logprobs = F.log_softmax(logits[start : start + len(word_ids)], dim=-1)
        rows = torch.arange(len(word_ids), device=self.device)
        return float(logprobs[rows, torch.tensor(word_ids, device=self.device)].sum())

    def predict(self, text: str) -> dict:
        prompt_ids = self.strategy.encode(text)  # same prompt and truncation as our scorer
        scores = torch.tensor([self.word_logprob(prompt_ids, word) for word in self.label_token_ids])
        prob_positive = float(torch.softmax(scores, dim=0)[1])
        label_id = int(prob_positive >= 0.5)  # the higher score wins; a tie goes to positive, as in the predictor
        return {"label": LABEL_NAMES[label_id], "label_id": label_id, "prob_positive": prob_positive}

    def predict_batch(self, texts: Sequence[str]) -> list[dict]:
        return [self.predict(text) for text in texts]


def compare_to_reference(folder, texts: list[str], device: str, predictors: dict, batch_size: int) -> dict:
    """Reference vs our predictors (precision name → SentimentPredictor on the same folder) on the same rows:
    speed, speed ratio (ours / reference reviews/s), identical-label share, largest P(positive) difference."""
    from benchmarks.common import timed

    reference = ReferenceScorer(folder, device)
    reference.predict(texts[0])  # warm-up
    expected, reference_s = timed(partial(reference.predict_batch, texts), device)
    del reference  # the 1.5b-width reference holds ~1.3 GB of fp32 weights
    result = {"rows": len(texts), "reference_reviews_per_s": len(texts) / reference_s, "ours": {}}
    for precision, predictor in predictors.items():
        predictor.predict_batch(texts[:batch_size], batch_size=batch_size)  # warm-up
        ours, ours_s = timed(partial(predictor.predict_batch, texts, batch_size=batch_size), device)
        same = sum(a["label"] == b["label"] for a, b in zip(ours, expected, strict=True))
        diff = max(abs(a["prob_positive"] - b["prob_positive"]) for a, b in zip(ours, expected, strict=True))
        result["ours"][precision] = {
            "dtype": str(predictor.dtype).removeprefix("torch."),
            "batch_size": batch_size,
            "reviews_per_s": len(texts) / ours_s,
            "speed_ratio_vs_reference": reference_s / ours_s,
            "identical_predictions": same / len(texts),
            "max_abs_prob_diff": diff,
        }
    return result
