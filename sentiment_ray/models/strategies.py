"""The two ways of turning a Qwen LM into a sentiment model, behind one small interface.

A strategy knows which HF model class it needs, how to encode a review, and how to turn a padded
batch into two scores per row: `scores(model, batch) -> [batch, 2]` (column 0 = negative,
column 1 = positive). Probabilities are `softmax(scores)` and the training loss is the
cross-entropy of the scores, for every strategy, so train / evaluate / score / serve never branch on
which strategy they hold.

Batches are LEFT-padded (the last real token of every row sits at position -1) and carry explicit
`position_ids`, so a row's output does not depend on how much padding its batch needed.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F

from sentiment_ray.config import PromptConfig


class Strategy(Protocol):
    name: str
    model_class_name: str
    """`AutoModelForCausalLM` or `AutoModelForSequenceClassification` (resolved lazily from transformers)."""
    peft_task_type: str
    """peft TaskType name; SEQ_CLS makes peft train and save the classifier head with the adapter."""
    model_kwargs: dict
    """Extra `from_pretrained` arguments of the model class (the classifier's two labels)."""

    def encode(self, text: str) -> list[int]:
        """Token ids of the formatted prompt, fitted into max_length."""

    def specialize(self, model: torch.nn.Module) -> torch.nn.Module:
        """Adapt a freshly loaded model for this strategy's scores (weights and saved format unchanged)."""

    def scores(self, model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """[batch, 2] float32 scores; softmax gives P(negative), P(positive)."""


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


class ClassifierStrategy:
    """`AutoModelForSequenceClassification`: a linear head (hidden → 2) on the last token's state."""

    name = "classifier"
    model_class_name = "AutoModelForSequenceClassification"
    peft_task_type = "SEQ_CLS"
    model_kwargs = {"num_labels": 2}  # read only: never mutated

    def __init__(self, tokenizer, prompt: PromptConfig, max_length: int):
        self.encode = PromptEncoder(tokenizer, prompt.template, max_length)

    def specialize(self, model):
        return model

    def scores(self, model, batch):
        mask = batch["attention_mask"]
        out = model(input_ids=batch["input_ids"], attention_mask=mask, position_ids=position_ids_for(mask))
        return out.logits.float()


class LabelRowsHead(torch.nn.Module):
    """An lm_head that projects onto the label words' rows only: [..., hidden] -> [..., n_words] logits.

    It holds the lm_head's own weight Parameter (state-dict key `lm_head.weight`, still tied to the
    embeddings where the model ties them), so checkpoints and saved folders are those of the plain model.
    """

    def __init__(self, head: torch.nn.Module, rows: list[int], tied: bool):
        super().__init__()
        self.weight = head.weight  # [vocab, hidden]
        self.bias = getattr(head, "bias", None)  # Qwen's lm_head has none
        self.register_buffer("rows", torch.tensor(rows, dtype=torch.long), persistent=False)
        # Reading 2 rows by plain indexing backpropagates a dense, mostly-zero [vocab, hidden] gradient: one
        # extra vocab-sized tensor per step (868 MiB at Qwen2.5-1.5B's width). A sparse lookup sends only the
        # 2 rows; autograd adds them into the tied embedding's dense gradient, so the optimizer still gets a
        # dense one. An untied lm_head would end up with a sparse gradient that AdamW refuses, hence `tied`.
        self.sparse_grad = tied

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        label_rows = F.embedding(self.rows, self.weight, sparse=self.sparse_grad)  # [n_words, hidden]
        bias = None if self.bias is None else self.bias[self.rows]
        return F.linear(hidden, label_rows, bias)


class LabelScoringStrategy:
    """`AutoModelForCausalLM`: score(label) = log P(label word | prompt), up to a per-row constant.

    For a label word of k tokens t1..tk the score is the SUM of token log-probs,
    log P(t1 | prompt) + log P(t2 | prompt, t1) + ..., i.e. the log-probability of the whole word.
    Only the label positions are projected onto the vocabulary (`logits_to_keep`), so the
    [batch, seq, vocab] logits tensor never exists. When both words are single tokens (Qwen's
    `正面` / `负面`) one forward pass at the prompt's last position scores both, and only the two
    label rows of the lm_head are computed: log P(w) = logit(w) - logsumexp(all logits), and the
    logsumexp is the same for both words, so softmax and cross-entropy over the two logits equal those
    over the two log-probs. That skips a [batch, 151,936] projection and its gradient per step.
    """

    name = "label_scoring"
    model_class_name = "AutoModelForCausalLM"
    peft_task_type = "CAUSAL_LM"
    model_kwargs: dict = {}  # read only: never mutated

    def __init__(self, tokenizer, prompt: PromptConfig, max_length: int):
        self.encode = PromptEncoder(tokenizer, prompt.template, max_length)
        self.label_token_ids = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in prompt.label_words]
        if self.label_token_ids[0] == self.label_token_ids[1]:
            raise ValueError(f"label words {prompt.label_words} tokenize identically: {self.label_token_ids}")
        self.pad_id = tokenizer.pad_token_id
        self.single_token = all(len(ids) == 1 for ids in self.label_token_ids)

    def specialize(self, model):
        """Single-token words: swap in an lm_head that computes only the label rows (see the class doc)."""
        if self.single_token:
            rows, head = [ids[0] for ids in self.label_token_ids], model.get_output_embeddings()
            tied = head.weight is model.get_input_embeddings().weight
            model.set_output_embeddings(LabelRowsHead(head, rows, tied))
        return model

    def scores(self, model, batch):
        if self.single_token:
            return self._single_token_scores(model, batch)
        return self._multi_token_scores(model, batch)

    def _single_token_scores(self, model, batch):
        mask = batch["attention_mask"]
        out = model(
            input_ids=batch["input_ids"], attention_mask=mask, position_ids=position_ids_for(mask), logits_to_keep=1
        )
        logits = out.logits[:, -1, :].float()
        if logits.shape[-1] == 2:  # LabelRowsHead: already the two label logits, in label order
            return logits
        logprobs = F.log_softmax(logits, dim=-1)  # a plain lm_head: [batch, vocab], last position only
        return logprobs[:, [ids[0] for ids in self.label_token_ids]]

    def _multi_token_scores(self, model, batch):
        """Both continuations in one forward of 2×batch rows: prompt + t1..t(k-1), right-aligned."""
        keep = max(len(ids) for ids in self.label_token_ids)
        ids, mask = zip(*(self._append(batch, word, keep) for word in self.label_token_ids), strict=True)
        ids, mask = torch.cat(ids), torch.cat(mask)
        out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids_for(mask), logits_to_keep=keep)
        logprobs = F.log_softmax(out.logits.float(), dim=-1)  # [2*batch, keep, vocab]
        n = batch["input_ids"].shape[0]
        columns = [
            self._word_logprob(logprobs[i * n : (i + 1) * n], word) for i, word in enumerate(self.label_token_ids)
        ]
        return torch.stack(columns, dim=1)

    def _append(self, batch, word: list[int], keep: int):
        """Append word[:-1] to every row and left-pad so all continuations share one width."""
        ids, mask = batch["input_ids"], batch["attention_mask"]
        n, tail = ids.shape[0], torch.tensor(word[:-1], dtype=ids.dtype, device=ids.device).expand(ids.shape[0], -1)
        extra = keep - len(word)  # shorter words get extra left padding
        pad = torch.full((n, extra), self.pad_id, dtype=ids.dtype, device=ids.device)
        zeros = torch.zeros((n, extra), dtype=mask.dtype, device=mask.device)
        ones = torch.ones_like(tail, dtype=mask.dtype)
        return torch.cat([pad, ids, tail], 1), torch.cat([zeros, mask, ones], 1)

    @staticmethod
    def _word_logprob(logprobs: torch.Tensor, word: list[int]) -> torch.Tensor:
        """Sum of log P(t_j) over the word's k tokens, read from the last k kept positions."""
        window = logprobs[:, -len(word) :, :]  # [batch, k, vocab]
        index = torch.tensor(word, device=logprobs.device).expand(logprobs.shape[0], -1).unsqueeze(-1)
        return window.gather(-1, index).squeeze(-1).sum(-1)


STRATEGY_CLASSES = {cls.name: cls for cls in (ClassifierStrategy, LabelScoringStrategy)}


def make_strategy(name: str, tokenizer, prompt: PromptConfig, max_length: int) -> Strategy:
    return STRATEGY_CLASSES[name](tokenizer, prompt, max_length)


def pad_batch(rows: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Left-pad token id lists into `input_ids` / `attention_mask` ([batch, longest])."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    return {"input_ids": ids, "attention_mask": mask}
