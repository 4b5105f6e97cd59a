"""What a sweep searches: its `tune:` config section, the search space, and the run config of each trial."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sentiment_ray.config import (
    STRATEGIES,
    RunConfig,
    build_dataclass,
    check_choice,
    config_names,
    load_config,
    read_config_files,
)
from sentiment_ray.errors import ConfigError

# Searched parameter → the RunConfig field it sets in each trial.
PARAM_PATHS = {
    "lora_r": "lora.r",
    "learning_rate": "train.learning_rate",
    "lora_alpha": "lora.alpha",
    "lora_dropout": "lora.dropout",
    "strategy": "model.strategy",
}


@dataclass
class TuneConfig:
    num_samples: int = 4
    """Trials to run; each samples its LoRA rank and learning rate (and the optional lists) from the space below."""
    metric: str = "eval_f1"
    """Validation metric reported at every checkpoint (`eval_f1`, `eval_loss`, `eval_accuracy`, `eval_macro_f1`, ...):
    ASHA and the choice of the best trial use it. `eval_f1` is class 1's F1 of two classes; with more, use
    `eval_macro_f1`."""
    mode: str = "max"
    """`max` or `min` (use `min` with `eval_loss`)."""
    lora_r: list[int] = field(default_factory=lambda: [4, 8, 16, 32, 64])
    """LoRA ranks to choose from (uniformly)."""
    lr_min: float = 1e-5
    """Lower end of the learning-rate range (sampled log-uniformly)."""
    lr_max: float = 1e-3
    """Upper end of the learning-rate range."""
    lora_alpha: list[int] | None = None
    """LoRA alphas to choose from; none keeps `lora.alpha`."""
    lora_dropout: list[float] | None = None
    """LoRA dropouts to choose from; none keeps `lora.dropout`."""
    strategies: list[str] | None = None
    """Strategies to choose from (`label_scoring`, `classifier`); none keeps `model.strategy`."""
    scheduler: str = "asha"
    """`asha` (stop trials that trail at a rung: async successive halving) or `none` (run every trial to the end)."""
    grace_period: int = 1
    """ASHA: reports (checkpoints, one per `train.save_steps`) a trial makes before it can be stopped."""
    reduction_factor: float = 2.0
    """ASHA: rung spacing and the share that goes on (2 keeps the better half at each rung)."""
    max_concurrent: int | None = None
    """Trials at once; none derives it from the cluster (CPUs, or GPUs, over one trial's share)."""
    seed: int | None = 0
    """Seed of the search (which ranks and learning rates are drawn); none draws differently every time."""

    def __post_init__(self):
        if self.num_samples < 1:
            raise ConfigError(f"tune.num_samples must be >= 1, got {self.num_samples}")
        if not self.metric.startswith("eval_"):
            raise ConfigError(f"tune.metric={self.metric!r}: use a metric reported during training, e.g. eval_f1")
        check_choice("tune.mode", self.mode, ("max", "min"))
        check_choice("tune.scheduler", self.scheduler, ("asha", "none"))
        if not self.lora_r or min(self.lora_r) < 1:
            raise ConfigError(f"tune.lora_r must list ranks >= 1, got {self.lora_r}")
        if not 0 < self.lr_min <= self.lr_max:
            raise ConfigError(f"tune.lr_min/lr_max must satisfy 0 < lr_min <= lr_max, got {self.lr_min}, {self.lr_max}")
        for strategy in self.strategies or []:
            check_choice("tune.strategies", strategy, STRATEGIES)
        if self.grace_period < 1 or self.reduction_factor <= 1:
            raise ConfigError("tune.grace_period must be >= 1 and tune.reduction_factor > 1")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise ConfigError(f"tune.max_concurrent must be >= 1, got {self.max_concurrent}")


def load_tune_config(
    path: str | Path | list | None, overrides: list[str] | None = None, updates: dict[str, Any] | None = None
) -> tuple[RunConfig, TuneConfig]:
    """A YAML file's `tune:` section (+ `tune.*` updates/overrides) → TuneConfig; the rest → `load_config`."""
    values = read_config_files(path)
    tune_values = values.pop("tune", None) or {}
    run_defaults, run_updates = _flatten(values), {}  # the YAML's values, then the named flags'
    for key, value in (updates or {}).items():
        if key.startswith("tune."):
            tune_values[key.removeprefix("tune.")] = value
        else:
            run_updates[key] = value
    run_overrides = []
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if sep and key.strip().startswith("tune."):
            tune_values[key.strip().removeprefix("tune.")] = yaml.safe_load(raw) if raw.strip() else ""
        else:
            run_overrides.append(item)
    try:
        cfg = load_config(None, run_overrides, run_updates, defaults=run_defaults)
        tc = build_dataclass(TuneConfig, tune_values, "tune")
        refuse_inert_search(cfg, tc)
    except ConfigError as err:
        raise ConfigError(f"{config_names(path)}: {err}") from None
    return cfg, tc


def refuse_inert_search(cfg: RunConfig, tc: TuneConfig) -> None:
    """A searched LoRA parameter does nothing when every weight trains: a sweep over it would compare noise."""
    if cfg.model.finetune != "full":
        return
    searched = {"tune.lora_r": len(set(tc.lora_r)) > 1, "tune.lora_alpha": len(set(tc.lora_alpha or [])) > 1}
    searched["tune.lora_dropout"] = len(set(tc.lora_dropout or [])) > 1
    inert = [name for name, varies in searched.items() if varies]
    if inert:
        raise ConfigError(
            f"{', '.join(inert)} is searched, but model.finetune=full trains every weight and uses no LoRA, so it "
            "has no effect: set model.finetune to lora or qlora, or search one value (e.g. --set tune.lora_r=[8])"
        )


def _flatten(values: dict, prefix: str = "") -> dict[str, Any]:
    """{"train": {"epochs": 1}} → {"train.epochs": 1}, the form `load_config(updates=...)` takes."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def search_space(tc: TuneConfig) -> dict:
    from ray import tune

    space = {"lora_r": tune.choice(tc.lora_r), "learning_rate": tune.loguniform(tc.lr_min, tc.lr_max)}
    if tc.lr_min == tc.lr_max:
        space["learning_rate"] = tc.lr_min
    optional = {"lora_alpha": tc.lora_alpha, "lora_dropout": tc.lora_dropout, "strategy": tc.strategies}
    space.update({name: tune.choice(values) for name, values in optional.items() if values})
    return space


def trial_config(base: dict, params: dict, output_dir: Path) -> RunConfig:
    """The base config with one trial's sampled params applied, validated like any other run config."""
    values = {k: dict(v) if isinstance(v, dict) else v for k, v in {**base, "output_dir": str(output_dir)}.items()}
    for name, value in params.items():
        section, key = PARAM_PATHS[name].split(".")
        values[section][key] = value
    return build_dataclass(RunConfig, values)


def max_concurrent_trials(cfg: RunConfig, tc: TuneConfig, cluster: dict) -> int:
    """Trials that fit at once: each needs its Train workers plus 1 CPU for the Tune trial actor."""
    if tc.max_concurrent:
        return tc.max_concurrent
    s = cfg.scaling
    fits = cluster.get("CPU", 0) // (s.num_workers * s.cpus_per_worker + 1)
    if s.use_gpu:
        fits = min(fits, cluster.get("GPU", 0) // (s.num_workers * s.gpus_per_worker))
    return max(1, int(fits))
