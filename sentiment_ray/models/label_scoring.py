"""Label scoring: score(class) = log P(its label word | prompt), for N label words of any number of tokens.

Single-token words (Qwen's `正面` / `负面`, or `好` / `中` / `差`): one forward pass at the prompt's last position
scores every word, and only the N label rows of the lm_head are computed: log P(w) = logit(w) - logsumexp(all
logits), and the logsumexp is the same for every word, so softmax and cross-entropy over the N logits equal those
over the N log-probs. That skips a [batch, 151,936] projection and its gradient per step.

Words of several tokens: the exact log-probability of the whole word, log P(t1 | prompt) + log P(t2 | prompt, t1)
+ …, from ONE packed forward per batch: each row is the prompt followed by every word's first k-1 tokens, and a 4-D
attention mask lets each word's tokens see the prompt and the word's own earlier tokens only (position ids restart
after the prompt for every word). The review is encoded once, whatever N, and only the last 1 + Σ(k-1) positions are
projected onto the vocabulary (`logits_to_keep`), so the [batch, seq, vocab] logits tensor never exists.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sentiment_ray.config import PromptConfig
from sentiment_ray.labels import LabelSet, binary_sentiment
from sentiment_ray.models.prompt import PromptEncoder, position_ids_for


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
        # Reading N rows by plain indexing backpropagates a dense, mostly-zero [vocab, hidden] gradient: one
        # extra vocab-sized tensor per step (868 MiB at Qwen2.5-1.5B's width). A sparse lookup sends only the
        # N rows; autograd adds them into the tied embedding's dense gradient, so the optimizer still gets a
        # dense one. An untied lm_head would end up with a sparse gradient that AdamW refuses, hence `tied`.
        self.sparse_grad = tied

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        label_rows = F.embedding(self.rows, self.weight, sparse=self.sparse_grad)  # [n_words, hidden]
        bias = None if self.bias is None else self.bias[self.rows]
        return F.linear(hidden, label_rows, bias)


class LabelScoringStrategy:
    """`AutoModelForCausalLM`: the scores of the N classes are the log-probs of their label words (module doc)."""

    name = "label_scoring"
    model_class_name = "AutoModelForCausalLM"
    peft_task_type = "CAUSAL_LM"

    def __init__(self, tokenizer, prompt: PromptConfig, max_length: int, labels: LabelSet | None = None):
        self.labels = labels or binary_sentiment(prompt.label_words)
        self.model_kwargs: dict = {}
        self.encode = PromptEncoder(tokenizer, prompt.template, max_length)
        self.label_token_ids = [tokenizer(w, add_special_tokens=False)["input_ids"] for w in self.labels.words]
        for i, ids in enumerate(self.label_token_ids):
            same = [self.labels.words[j] for j in range(i) if self.label_token_ids[j] == ids]
            if same or not ids:
                raise ValueError(f"label word {self.labels.words[i]!r} tokenizes as {ids}, as {same or 'nothing'}")
        self.pad_id = tokenizer.pad_token_id
        self.single_token = all(len(ids) == 1 for ids in self.label_token_ids)
        self._packed = PackedWords(self.label_token_ids)

    def specialize(self, model):
        """Single-token words: swap in an lm_head that computes only the label rows (see the module doc)."""
        if self.single_token:
            rows, head = [ids[0] for ids in self.label_token_ids], model.get_output_embeddings()
            tied = head.weight is model.get_input_embeddings().weight
            model.set_output_embeddings(LabelRowsHead(head, rows, tied))
        return model

    def scores(self, model, batch):
        """[batch, N] float32: the label logits (single-token words) or the words' exact log-probs."""
        if self.single_token:
            return self._single_token_scores(model, batch)
        return self._packed.scores(model, batch)

    def _single_token_scores(self, model, batch):
        mask = batch["attention_mask"]
        out = model(
            input_ids=batch["input_ids"], attention_mask=mask, position_ids=position_ids_for(mask), logits_to_keep=1
        )
        logits = out.logits[:, -1, :].float()
        if logits.shape[-1] == len(self.label_token_ids):  # LabelRowsHead: already the label logits, in class order
            return logits
        logprobs = F.log_softmax(logits, dim=-1)  # a plain lm_head: [batch, vocab], last position only
        return logprobs[:, [ids[0] for ids in self.label_token_ids]]


