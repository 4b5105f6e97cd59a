"""The benchmark shapes: names resolve to the library's random-weight configs (no weights are built here)."""

import pytest

from benchmarks import common


def test_full_depth_shape_is_the_real_architecture():
    wide, full = common.shape_config("1.5b-width"), common.shape_config("1.5b")
    assert (full.num_hidden_layers, wide.num_hidden_layers) == (28, 2)
    for key in ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads", "vocab_size"):
        assert getattr(full, key) == getattr(wide, key)
    assert common.shape_base_folder("1.5b") == "random:qwen2.5-1.5b"
    # 28 layers of q, k, v, o and the MLP: about 1.31 B weights multiplied per token
    assert common.layer_matmul_params(full) == 14 * common.layer_matmul_params(wide) == pytest.approx(1.31e9, rel=0.01)


def test_unknown_shape_names_every_choice():
    with pytest.raises(ValueError, match="tiny, 1.5b-width, 1.5b"):
        common.shape_config("7b")
