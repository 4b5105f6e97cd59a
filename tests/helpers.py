"""Test helpers shared by fixtures and tests (importable because pytest puts tests/ on sys.path)."""

import shutil
from pathlib import Path

import torch

from sentiment_ray.config import RunConfig, build_dataclass
from sentiment_ray.models.folder import save_model_folder
from sentiment_ray.models.loading import load_base_model, prepare_for_training
from sentiment_ray.models.strategies import make_strategy

BINARY_FOLDERS = Path(__file__).parent / "data" / "binary_folders"
"""Binary model folders written before N-class labels, and what they predicted then (its README.md)."""

TRAINED = {"label_scoring": "full", "classifier": "lora"}
"""The fine-tune mode of each strategy's shared Ray-trained run (`trained_runs`): the main job's, and the default."""


def randomised_model(tiny_path, tokenizer, strategy_name="label_scoring", finetune="lora", labels=None):
    """(config, strategy, model) on the tiny base with its trainable adapters/head randomised, so they matter.
    `labels`: a `labels` list of classes (None: binary sentiment)."""
    values = {"model": {"name": "tiny", "strategy": strategy_name, "finetune": finetune}, "data": {"max_length": 64}}
    cfg = build_dataclass(RunConfig, {**values, **({"labels": labels} if labels else {})})
    torch.manual_seed(1)
    strategy = make_strategy(strategy_name, tokenizer, cfg.prompt, cfg.data.max_length, cfg.label_set())
    model = load_base_model(
        strategy,
        tiny_path,
        pad_token_id=tokenizer.pad_token_id,
        finetune=finetune,
        device=torch.device("cpu"),
        dtype=torch.float32,
    )
    model = prepare_for_training(model, strategy, cfg.model, cfg.lora)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad and ("lora_" in name or "score" in name):
                param.normal_(0, 0.5)
    return cfg, strategy, model.eval()


def build_model_folder(folder, tiny_path, tokenizer, strategy_name="label_scoring", labels=None):
    """A LoRA model folder on the tiny base (no Ray), written with the library's own save function."""
    cfg, _, model = randomised_model(tiny_path, tokenizer, strategy_name, labels=labels)
    return save_model_folder(model, tokenizer, cfg, folder)


def small_run(output_dir, **updates) -> RunConfig:
    """A Ray Train run of a few steps on 64 reviews, 2 workers: every stage runs, in seconds of compute."""
    from sentiment_ray.config import load_config

    return load_config(None, updates=small_run_updates(output_dir, **updates))


def small_run_updates(output_dir, **updates) -> dict:
    """`small_run`'s options as dotted keys, the form `sentiment_ray.train` and the named flags take."""
    base = {
        "model.name": "tiny",
        "data.source": "offline",
        "data.max_train_samples": 64,
        "data.val_size": 32,
        "data.test_size": 32,
        "data.max_length": 48,
        "train.max_steps": 4,
        "train.save_steps": 2,
        "train.logging_steps": 1,
        "train.batch_size": 4,
        "train.eval_batch_size": 16,
        "train.learning_rate": 1e-3,
        "scaling.num_workers": 2,
        "output_dir": str(output_dir),
    }
    return {**base, **updates}


def binary_folder(strategy: str, tiny_path, root: Path) -> Path:
    """A copy of a kept binary folder (BINARY_FOLDERS) with the tokenizer.json the repository leaves out: the tiny
    base's own, which the folder was written with."""
    folder = root / strategy
    shutil.copytree(BINARY_FOLDERS / strategy, folder)
    shutil.copy(Path(tiny_path) / "tokenizer.json", folder / "tokenizer.json")
    return folder


def self_labelled(folder, texts: list[str], precision: str = "auto"):
    """`texts` with labels that make a random-adapter fixture model's confidence mean something: its own
    predictions, with the least confident 30% flipped (confident rows right, unsure ones wrong), as a DataFrame
    (`text`, `label`). Against real labels such a model reaches no accuracy target at any threshold."""
    import numpy as np
    import pandas as pd

    from sentiment_ray.inference.predictor import SentimentPredictor

    rows = SentimentPredictor.from_pretrained(str(folder), device="cpu", precision=precision).predict_batch(texts)
    labels = np.array([r["label_id"] for r in rows])
    unsure = np.argsort([r["confidence"] for r in rows])[: int(0.3 * len(rows))]
    labels[unsure] = 1 - labels[unsure]
    return pd.DataFrame({"text": texts, "label": labels})


def wait_for(condition, timeout_s: float, every_s: float = 0.1):
    """`condition()`'s first truthy value within `timeout_s`, else None."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    return None
