"""Shared fixtures: the offline tiny Qwen2 (built once, cached under ~/.cache/sentiment-ray) and its tokenizer."""

import os

import pytest

# Every process that starts or reaches a Ray cluster runs with token auth (shared/RAY-2.60-NOTES.md).
os.environ.setdefault("RAY_AUTH_MODE", "token")
# The Hub is unreachable here by design: fail fast instead of retrying for ~25 s.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_path():
    from sentiment_ray.tiny import materialize_tiny

    return str(materialize_tiny(seed=0))


@pytest.fixture(scope="session")
def tokenizer(tiny_path):
    from sentiment_ray.modeling import load_tokenizer

    return load_tokenizer(tiny_path)


def build_model_folder(folder, tiny_path, tokenizer, strategy_name="label_scoring"):
    """A LoRA model folder on the tiny base, adapters (and head) randomised so that they matter (no Ray)."""
    import torch

    from sentiment_ray.config import RunConfig, build_dataclass
    from sentiment_ray.model_folder import save_model_folder
    from sentiment_ray.modeling import load_base_model, prepare_for_training
    from sentiment_ray.strategies import make_strategy

    cfg = build_dataclass(
        RunConfig,
        {"model": {"name": "tiny", "finetune": "lora", "strategy": strategy_name}, "data": {"max_length": 64}},
    )
    torch.manual_seed(1)
    strategy = make_strategy(cfg.model.strategy, tokenizer, cfg.prompt, cfg.data.max_length)
    model = load_base_model(
        strategy,
        tiny_path,
        pad_token_id=tokenizer.pad_token_id,
        finetune="lora",
        device=torch.device("cpu"),
        dtype=torch.float32,
    )
    model = prepare_for_training(model, strategy, cfg.model, cfg.lora)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name or "score" in name:
                param.normal_(0, 0.5)
    return save_model_folder(model, tokenizer, cfg, folder)


@pytest.fixture(scope="session")
def model_folder(tmp_path_factory, tiny_path, tokenizer):
    return build_model_folder(tmp_path_factory.mktemp("model") / "model", tiny_path, tokenizer)


@pytest.fixture(scope="session")
def classifier_folder(tmp_path_factory, tiny_path, tokenizer):
    return build_model_folder(tmp_path_factory.mktemp("classifier") / "model", tiny_path, tokenizer, "classifier")
