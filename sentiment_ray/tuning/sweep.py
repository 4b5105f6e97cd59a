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

import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from sentiment_ray.config import RunConfig, save_config
from sentiment_ray.errors import ConfigError
from sentiment_ray.location import Location
from sentiment_ray.tuning.space import TuneConfig, load_tune_config, max_concurrent_trials, search_space, trial_config

EXPERIMENT = "tune"
log = logging.getLogger(__name__)


@dataclass
class TuneOutcome:
    output_dir: Path
    rows: list[dict]
    best: dict | None
    """The best completed trial's row; none when the sweep was interrupted (rerun to finish it)."""
    best_dir: Path | None
    restored: bool
    wall_s: float


def run_tune(cfg: RunConfig, tc: TuneConfig, tables: bool = True) -> TuneOutcome:
    """The sweep; `tables`: Tune prints its trial table as it goes (False: silent, for `tune --quiet`)."""
    from ray import tune

    from sentiment_ray.models.loading import prepare_base
    from sentiment_ray.runtime import check_durable, precheck
    from sentiment_ray.training.driver import check_resources, load_run_splits, scaling_request, with_labels
    from sentiment_ray.tuning.export import export_best
    from sentiment_ray.tuning.report import summarize, write_plot, write_tables

    if Location.of(cfg.output_dir).remote:
        raise ConfigError(
            f"tune --output-dir {cfg.output_dir!r}: a sweep folder is a local or shared-filesystem path; "
            "put the trials' checkpoints in shared storage with --set storage_path=s3://…"
        )
    check_durable(cfg.output_dir, "--output-dir")  # inside a Ray job: never into its temporary working dir
    check_durable(cfg.storage_path, "storage_path")
    precheck(*scaling_request(cfg))  # one trial's workers must fit an embedded Ray: fail before anything starts
    started = time.monotonic()
    output_dir = Path(cfg.output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    storage = Location.of(cfg.storage_path or output_dir / "ray")
    experiment = storage.join(EXPERIMENT).text
    restored = tune.Tuner.can_restore(experiment)
    if restored:
        cfg, tc = _sweep_as_started(cfg, tc, output_dir)
    else:
        _save_sweep_config(cfg, tc, output_dir / "config.yaml")
    splits, labels = load_run_splits(cfg, output_dir)  # once, in the driver; with_parameters puts it in the store
    cfg = with_labels(cfg, labels)  # every trial trains on the classes of this split
    prepare_base(cfg.model.name, cfg.model.tiny_seed)  # shared cache entries: built here once, trials read them
    ray = _init_ray_with_state_api()
    check_resources(cfg)
    if tc.scheduler != "none":
        _require_state_api()
    layout = {"trials": str(output_dir / "trials"), "train_storage": storage.join("train")}
    trainable = tune.with_parameters(run_trial, base=cfg.to_dict(), splits=splits, layout=layout, metric=tc.metric)
    # The trial actor only waits on fit() (1 CPU, Tune's default); the Train workers reserve their own group.
    trainable = tune.with_resources(trainable, {"CPU": 1})
    if restored:
        log.info("restoring the sweep in %s: finished trials are kept, unfinished ones resume", experiment)
        tuner = tune.Tuner.restore(experiment, trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        concurrent = max_concurrent_trials(cfg, tc, ray.cluster_resources())
        log.info("%d trials, at most %d at once, scheduler %s", tc.num_samples, concurrent, tc.scheduler)
        tuner = _new_tuner(trainable, tc, storage, concurrent, tables)
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
        log.info("note: resuming with the sweep's own %s; this run's config and flags differ and are ignored", saved)
    return started


def _init_ray_with_state_api():
    """`init_ray()`, but the sweep's workers are also told the cluster's address.

    Ray Train frees the placement group of a trial that ASHA stops from a worker process, through the State
    API. A worker finds the API by auto-detecting the local cluster, which fails as soon as a second Ray
    instance runs on the machine (a test session, another sweep): the cleaner's thread dies with a
    ConnectionError, the group stays reserved, and once leaks use up the CPUs the next trial hangs at worker
    startup. Every worker gets RAY_ADDRESS through the job's runtime env: the address this process joins, or,
    for an embedded cluster, its GCS port pinned before it starts.
    """
    import ray
    from ray.util import get_node_ip_address

    from sentiment_ray.runtime import in_ray_job_working_dir, init_ray

    if ray.is_initialized():
        return init_ray()
    if os.environ.get("RAY_ADDRESS"):  # joining a running cluster
        if in_ray_job_working_dir():  # `ray job submit`: the job's own runtime env stays as submitted
            return init_ray()
        return init_ray(runtime_env={"env_vars": {"RAY_ADDRESS": os.environ["RAY_ADDRESS"]}})
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


def _new_tuner(trainable, tc: TuneConfig, storage: Location, concurrent: int, tables: bool = True):
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
        run_config=tune.RunConfig(storage_path=storage.text, name=EXPERIMENT, verbose=1 if tables else 0),
    )


def run_trial(params: dict, base: dict, splits: dict, layout: dict, metric: str) -> None:
    """Tune trainable: one Ray Train run of `train_loop`, named after the trial so a restarted trial resumes."""
    import ray.tune

    from sentiment_ray.training.driver import build_trainer
    from sentiment_ray.tuning.report import EvalCarryingReport

    trial_id = ray.tune.get_context().get_trial_id()
    trial_dir = Path(layout["trials"]) / trial_id
    trial_dir.mkdir(parents=True, exist_ok=True)
    cfg = trial_config(base, params, trial_dir)
    save_config(cfg, trial_dir / "config.yaml")
    storage = layout["train_storage"]
    build_trainer(cfg, splits, storage, trial_id, None, trial_dir, callbacks=[EvalCarryingReport(metric)]).fit()
