"""Ray Tune sweep over LoRA rank and learning rate: every trial is one Ray Train run of the same `train_loop`.

Sweep folder layout (`output_dir`):
    config.yaml           the base run config plus its `tune:` section
    data_report.json      rows read / dropped per split (the data is loaded and validated once, here)
    trials.csv, trials.md every trial: searched params, status, iterations, metric, test metrics
    sweep.png             learning rate × LoRA rank, coloured by the metric
    best/                 the best completed trial's model folder + test_results.json (input for Serve)
    trials/<trial_id>/    each trial's run folder (HF checkpoint scratch, TensorBoard)
    ray/tune/             the Tune experiment: a rerun restores it instead of starting over
    ray/train/<trial_id>/ each trial's Ray Train run (checkpoints), named after the trial
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sentiment_ray.config import STRATEGIES, RunConfig, _check_choice, build_dataclass, load_config, save_config
from sentiment_ray.errors import ConfigError

EXPERIMENT = "tune"
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
    """Validation metric reported at every checkpoint (`eval_f1`, `eval_loss`, `eval_accuracy`, ...): ASHA and
    the choice of the best trial use it."""
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
        _check_choice("tune.mode", self.mode, ("max", "min"))
        _check_choice("tune.scheduler", self.scheduler, ("asha", "none"))
        if not self.lora_r or min(self.lora_r) < 1:
            raise ConfigError(f"tune.lora_r must list ranks >= 1, got {self.lora_r}")
        if not 0 < self.lr_min <= self.lr_max:
            raise ConfigError(f"tune.lr_min/lr_max must satisfy 0 < lr_min <= lr_max, got {self.lr_min}, {self.lr_max}")
        for strategy in self.strategies or []:
            _check_choice("tune.strategies", strategy, STRATEGIES)
        if self.grace_period < 1 or self.reduction_factor <= 1:
            raise ConfigError("tune.grace_period must be >= 1 and tune.reduction_factor > 1")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise ConfigError(f"tune.max_concurrent must be >= 1, got {self.max_concurrent}")


@dataclass
class TuneOutcome:
    output_dir: Path
    rows: list[dict]
    best: dict | None
    """The best completed trial's row; none when the sweep was interrupted (rerun to finish it)."""
    best_dir: Path | None
    restored: bool
    wall_s: float


def load_tune_config(
    path: str | Path | None, overrides: list[str] | None = None, updates: dict[str, Any] | None = None
) -> tuple[RunConfig, TuneConfig]:
    """A YAML file's `tune:` section (+ `tune.*` updates/overrides) → TuneConfig; the rest → `load_config`."""
    if path and not Path(path).is_file():
        raise ConfigError(f"config file not found: {path}")
    values = (yaml.safe_load(Path(path).read_text(encoding="utf-8")) if path else None) or {}
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
        raise ConfigError(f"{path or 'config'}: {err}") from None
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


