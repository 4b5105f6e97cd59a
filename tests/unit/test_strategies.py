"""Strategies on the real tiny Qwen2: scores match a brute-force reference, no full-vocab logits, training works."""

import pytest
import torch
import torch.nn.functional as F

from sentiment_ray.config import LoraConfig, ModelConfig, PromptConfig
from sentiment_ray.labels import LabelSet
from sentiment_ray.models.loading import load_base_model, prepare_for_training
from sentiment_ray.models.strategies import LabelScoringStrategy, PromptEncoder, make_strategy, pad_batch

TEXTS = ["质量很好，物流也快", "太差了", "一般般吧，还可以。", "屏幕坏了，客服也不理人，非常失望！！"]
CPU = torch.device("cpu")


def build(tiny_path, tokenizer, strategy_name, finetune="full", label_words=("负面", "正面"), seed=0, specialize=True):
    """Two words: binary sentiment with those words; more: one class per word."""
    torch.manual_seed(seed)
    if len(label_words) == 2:
        strategy = make_strategy(strategy_name, tokenizer, PromptConfig(label_words=list(label_words)), 64)
    else:
        labels = LabelSet(names=tuple(label_words), words=tuple(label_words))
        strategy = make_strategy(strategy_name, tokenizer, PromptConfig(), 64, labels)
    model = load_base_model(
        strategy,
        tiny_path,
        pad_token_id=tokenizer.pad_token_id,
        finetune=finetune,
        device=CPU,
        dtype=torch.float32,
        specialize=specialize,
    )
    return strategy, prepare_for_training(model, strategy, ModelConfig(name="tiny", finetune=finetune), LoraConfig())


def reference_scores(model, tokenizer, strategy, texts):
    """Brute force, one text and one label at a time, full-vocab log-softmax at every position."""
    rows = []
    for text in texts:
        prompt = strategy.encode(text)
        row = []
        for word in strategy.label_token_ids:
            ids = torch.tensor([prompt + word])
            logprobs = F.log_softmax(model(input_ids=ids).logits.float(), dim=-1)[0]
            row.append(sum(logprobs[len(prompt) - 1 + j, t] for j, t in enumerate(word)))
        rows.append(torch.stack(row))
    return torch.stack(rows)


SIX_CATEGORIES = ("书籍", "平板", "手机", "水果", "洗发水", "衣服")  # several are 2 tokens in Qwen's vocabulary
THREE_SINGLE = ("好", "中", "差")
WORD_SETS = {
    "single": ("负面", "正面"),
    "multi": ("差评，不推荐", "好评"),
    "six": SIX_CATEGORIES,
    "three": THREE_SINGLE,
}


@pytest.mark.parametrize("label_words", WORD_SETS.values(), ids=WORD_SETS.keys())
def test_label_scores_equal_brute_force_reference(tiny_path, tokenizer, label_words):
    """Every word's exact log-prob (the N-way softmax for single-token words), whatever N and word lengths."""
    strategy, model = build(tiny_path, tokenizer, "label_scoring", label_words=label_words)
    _, stock = build(tiny_path, tokenizer, "label_scoring", label_words=label_words, specialize=False)
    assert strategy.single_token == all(
        len(tokenizer(w, add_special_tokens=False)["input_ids"]) == 1 for w in label_words
    )
    batch = pad_batch([strategy.encode(t) for t in TEXTS], tokenizer.pad_token_id)
    with torch.no_grad():
        got = strategy.scores(model, batch)
        want = reference_scores(stock, tokenizer, strategy, TEXTS)
    if strategy.single_token:  # the two label logits: the log-probs up to the row's shared logsumexp
        got, want = got - got.logsumexp(-1, keepdim=True), want - want.logsumexp(-1, keepdim=True)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_single_token_head_computes_two_rows_and_keeps_weights_tied(tiny_path, tokenizer):
    strategy, model = build(tiny_path, tokenizer, "label_scoring")
    head = model.get_output_embeddings()
    assert head.weight is model.get_input_embeddings().weight  # still tied, still `lm_head.weight`
    assert "lm_head.weight" in dict(model.named_parameters(remove_duplicate=False))
    batch = pad_batch([strategy.encode(t) for t in TEXTS], tokenizer.pad_token_id)
    out = model(**batch, logits_to_keep=1).logits
    assert out.shape == (len(TEXTS), 1, 2)
    strategy.scores(model, batch).sum().backward()
    grad = head.weight.grad  # only the 2 label rows receive a gradient from the head...
    label_rows = [ids[0] for ids in strategy.label_token_ids]
    assert grad[label_rows].abs().sum() > 0


def test_two_row_head_trains_exactly_like_the_full_vocab_head(tiny_path, tokenizer):
    """Same loss and the same (dense) gradients as log-softmax over all 151,936 rows: the normaliser cancels."""
    grads = []
    for specialize in (True, False):
        strategy, model = build(tiny_path, tokenizer, "label_scoring", specialize=specialize)
        batch = pad_batch([strategy.encode(t) for t in TEXTS], tokenizer.pad_token_id)
        loss = F.cross_entropy(strategy.scores(model, batch), torch.tensor([1, 0, 1, 0]))
        loss.backward()
        grads.append({name: p.grad for name, p in model.named_parameters()})
    fast, stock = grads
    assert fast.keys() == stock.keys()
    for name in stock:
        assert fast[name].layout == torch.strided, name  # AdamW needs dense gradients
        torch.testing.assert_close(fast[name], stock[name], atol=1e-5, rtol=1e-4, msg=name)


