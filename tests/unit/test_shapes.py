"""`random:<shape>` base models (sentiment_ray/models/shapes.py): the published Qwen2.5-1.5B architecture with
random weights. The full depth (3 GB) is built by `make smoke-real-shape`; here its config and parameter count are
checked on the meta device, and the 2-layer width shape is built for real."""

from __future__ import annotations

import json

import pytest
import torch

from sentiment_ray.errors import ConfigError
from sentiment_ray.models.folder_check import check_base_name
from sentiment_ray.models.loading import resolve_base
from sentiment_ray.models.shapes import is_random_weights, shape_config

# Qwen/Qwen2.5-1.5B config.json (the values the issue and the model card give).
PUBLISHED = {
    "num_hidden_layers": 28,
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
    "rms_norm_eps": 1e-6,
    "max_position_embeddings": 131072,
    "bos_token_id": 151643,
    "eos_token_id": 151643,
}


def test_the_full_depth_shape_has_the_published_config_and_1_54b_parameters():
    from transformers import Qwen2ForCausalLM

    config = shape_config("qwen2.5-1.5b")
    assert {key: getattr(config, key) for key in PUBLISHED} == PUBLISHED
    assert config.rope_parameters["rope_theta"] == 1_000_000.0 and config.head_dim == 128
    assert len(config.layer_types) == 28  # derived per layer: built for 28 layers, not the tiny config's 2
    with torch.device("meta"):
        n_params = sum(p.numel() for p in Qwen2ForCausalLM(config).parameters())
    assert n_params == 1_543_714_304  # the model card's "1.54B" (tied embeddings counted once)


def test_unknown_shapes_fail_before_anything_is_built():
    with pytest.raises(ConfigError, match="random:qwen2.5-1.5b"):
        check_base_name("random:qwen2.5-15b")
    check_base_name("random:qwen2.5-1.5b")  # known: no error, no folder built
    assert is_random_weights("random:qwen2.5-1.5b") and is_random_weights("tiny")
    assert not is_random_weights("Qwen/Qwen2.5-1.5B")


def test_the_width_shape_resolves_to_a_bf16_folder_that_loads(tmp_path, monkeypatch):
    from safetensors import safe_open

    monkeypatch.setenv("SENTIMENT_RAY_CACHE", str(tmp_path))
    folder = resolve_base("random:qwen2.5-1.5b-width")
    assert resolve_base("random:qwen2.5-1.5b-width") == folder  # built once, then found
    config = json.loads((tmp_path / folder / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"], config["dtype"]) == (2, 1536, "bfloat16")
    with safe_open(f"{folder}/model.safetensors", "pt") as weights:
        assert {weights.get_slice(k).get_dtype() for k in weights.keys()} == {"BF16"}
        assert "lm_head.weight" not in weights.keys()  # tied to the embedding, as in the published checkpoint
