"""Random-weight base models at real Qwen2.5 shapes: `--model random:qwen2.5-1.5b`.

They run everything a real checkpoint runs (LoRA / QLoRA wrapping of every layer, 4-bit quantisation at 1.5B
scale, DDP, gradient checkpointing, folder sizes, memory, load times) except what its trained weights know, with
no Hub. Every number measured on one is a random-weight number and says so; its predictions mean nothing.

- `qwen2.5-1.5b`: the architecture of Qwen/Qwen2.5-1.5B's published config.json at full depth: 28 layers,
  hidden 1,536, MLP 8,960, 12 query / 2 KV heads (head dim 128), vocabulary 151,936, tied embeddings, RoPE θ 1e6,
  RMSNorm ε 1e-6, about 1.54 B parameters.
- `qwen2.5-1.5b-width`: the same width at 2 layers, the benchmarks' stand-in for per-layer and vocabulary costs.

The folder is built once per machine under the cache (`materialize_random_qwen2`), in bf16 like the published
checkpoint (3.1 GB for the full depth), with the real Qwen tokenizer from the offline vocabulary.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import Qwen2Config

RANDOM_PREFIX = "random:"

QWEN25_15B = {
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "max_position_embeddings": 131072,
    "max_window_layers": 28,
    "sliding_window": 131072,
    "use_sliding_window": False,
    "rms_norm_eps": 1e-6,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "attention_dropout": 0.0,
}
"""Qwen/Qwen2.5-1.5B config.json values (vocabulary, tied embeddings, RoPE and token ids as in the tiny config)."""

SHAPES = {
    "qwen2.5-1.5b": QWEN25_15B,
    "qwen2.5-1.5b-width": {**QWEN25_15B, "num_hidden_layers": 2, "max_window_layers": 2},
}


def is_random_shape(name: str) -> bool:
    return str(name).startswith(RANDOM_PREFIX)


def is_random_weights(name: str) -> bool:
    """Whether a base model name means random weights (`tiny` or a `random:` shape): its numbers must say so."""
    from sentiment_ray.models.tiny import TINY_MODEL_ID

    return name == TINY_MODEL_ID or is_random_shape(name)


def check_shape_name(name: str) -> None:
    """ConfigError naming the known shapes for an unknown `random:<shape>` (light: no torch, no transformers)."""
    from sentiment_ray.errors import ConfigError

    if name.removeprefix(RANDOM_PREFIX) not in SHAPES:
        choices = ", ".join(RANDOM_PREFIX + s for s in SHAPES)
        raise ConfigError(f"unknown random-weight shape {name}; choose one of {choices}")


def shape_config(shape: str) -> Qwen2Config:
    """The Qwen2Config of a named shape, stored in bf16 like the published checkpoint."""
    from sentiment_ray.models.tiny import tiny_qwen2_config

    check_shape_name(RANDOM_PREFIX + shape)
    # the tiny config's vocabulary, tied embeddings, RoPE θ and token ids are already the real model's
    values = SHAPES[shape]
    head_dim = values["hidden_size"] // values["num_attention_heads"]
    return tiny_qwen2_config(**values, head_dim=head_dim, dtype="bfloat16")


def materialize_shape(name: str, seed: int = 0) -> Path:
    """The cached folder of `random:<shape>` (built on first use, by one process; see models/tiny.py)."""
    from sentiment_ray.models.tiny import materialize_random_qwen2

    shape = name.removeprefix(RANDOM_PREFIX)
    return materialize_random_qwen2(shape_config(shape), f"random-{shape}", seed)
