"""The GPU check's steps (benchmarks/gpu_check.py), each a function of the project's own code, none of Ray's.

- `train`: one worker's training, without Ray: `training.trainer.sentiment_trainer` (what Ray Train's `train_loop`
  runs on every worker) and `trainer.train()`; tokens/s, MFU, peak memory, the loss, the folder saved and reloaded.
- `predictor`: `SentimentPredictor` on 2,000 reviews at three token budgets, against the same folder in fp32.
- `qlora_load`: seconds to load a QLoRA folder (4-bit base + adapter) onto the device.
- `export`: `sentiment-ray export`'s merged folder in plain transformers against the folder's predictor.

FLOPs (benchmarks/common.py: forward_flops, real tokens only): a training step counts forward + backward to the
activations (2 × forward); LoRA computes no weight gradient of the frozen base, and the adapters' own FLOPs and
gradient checkpointing's recompute are not model FLOPs. MFU = model FLOP/s over the bf16 matmul peak measured in
the same run.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from benchmarks import common
from benchmarks.training_memory import CudaPeak

DECIDED_MARGIN = 0.01
"""A binary row whose fp32 confidence is at least 0.5 + this is decided by more than bf16's rounding."""


def run_config(preset: str, strategy: str, plan: dict, out: Path):
    """The preset's RunConfig for one Ray-free worker on `plan["device"]` with the check's data and steps."""
    from sentiment_ray.config import load_config

    cuda = plan["device"] == "cuda"
    updates = {
        "model.name": plan["model"],
        "model.strategy": strategy,
        "data.source": plan["reviews"],
        "data.max_train_samples": plan["train_rows"],
        "data.val_size": plan["eval_rows"],
        "data.test_size": plan["eval_rows"],
        "train.max_steps": plan["steps"],
        "train.save_steps": plan["steps"] + 1,  # no mid-run checkpoint or evaluation: the steps are what is timed
        "train.logging_steps": 1,
        "train.early_stopping_patience": 0,
        "train.report_to": ["none"],
        "scaling.num_workers": 1,
        "scaling.use_gpu": cuda,
        "output_dir": str(out),
    }
    if plan.get("max_length"):
        updates["data.max_length"] = plan["max_length"]
    return load_config(common.PRESETS[preset], updates=updates)


class TokenCounter:
    """The Trainer's collator, counting the real (attention-mask) and padded tokens of every training batch."""

    def __init__(self, collate):
        self.collate, self.real, self.padded, self.lengths = collate, 0, 0, []

    def __call__(self, rows):
        batch = self.collate(rows)
        mask = batch["attention_mask"]
        self.real += int(mask.sum())
        self.padded += mask.numel()
        self.lengths += mask.sum(dim=1).tolist()
        return batch


def train(preset: str, strategy: str, plan: dict, work: Path) -> dict:
    """20 steps (2 in a rehearsal) of one worker's training; the folder it saves, reloaded by the predictor."""
    from sentiment_ray.models.folder import save_model_folder
    from sentiment_ray.training.callbacks import StepTimeCallback
    from sentiment_ray.training.driver import load_run_splits, with_labels
    from sentiment_ray.training.trainer import sentiment_trainer

    out = work / f"{preset}-{strategy}"
    out.mkdir(parents=True, exist_ok=True)
    cfg = run_config(preset, strategy, plan, out)
    splits, labels = load_run_splits(cfg, out)
    cfg = with_labels(cfg, labels)
    memory = CudaPeak() if plan["device"] == "cuda" else None
    if memory:
        memory.start()
    timer = StepTimeCallback()
    trainer, tokenizer, encoded = sentiment_trainer(cfg, splits, str(out / "hf_checkpoints"), [timer])
    counter = TokenCounter(trainer.data_collator)
    trainer.data_collator = counter
    _, seconds = common.timed(trainer.train, plan["device"])
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    flops = 2 * common.forward_flops(trainer.model.config, counter.lengths, head_columns=2)
    row = {"preset": preset, "strategy": strategy, "steps": trainer.state.global_step, "train_s": round(seconds, 2)}
    row |= {"seconds_per_step": timer.summary()["seconds_per_step"], "real_tokens": counter.real}
    peak_gb = round(memory.stop() / 2**30, 2) if memory else None
    row |= {"padded_tokens": counter.padded, "tokens_per_s": counter.real / seconds, "peak_memory_gb": peak_gb}
    row |= {"first_losses": losses[:3], "last_losses": losses[-3:], "loss_fell": _fell(losses)}
    row |= common.utilisation(flops, seconds, plan["peak"])
    folder = save_model_folder(trainer.model, tokenizer, cfg, out / "model")
    texts = plan["texts"][:64]
    in_memory = _predictor_of(trainer.model.eval(), tokenizer, trainer.strategy, folder, plan).predict_batch(texts)
    del trainer
    _free(plan["device"])
    reloaded = _load(folder, plan, plan["precision"]).predict_batch(texts)
    gap = max(abs(a["confidence"] - b["confidence"]) for a, b in zip(in_memory, reloaded, strict=True))
    errors = sum(r["error"] is not None for r in reloaded)
    # bf16: the merged reloaded adapter and the in-memory one round differently; random weights sit near 0.5
    return row | {"folder": str(folder), "reload_max_prob_gap": gap, "reloads": errors == 0 and gap < 0.02}


