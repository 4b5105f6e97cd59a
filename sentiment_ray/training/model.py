"""The model every training worker builds from a run config: base weights, strategy, adapters, precision.

One function, so that the training loop and the training-memory benchmark build exactly the same model.
"""

from __future__ import annotations

import torch

from sentiment_ray.config import RunConfig


def build_training_model(cfg: RunConfig):
    """(model ready to train, tokenizer, strategy, device, compute dtype) for `cfg`, as every worker builds them."""
    from sentiment_ray.models.loading import (
        compute_dtype,
        load_base_model,
        load_tokenizer,
        pick_device,
        prepare_for_training,
        resolve_base,
    )
    from sentiment_ray.models.strategies import make_strategy

    device = pick_device(cfg.scaling.use_gpu)
    dtype = compute_dtype(cfg.train.precision, device)
    base_path = resolve_base(cfg.model.name, cfg.model.tiny_seed)
    tokenizer = load_tokenizer(base_path)
    strategy = make_strategy(cfg.model.strategy, tokenizer, cfg.prompt, cfg.data.max_length, cfg.label_set())
    torch.manual_seed(cfg.train.seed)  # the classifier head's init must agree across workers
    # Full finetuning keeps fp32 master weights (bf16 comes from autocast); adapters train on a bf16 base.
    load_dtype = torch.float32 if cfg.model.finetune == "full" else dtype
    model = load_base_model(
        strategy,
        base_path,
        pad_token_id=tokenizer.pad_token_id,
        finetune=cfg.model.finetune,
        device=device,
        dtype=load_dtype,
    )
    return prepare_for_training(model, strategy, cfg.model, cfg.lora), tokenizer, strategy, device, dtype