def run_tune(cfg: RunConfig, tc: TuneConfig) -> TuneOutcome:
    from ray import tune

    from sentiment_ray.modeling import prepare_base
    from sentiment_ray.ray_runtime import precheck
    from sentiment_ray.train import check_resources, load_run_splits, scaling_request
    from sentiment_ray.tune_report import export_best, summarize, write_plot, write_tables

    precheck(*scaling_request(cfg))  # one trial's workers must fit an embedded Ray: fail before anything starts
    started = time.monotonic()
    output_dir = Path(cfg.output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    storage = cfg.storage_path or str(output_dir / "ray")
    experiment = f"{storage}/{EXPERIMENT}"
    restored = tune.Tuner.can_restore(experiment)
    if restored:
        cfg, tc = _sweep_as_started(cfg, tc, output_dir)
    else:
        _save_sweep_config(cfg, tc, output_dir / "config.yaml")
    splits = load_run_splits(cfg, output_dir)  # once, in the driver; with_parameters puts it in the object store
    prepare_base(cfg.model.name, cfg.model.tiny_seed)  # shared cache entries: built here once, trials read them
    ray = _init_ray_with_state_api()
    check_resources(cfg)
    if tc.scheduler != "none":
        _require_state_api()
    layout = {"trials": str(output_dir / "trials"), "train_storage": f"{storage}/train"}
    trainable = tune.with_parameters(run_trial, base=cfg.to_dict(), splits=splits, layout=layout, metric=tc.metric)
    # The trial actor only waits on fit() (1 CPU, Tune's default); the Train workers reserve their own group.
    trainable = tune.with_resources(trainable, {"CPU": 1})
    if restored:
        print(f"[tune] restoring the sweep in {experiment}: finished trials are kept, unfinished ones resume")
        tuner = tune.Tuner.restore(experiment, trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        concurrent = max_concurrent_trials(cfg, tc, ray.cluster_resources())
        print(f"[tune] {tc.num_samples} trials, at most {concurrent} at once, scheduler {tc.scheduler}", flush=True)
        tuner = _new_tuner(trainable, tc, storage, concurrent)
    rows = summarize(tuner.fit(), tc)
    write_tables(rows, output_dir, tc)
    write_plot(rows, output_dir / "sweep.png", tc)
    if any(row["status"] == "unfinished" for row in rows):  # interrupted: no best until the sweep is done
        return TuneOutcome(output_dir, rows, None, None, restored, time.monotonic() - started)
    best, best_dir = export_best(rows, cfg, tc, output_dir, storage)
    return TuneOutcome(output_dir, rows, best, best_dir, restored, time.monotonic() - started)


def _save_sweep_config(cfg: RunConfig, tc: TuneConfig, path: Path) -> None:
    import dataclasses

    save_config(cfg, path)
    with path.open("a", encoding="utf-8") as f:
        yaml.safe_dump({"tune": dataclasses.asdict(tc)}, f, allow_unicode=True, sort_keys=False)


def _sweep_as_started(cfg: RunConfig, tc: TuneConfig, output_dir: Path) -> tuple[RunConfig, TuneConfig]:
    """A restored sweep keeps the config it started with, so that its trials stay comparable."""
    saved = output_dir / "config.yaml"
    if not saved.is_file():
        return cfg, tc
    started = load_tune_config(saved, updates={"output_dir": cfg.output_dir, "storage_path": cfg.storage_path})
    if started != (cfg, tc):
        print(f"[tune] note: resuming with the sweep's own {saved}; this run's config and flags differ and are ignored")
    return started


def _init_ray_with_state_api():
    """`init_ray()`, but an embedded cluster also tells its workers its own address.

    Ray Train frees the placement group of a trial that ASHA stops from a worker process, through the State
    API. A worker finds the API by auto-detecting the local cluster, which fails as soon as a second Ray
    instance runs on the machine (a test session, another sweep): the cleaner's thread dies with a
    ConnectionError, the group stays reserved, and once leaks use up the CPUs the next trial hangs at worker
    startup. Pinning the GCS port lets every worker get RAY_ADDRESS through the job's runtime env.
    """
    import ray
    from ray.util import get_node_ip_address

    from sentiment_ray.ray_runtime import init_ray

    if ray.is_initialized() or os.environ.get("RAY_ADDRESS"):
        return init_ray()
    with socket.socket() as s:  # a free port for the GCS (a tiny race with other processes, acceptable here)
        s.bind(("", 0))
        port = s.getsockname()[1]
    os.environ["RAY_GCS_SERVER_PORT"] = str(port)  # read by ray.init when it starts the head node
    try:
        return init_ray(runtime_env={"env_vars": {"RAY_ADDRESS": f"{get_node_ip_address()}:{port}"}})
    finally:
        del os.environ["RAY_GCS_SERVER_PORT"]


def _require_state_api() -> None:
    """Refuse ASHA when workers cannot reach the State API: stopped trials would leak and hang the next one."""
    import ray

    problem = ray.get(ray.remote(num_cpus=0)(_state_api_problem).remote())  # asked from a worker, where it matters
    if problem:
        raise ConfigError(
            "tune.scheduler=asha needs the Ray dashboard's State API reachable from workers: Ray Train uses it to "
            "free the placement group of a trial ASHA stops. Start Ray with the dashboard (`ray[default]`, no "
            f"--include-dashboard=false) or use --set tune.scheduler=none ({problem})"
        )


def _state_api_problem() -> str | None:
    from ray.util.state import list_nodes

    try:
        list_nodes(limit=1, timeout=10)
    except Exception as err:  # RayStateApiException, or a ConnectionError when the dashboard is absent
        return f"{type(err).__name__}: {err}"
    return None


def _new_tuner(trainable, tc: TuneConfig, storage: str, concurrent: int):
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    scheduler = None
    if tc.scheduler == "asha":
        # max_t far above any run's report count: trials end when training ends, never cut at max_t.
        scheduler = tune.schedulers.ASHAScheduler(
            max_t=1_000_000, grace_period=tc.grace_period, reduction_factor=tc.reduction_factor
        )
    return tune.Tuner(
        trainable,
        param_space=search_space(tc),
        tune_config=tune.TuneConfig(
            metric=tc.metric,
            mode=tc.mode,
            num_samples=tc.num_samples,
            scheduler=scheduler,
            # The limit goes on the generator: Tune ignores max_concurrent_trials beside a given search_alg.
            search_alg=BasicVariantGenerator(max_concurrent=concurrent, random_state=tc.seed),
        ),
        run_config=tune.RunConfig(storage_path=storage, name=EXPERIMENT),
    )


def run_trial(params: dict, base: dict, splits: dict, layout: dict, metric: str) -> None:
    """Tune trainable: one Ray Train run of `train_loop`, named after the trial so a restarted trial resumes."""
    import ray.tune

    from sentiment_ray.train import build_trainer
    from sentiment_ray.tune_report import EvalCarryingReport

    trial_id = ray.tune.get_context().get_trial_id()
    trial_dir = Path(layout["trials"]) / trial_id
    trial_dir.mkdir(parents=True, exist_ok=True)
    cfg = trial_config(base, params, trial_dir)
    save_config(cfg, trial_dir / "config.yaml")
    storage = layout["train_storage"]
    build_trainer(cfg, splits, storage, trial_id, None, trial_dir, callbacks=[EvalCarryingReport(metric)]).fit()