def test_qwen_label_words_are_single_tokens(tokenizer):
    strategy = LabelScoringStrategy(tokenizer, PromptConfig(), 64)
    assert strategy.label_token_ids == [[103276], [106557]] and strategy.single_token


@pytest.mark.parametrize(
    "label_words", [("负面", "正面"), ("差评，不推荐", "好评"), SIX_CATEGORIES], ids=["single", "multi", "six"]
)
def test_label_scoring_never_projects_every_position(tiny_path, tokenizer, label_words):
    """The lm_head only ever sees the label positions: [batch, 1 + Σ(k - 1), hidden], never [batch, seq, hidden];
    one forward per batch whatever the number of words (the review is encoded once)."""
    strategy, model = build(tiny_path, tokenizer, "label_scoring", label_words=label_words)
    seen = []
    model.get_output_embeddings().register_forward_hook(lambda mod, inp, out: seen.append(tuple(out.shape)))
    batch = pad_batch([strategy.encode(t) for t in TEXTS], tokenizer.pad_token_id)
    strategy.scores(model, batch).sum().backward()
    kept = 1 + sum(len(w) - 1 for w in strategy.label_token_ids)  # the prompt's last position + continuations
    assert seen and all(shape[1] <= kept for shape in seen), seen
    assert len(seen) == 1, seen
    if strategy.single_token:  # ...and only the label words' rows of the vocabulary
        assert all(shape[-1] == len(label_words) for shape in seen), seen
    assert batch["input_ids"].shape[1] > kept  # the check would be vacuous otherwise


@pytest.mark.parametrize("name", ["label_scoring", "classifier"])
def test_scores_do_not_depend_on_batch_padding(tiny_path, tokenizer, name):
    strategy, model = build(tiny_path, tokenizer, name)
    with torch.no_grad():
        together = strategy.scores(model, pad_batch([strategy.encode(t) for t in TEXTS], tokenizer.pad_token_id))
        alone = torch.cat(
            [strategy.scores(model, pad_batch([strategy.encode(t)], tokenizer.pad_token_id)) for t in TEXTS]
        )
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=1e-4)


def overfit(strategy, model, tokenizer, texts, labels, steps=30, lr=3e-3):
    """Full-batch AdamW on `texts`: both strategies reach a loss near 0 and every example right in 30 steps here."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    batch = pad_batch([strategy.encode(t) for t in texts], tokenizer.pad_token_id)
    target = torch.tensor(labels)
    losses = []
    for _ in range(steps):
        loss = F.cross_entropy(strategy.scores(model, batch), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        predicted = strategy.scores(model, batch).argmax(-1)
    return losses, (predicted == target).float().mean().item()


@pytest.mark.parametrize("name", ["label_scoring", "classifier"])
def test_each_strategy_overfits_32_examples(tiny_path, tokenizer, name):
    from sentiment_ray.data import load_splits

    train = load_splits("offline", seed=7).train.head(32)
    strategy, model = build(tiny_path, tokenizer, name)
    losses, accuracy = overfit(strategy, model, tokenizer, train["text"].tolist(), train["label"].astype(int).tolist())
    assert losses[-1] < 0.5 * losses[0], losses[::10]
    assert accuracy == 1.0


def test_prompt_encoder_truncates_the_review_not_the_cue(tokenizer):
    encode = PromptEncoder(tokenizer, PromptConfig().template, max_length=16)
    suffix = tokenizer("\n情感倾向：", add_special_tokens=False)["input_ids"]
    ids = encode("很好" * 200)
    assert len(ids) == 16 and ids[-len(suffix) :] == suffix
    assert encode("很好") == tokenizer("评论：很好\n情感倾向：", add_special_tokens=False)["input_ids"]
    with pytest.raises(ValueError, match="no room"):
        PromptEncoder(tokenizer, PromptConfig().template, max_length=4)


def test_batch_encoding_equals_one_text_at_a_time(tokenizer):
    """`many` (one fast-tokenizer call) gives each text the ids a separate call gives it, truncated ones included."""
    template, max_length = PromptConfig().template, 40
    encoder = PromptEncoder(tokenizer, template, max_length)
    prefix, suffix = (tokenizer(part, add_special_tokens=False)["input_ids"] for part in template.split("{text}"))

    def one_at_a_time(text):
        ids = tokenizer(template.format(text=text), add_special_tokens=False)["input_ids"]
        if len(ids) <= max_length:
            return ids
        return (
            prefix
            + tokenizer(text, add_special_tokens=False)["input_ids"][: max_length - len(prefix + suffix)]
            + suffix
        )

    texts = [*TEXTS, "好" * 200, "  空格 ", "emoji 😀👍 ok", "Ｆｕｌｌ　ｗｉｄｔｈ", "長" * 39, "line\r\nbreak"]
    many = encoder.many(texts)
    assert many == [one_at_a_time(t) for t in texts] == [encoder(t) for t in texts]
    assert max(map(len, many)) == max_length and encoder.many([]) == []


def test_words_of_several_tokens_refuse_an_attention_that_ignores_their_mask(tiny_path, tokenizer):
    strategy, model = build(tiny_path, tokenizer, "label_scoring", label_words=SIX_CATEGORIES)
    batch = pad_batch([strategy.encode(t) for t in TEXTS], tokenizer.pad_token_id)
    model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError, match="need sdpa or eager attention, not 'flash_attention_2'"):
        strategy.scores(model, batch)
    model.config._attn_implementation = "eager"  # the additive float mask: the same scores as sdpa's bool mask
    with torch.no_grad():
        eager = strategy.scores(model, batch)
        model.config._attn_implementation = "sdpa"
        torch.testing.assert_close(eager, strategy.scores(model, batch), atol=1e-4, rtol=1e-4)
