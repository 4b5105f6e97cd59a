"""Starting or joining Ray, and checking before it starts that what a job asks for can be placed.

Every job driver (train, tune, score, evaluate, zero-shot, serve, the benchmarks) calls `init_ray`. The
resource checks run on the driver: `embedded_resources` answers, without starting anything, what an embedded
Ray would have, so that `--num-workers 8` on a 2-core machine fails in a second instead of after Ray started.
"""

from __future__ import annotations

import os
from pathlib import Path

from sentiment_ray.errors import ConfigError

EMBEDDED_MIN_CPUS = 4
"""Logical CPUs of an embedded Ray on a smaller machine: Ray Data's read tasks and its checkpoint filter actor
(1 CPU) must fit beside the training workers / predictor actors."""


def init_ray(**kwargs):
    """Connect to RAY_ADDRESS when set (e.g. under `ray job submit`), else join the cluster `ray start` started on
    this machine, else start an embedded local Ray."""
    import ray

    from sentiment_ray.console import attach_to_ray

    if ray.is_initialized():
        return ray
    _connect(ray, kwargs)
    attach_to_ray()  # a no-op unless the command routes Ray's chatter to its log file
    return ray


def _connect(ray, kwargs: dict) -> None:
    address = os.environ.get("RAY_ADDRESS")
    if address is not None:
        ray.init(address=address, **kwargs)
        return
    try:
        ray.init(**{"num_cpus": embedded_cpus(), **kwargs})
    except ValueError as err:  # `ray start` ran on this machine: ray.init() joins that cluster, which has its CPUs
        if "existing cluster" not in str(err):
            raise
        ray.init(**{k: v for k, v in kwargs.items() if k != "num_cpus"})


def embedded_cpus() -> int:
    return max(EMBEDDED_MIN_CPUS, os.cpu_count() or 1)


def embedded_resources(need_gpu: bool) -> dict | None:
    """{"CPU", "GPU"} an embedded Ray would have here, or None when `init_ray` would join a running cluster
    (RAY_ADDRESS, or `ray start` on this machine), whose resources are known only once connected.

    Uses `ray._private.services.canonicalize_bootstrap_address`, the rule `ray.init()` itself applies (private,
    Ray 2.60): it only reads RAY_ADDRESS and the address file that `ray start` writes. GPUs are counted only
    when asked for (`need_gpu`), since that imports torch.
    """
    import ray
    from ray._private.services import canonicalize_bootstrap_address

    if ray.is_initialized() or canonicalize_bootstrap_address(None) is not None:
        return None
    gpus = 0
    if need_gpu:
        import torch

        gpus = torch.cuda.device_count()
    return {"CPU": float(embedded_cpus()), "GPU": float(gpus)}


def check_fits(what: str, cpus: float, gpus: float, have: dict, fix: str, where: str = "the Ray cluster") -> None:
    """ConfigError naming what asks for how much, what Ray has, and the flag to change, when it cannot fit."""
    if have.get("CPU", 0) >= cpus and have.get("GPU", 0) >= gpus:
        return
    asks = f"{cpus:g} CPU" + (f" and {gpus:g} GPU" if gpus else "")
    has = f"{have.get('CPU', 0):g} CPU and {have.get('GPU', 0):g} GPU"
    raise ConfigError(f"{what} asks for {asks} but {where} has {has}: {fix}")


def precheck(what: str, cpus: float, gpus: float, fix: str) -> None:
    """`check_fits` against the embedded Ray before it starts; a no-op when a running cluster will be joined
    (the driver checks `ray.cluster_resources()` once connected)."""
    have = embedded_resources(need_gpu=gpus > 0)
    if have is not None:
        where = f"the local Ray this command starts (no cluster to join; {EMBEDDED_MIN_CPUS} CPUs at least)"
        check_fits(what, cpus, gpus, have, fix, where)


def in_ray_job_working_dir() -> bool:
    """True inside a `ray job submit` entrypoint: its cwd is a temporary copy that Ray deletes once unused."""
    cwd = os.getcwd()
    return "RAY_JOB_CONFIG_JSON_ENV_VAR" in os.environ or ("runtime_resources" in cwd and "working_dir_files" in cwd)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB: VmHWM from /proc/self/status (Linux, in KiB).

    Not getrusage's ru_maxrss: Linux carries the parent's high-water mark through fork + exec into a child, so a
    command started by a process that had held a model (the real-shape smoke) reported the parent's 9.6 GB peak as
    its own. ru_maxrss (KiB on Linux) remains the fallback where /proc is missing.
    """
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        status = ""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def check_durable(path: str | None, what: str) -> None:
    """Refuse a relative output path inside a Ray job, where it would land in the deleted working dir."""
    from sentiment_ray.location import is_relative_path

    if not path or not is_relative_path(path) or not in_ray_job_working_dir():
        return
    raise ConfigError(
        f"{what} {path!r} is relative, and this runs inside a Ray job whose working dir ({os.getcwd()}) is deleted "
        "when the job ends. Pass a URI (s3://bucket/runs/name, gs://…) or an absolute path on storage every node "
        "shares (docs/guide/cluster.md)."
    )


def check_local_output(path: str, what: str) -> None:
    """Refuse a URI where a job writes a local folder, instead of creating a folder named `s3:` by mistake."""
    from sentiment_ray.location import Location

    if Location.of(path).remote:
        raise ConfigError(
            f"{what} {path!r}: this job writes a local folder, not a URI; pass a local path (on a cluster, one every "
            "node shares). URIs are accepted by train --output-dir and score --output."
        )