def predictor(folder: str, plan: dict) -> list[dict]:
    """Reviews/s and MFU at the default token budget and half and double it; label agreement with fp32."""
    from sentiment_ray.inference.predictor import SentimentPredictor

    texts = plan["texts"]
    fast = _load(folder, plan, plan["precision"])
    lengths = [len(fast.strategy.encode(t)) for t in texts]
    columns = common.head_columns(fast.model, fast.strategy, fast.tokenizer)
    flops = None if columns is None else common.forward_flops(fast.model.config, lengths, columns)
    default = fast.batch_tokens
    rows = []
    for budget in (default // 2, default, default * 2):
        fast.batch_tokens = budget
        fast.predict_batch(texts[:64])  # warm-up: kernels, allocator
        predictions, seconds = common.timed(lambda p=fast: p.predict_batch(texts), plan["device"])
        row = {"batch_tokens": budget, "default": budget == default, "rows": len(texts), "seconds": seconds}
        rows.append(row | {"reviews_per_s": len(texts) / seconds, **common.utilisation(flops, seconds, plan["peak"])})
    del fast
    _free(plan["device"])
    exact = SentimentPredictor.from_pretrained(folder, device=plan["device"], precision="fp32").predict_batch(texts)
    pairs = list(zip(predictions, exact, strict=True))
    same = sum(a["label"] == b["label"] for a, b in pairs) / len(pairs)
    # Random weights put many rows within bf16's rounding of a tie; rows that fp32 decides by a margin must agree.
    decided = [(a, b) for a, b in pairs if b["confidence"] is not None and b["confidence"] >= 0.5 + DECIDED_MARGIN]
    decided_same = sum(a["label"] == b["label"] for a, b in decided) / max(1, len(decided))
    for row in rows:
        row |= {"labels_as_fp32": same, "decided_rows": len(decided), "decided_as_fp32": decided_same}
        row["agrees"] = same >= 0.995 or decided_same >= 0.995
    return rows


def qlora_load(folder: str, plan: dict) -> dict:
    started = time.perf_counter()
    loaded = _load(folder, plan, plan["precision"])
    common.timed(lambda: loaded.predict_batch(plan["texts"][:8]), plan["device"])
    return {"folder": folder, "load_and_first_predict_s": time.perf_counter() - started}


def export(folder: str, plan: dict, work: Path) -> dict:
    """The merged export in plain transformers on the device gives the folder's predictions."""
    from benchmarks.plain_export import plain_transformers_p_positive
    from sentiment_ray.models.export import export_model

    texts = plan["texts"][:200]
    dtype = torch.bfloat16 if plan["precision"] == "bf16" else torch.float32
    merged = export_model(folder, work / "export", dtype=dtype)
    plain = plain_transformers_p_positive(merged, texts, plan["device"], dtype)
    ours = _load(folder, plan, plan["precision"]).predict_batch(texts)
    same = sum((p > 0.5) == (o["label_id"] == 1) for p, o in zip(plain, ours, strict=True))
    gap = max(abs(p - o["prob_positive"]) for p, o in zip(plain, ours, strict=True))
    return {
        "folder": folder,
        "rows": len(texts),
        "same_labels": same,
        "max_prob_gap": gap,
        "agrees": same >= 0.99 * len(texts),
    }


def _load(folder, plan: dict, precision: str):
    from sentiment_ray.inference.predictor import SentimentPredictor

    return SentimentPredictor.from_pretrained(folder, device=plan["device"], precision=precision)


def _predictor_of(model, tokenizer, strategy, folder: Path, plan: dict):
    from sentiment_ray.inference.predictor import SentimentPredictor
    from sentiment_ray.models.folder import read_meta

    return SentimentPredictor(model, tokenizer, strategy, read_meta(folder), torch.device(plan["device"]))


def _fell(losses: list[float]) -> bool | None:
    """Whether the mean of the last three logged losses is below that of the first three (None: too few)."""
    if len(losses) < 6:
        return None
    return sum(losses[-3:]) / 3 < sum(losses[:3]) / 3


def _free(device: str) -> None:
    import gc

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()