class PackedWords:
    """The words' continuations packed after the prompt, and how to read each word's log-prob back.

    For words w_1..w_N of k_j tokens, the continuation is w_1[:-1] + … + w_N[:-1] (C = Σ(k_j - 1) tokens). The
    log-probs are read at the prompt's last position (every word's first token) and at each continuation token
    (the word's next token), i.e. from the last C + 1 positions of the packed row.
    """

    def __init__(self, words: list[list[int]]):
        self.continuation = [t for word in words for t in word[:-1]]
        self.word_of = [j for j, word in enumerate(words) for _ in word[:-1]]  # continuation index → word
        self.step_of = [m for word in words for m in range(len(word) - 1)]  # its place within the word
        positions, tokens, owners = [], [], []  # over the kept C + 1 positions: which (position, token) per word
        offset = 0
        for j, word in enumerate(words):
            positions.append(0)  # the prompt's last position predicts every word's first token
            tokens.append(word[0])
            owners.append(j)
            for m in range(1, len(word)):  # continuation token m-1 of word j predicts its token m
                positions.append(1 + offset + m - 1)
                tokens.append(word[m])
                owners.append(j)
            offset += len(word) - 1
        self.positions, self.tokens, self.owners, self.n_words = positions, tokens, owners, len(words)

    def scores(self, model, batch) -> torch.Tensor:
        ids, mask = batch["input_ids"], batch["attention_mask"]
        n, c = ids.shape[0], len(self.continuation)
        device = ids.device
        tail = torch.tensor(self.continuation, dtype=ids.dtype, device=device).expand(n, -1)
        prompt_positions = position_ids_for(mask)  # [n, width]
        prompt_length = mask.long().sum(-1, keepdim=True)  # [n, 1]
        steps = torch.tensor(self.step_of, device=device)
        positions = torch.cat([prompt_positions, prompt_length + steps], dim=1)  # [n, width + c]
        attention = self._mask(mask, model)
        out = model(
            input_ids=torch.cat([ids, tail], dim=1),
            attention_mask=attention,
            position_ids=positions,
            logits_to_keep=c + 1,
        )
        logprobs = F.log_softmax(out.logits.float(), dim=-1)  # [n, c + 1, vocab]
        picked = logprobs[:, self.positions, self.tokens]  # [n, Σ k_j]
        owners = torch.tensor(self.owners, device=device)
        return torch.zeros(n, self.n_words, device=device, dtype=picked.dtype).index_add(1, owners, picked)

    def _mask(self, mask: torch.Tensor, model) -> torch.Tensor:
        """[n, 1, width + c, width + c]: a real prompt token sees the real prompt tokens up to itself; word j's
        tokens see the whole real prompt and word j's tokens up to themselves; a pad sees only itself (a query
        that sees nothing would give NaN). Bool for SDPA; additive float (0 / -inf) for eager attention."""
        n, width, c = mask.shape[0], mask.shape[1], len(self.continuation)
        device = mask.device
        real = mask.bool()  # [n, width]
        causal = torch.ones(width, width, dtype=torch.bool, device=device).tril()
        prompt_rows = causal & real[:, None, :]  # [n, width, width]
        word = torch.tensor(self.word_of, device=device)
        step = torch.tensor(self.step_of, device=device)
        same_word_before = (word[:, None] == word[None, :]) & (step[None, :] <= step[:, None])  # [c, c]
        top = torch.cat([prompt_rows, torch.zeros(n, width, c, dtype=torch.bool, device=device)], dim=2)
        bottom = torch.cat([real[:, None, :].expand(n, c, width), same_word_before.expand(n, c, c)], dim=2)
        full = torch.cat([top, bottom], dim=1)  # [n, width + c, width + c]
        eye = torch.eye(width + c, dtype=torch.bool, device=device)
        full = full | (eye & ~torch.cat([real, torch.ones(n, c, dtype=torch.bool, device=device)], 1)[:, :, None])
        full = full[:, None]
        implementation = _attention_implementation(model)
        if implementation == "sdpa":
            return full
        if implementation != "eager":  # flash attention takes no 4-D mask: the words would see each other
            raise ValueError(
                f"label words of several tokens need sdpa or eager attention, not {implementation!r}: load the model "
                "with attn_implementation='sdpa', or choose single-token label words"
            )
        return torch.zeros(full.shape, device=device).masked_fill(~full, torch.finfo(torch.float32).min)


def _attention_implementation(model) -> str:
    inner = getattr(model, "module", model)  # DDP wraps the model
    return getattr(getattr(inner, "config", None), "_attn_implementation", None) or "sdpa"
