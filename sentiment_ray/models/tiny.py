"""The offline `tiny` base model: a small, randomly initialised Qwen2 with Qwen2.5's real tokenizer.

It lets the whole pipeline (train, tune, evaluate, score, serve) run in minutes on a CPU with no Hub.
It is for tests, CI and a first run; its accuracy says nothing about a real Qwen model.

`materialize_tiny()` writes an ordinary Hugging Face model folder, so the rest of the code loads it
exactly like a downloaded `Qwen/Qwen2.5-*` snapshot (`from_pretrained(folder)`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from sentiment_ray.cache import cached_directory, sentiment_ray_cache_dir, short_hash
from sentiment_ray.models.tokenizer import QWEN25_ADDED_TOKEN_IDS, TOKENIZER_FILES, qwen_tokenizer_dir

if TYPE_CHECKING:
    from transformers import Qwen2Config

TINY_MODEL_ID = "tiny"
# Qwen2.5 pads its embedding matrix to a multiple of 128 rows beyond the 151,665 tokens in use; we keep
# that size so the embedding shape, and thus code that slices logits by token id, matches the real model.
QWEN25_PADDED_VOCAB_SIZE = 151_936
_ENDOFTEXT_ID = QWEN25_ADDED_TOKEN_IDS["<|endoftext|>"]
MODEL_FILES = ("config.json", "model.safetensors", *TOKENIZER_FILES)
"""What a reader of a model folder needs: a cache entry without any of them is incomplete and rebuilt."""


def tiny_qwen2_config(**overrides) -> Qwen2Config:
    """Qwen2 architecture at toy size: 128 hidden, 2 layers, 4 query / 2 KV heads (GQA like the real one).

    `overrides` replace any field (models/shapes.py builds the real shapes this way, so that fields derived in
    Qwen2Config's constructor, such as the per-layer `layer_types`, follow the layer count)."""
    from transformers import Qwen2Config

    values = dict(
        vocab_size=QWEN25_PADDED_VOCAB_SIZE,
        hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
        tie_word_embeddings=True,
        bos_token_id=_ENDOFTEXT_ID,
        eos_token_id=_ENDOFTEXT_ID,
        # Sequence classification pools the last non-pad token, so it must know the pad id.
        pad_token_id=_ENDOFTEXT_ID,
        dtype="float32",
    )
    return Qwen2Config(**{**values, **overrides})


def materialize_tiny(seed: int = 0) -> Path:
    """Return a model folder for the tiny preset, writing it under the cache on first use."""
    return materialize_random_qwen2(tiny_qwen2_config(), "tiny-qwen2", seed)


def materialize_random_qwen2(config: Qwen2Config, prefix: str, seed: int = 0) -> Path:
    """Return a cached folder `<prefix>-<hash>` holding a random-init Qwen2 of `config` and the Qwen tokenizer.

    The folder holds config.json, model.safetensors (a `Qwen2ForCausalLM` initialised under
    `torch.manual_seed(seed)`) and the Qwen tokenizer files. Its name hashes the config, seed, torch
    version and tokenizer, so the same inputs always give the same weights, and any change gives a new
    folder rather than a silently different one. Safe to call from several processes at once, inside a
    `torch.distributed` group or not: the entry is complete or absent (see `sentiment_ray.cache`).
    """
    import torch

    tokenizer_dir = qwen_tokenizer_dir()
    # Random init draws from torch's generators, whose streams may change between torch releases.
    key = short_hash([config.to_json_string(use_diff=False), str(seed), torch.__version__, tokenizer_dir.name])
    target = sentiment_ray_cache_dir() / "models" / f"{prefix}-{key}"

    def build(tmp: Path) -> None:
        _write_random_qwen2(tmp, config, seed)
        for item in tokenizer_dir.iterdir():
            shutil.copy2(item, tmp / item.name)

    return cached_directory(target, MODEL_FILES, build)


def _write_random_qwen2(folder: Path, config: Qwen2Config, seed: int) -> None:
    """config.json + model.safetensors, written by this process whatever its `torch.distributed` rank.

    `PreTrainedModel.save_pretrained` writes nothing on a rank other than 0 of an initialised process
    group (transformers' `should_save_on_this_rank`), and Ray Train workers are such ranks. So the config
    and the weights are written directly, in save_pretrained's layout: a tied `lm_head.weight` is left out,
    since it is `model.embed_tokens.weight`.
    """
    import torch
    from safetensors.torch import save_file
    from transformers import Qwen2ForCausalLM

    # Built directly in the config's dtype (bf16 for the real shapes: 3.1 GB instead of 6.2 GB at 1.5B, like the
    # published checkpoint); fork_rng so that building the model does not reset the caller's global RNG stream.
    dtype = getattr(torch, str(config.dtype).removeprefix("torch.")) if config.dtype else torch.float32
    default_dtype = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_default_dtype(dtype)
        try:
            model = Qwen2ForCausalLM(config)
        finally:
            torch.set_default_dtype(default_dtype)
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    weights = {name: t.contiguous() for name, t in model.state_dict().items() if name not in tied}
    model.config.to_json_file(folder / "config.json")
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
