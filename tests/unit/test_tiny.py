"""The offline `tiny` preset: a deterministic random Qwen2 folder that loads like a downloaded model."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from sentiment_ray.models.tiny import TINY_MODEL_ID, materialize_tiny, tiny_qwen2_config
from sentiment_ray.models.tokenizer import qwen_tokenizer_dir

VOCAB = 151_936
PAD = 151_643


@pytest.fixture(scope="module")
def shared_tokenizer_dir(tmp_path_factory):
    """Build the Qwen tokenizer once; every fresh cache below links to it instead of rebuilding."""
    root = tmp_path_factory.mktemp("shared-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SENTIMENT_RAY_CACHE", str(root))
        qwen_tokenizer_dir()
    return root / "tokenizers"


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch, shared_tokenizer_dir):
    """Return a function that points SENTIMENT_RAY_CACHE at a new, empty (but for the tokenizer) cache."""
    count = 0

    def make():
        nonlocal count
        count += 1
        root = tmp_path / f"cache{count}"
        root.mkdir()
        (root / "tokenizers").symlink_to(shared_tokenizer_dir, target_is_directory=True)
        monkeypatch.setenv("SENTIMENT_RAY_CACHE", str(root))
        return root

    return make


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, shared_tokenizer_dir):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SENTIMENT_RAY_CACHE", str(shared_tokenizer_dir.parent))
        return materialize_tiny()


@pytest.fixture(scope="module")
def tiny_tok(tiny_dir):
    return AutoTokenizer.from_pretrained(tiny_dir)


def test_config_is_a_small_qwen2():
    config = tiny_qwen2_config()
    assert TINY_MODEL_ID == "tiny"
    assert config.model_type == "qwen2"
    assert (config.hidden_size, config.intermediate_size, config.num_hidden_layers) == (128, 512, 2)
    assert (config.num_attention_heads, config.num_key_value_heads) == (4, 2)
    assert config.vocab_size == VOCAB
    assert config.tie_word_embeddings is True
    assert config.max_position_embeddings == 1024
    assert config.rope_parameters["rope_theta"] == 1e6
    assert config.bos_token_id == config.eos_token_id == config.pad_token_id == PAD


def test_same_seed_gives_identical_weights_and_other_seed_differs(fresh_cache):
    fresh_cache()
    first = materialize_tiny(seed=0)
    other_seed = materialize_tiny(seed=1)
    fresh_cache()
    second = materialize_tiny(seed=0)
    assert first != second and first.name == second.name  # same inputs, same entry name
    assert other_seed.name != first.name
    weights, again, other = (load_file(folder / "model.safetensors") for folder in (first, second, other_seed))
    assert weights.keys() == again.keys() == other.keys()
    assert all(torch.equal(weights[name], again[name]) for name in weights)
    assert not torch.equal(weights["model.embed_tokens.weight"], other["model.embed_tokens.weight"])


def test_existing_folder_is_reused(fresh_cache):
    root = fresh_cache()
    folder = materialize_tiny()
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert materialize_tiny() == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    leftovers = [p.name for p in (root / "models").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == [folder.name]  # no temp folders left behind


def test_callers_random_stream_is_untouched(fresh_cache):
    fresh_cache()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    materialize_tiny(seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_folder_holds_model_and_tokenizer_files(tiny_dir):
    names = {p.name for p in tiny_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names


def test_tokenizer_loads_from_the_folder(tiny_tok):
    tok = tiny_tok
    assert tok("正面").input_ids == [106557]
    assert tok("评论：好\n情感倾向：").input_ids[-3:] == [104934, 103345, 5122]
    assert tok.pad_token_id == tok.eos_token_id == PAD
    assert tok.padding_side == "left"


def test_loads_as_causal_lm_and_gives_full_vocab_logits(tiny_dir, tiny_tok):
    model = AutoModelForCausalLM.from_pretrained(tiny_dir).eval()
    assert model.config.pad_token_id == PAD
    assert 19_000_000 < model.num_parameters() < 21_000_000  # the tied 151,936 x 128 embedding dominates
    batch = tiny_tok(["评论：很好\n情感倾向：", "差"], return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (2, batch.input_ids.shape[1], VOCAB)
    assert torch.isfinite(logits).all()


def test_loads_as_sequence_classifier(tiny_dir, tiny_tok):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_dir, num_labels=2).eval()
    # Without a pad id the classifier cannot find the last real token of a padded row.
    assert model.config.pad_token_id == PAD
    batch = tiny_tok(["这家店很好", "差"], return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (2, 2)
    assert torch.isfinite(logits).all()
