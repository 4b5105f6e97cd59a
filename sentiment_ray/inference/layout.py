"""How many predictor actors a score or evaluate job starts, and with how many CPUs or GPUs each.

What a user leaves out (`num_actors`, `cpus_per_actor`, `gpus_per_actor` None) is sized to what Ray offers when
the job starts (its free CPUs and GPUs):

- GPUs in the cluster (and device not `cpu`): one actor per GPU, one CPU each.
- CPUs, small model (under SMALL_MODEL_BYTES of weights, e.g. the tiny preset): one single-threaded actor per CPU.
  On 2 cores (AVX512-BF16), 2 actors x 1 CPU scored at 1.45x the 2-thread in-process predictor at steady state,
  1 x 2 at 0.91x (results/bench/score_job.md): a small model's forward does not keep two threads busy.
- CPUs, larger model: as few actors as there are nodes, each with all of its node's CPUs as torch threads. At
  Qwen2.5-1.5B's width on 2 cores (AVX2), 1 x 2 beat 2 x 1 (0.94x vs 0.88x at steady state, 11.5 s vs 45.9 s to
  start), and one weight copy per node keeps memory to one model's worth (results/bench/score_job_1.5b-width.md).

RESERVED_CPUS stay free for Ray Data's read tasks and its checkpoint filter, which otherwise could not be
scheduled beside the actors (the embedded Ray therefore has 4 logical CPUs at least: sentiment_ray/runtime.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SMALL_MODEL_BYTES = 1 << 30
"""Weights (bytes on disk) below which a model scores faster as one single-threaded actor per CPU."""
RESERVED_CPUS = 2
WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass(frozen=True)
class ActorLayout:
    num_actors: int
    cpus_per_actor: float
    gpus_per_actor: float
    reason: str
    """Why: `given` (every value from the user) or what the sizing saw, for the job's summary."""

    def describe(self) -> str:
        gpus = f", {self.gpus_per_actor:g} GPU" if self.gpus_per_actor else ""
        return f"{self.num_actors} actor(s) x {self.cpus_per_actor:g} CPU{gpus} ({self.reason})"


def actor_layout(
    num_actors: int | None,
    cpus_per_actor: float | None,
    gpus_per_actor: float | None,
    device: str,
    cluster: dict,
    node_cpus: list[float],
    weight_bytes: int | None,
) -> ActorLayout:
    """The layout for the given values (None: sized), a cluster's resources ({"CPU", "GPU"}), the CPUs of each of
    its nodes, and the model's weight bytes (None: unknown, sized as a large model)."""
    gpus = cluster.get("GPU", 0)
    if gpus_per_actor is None:
        gpus_per_actor = 1.0 if gpus >= 1 and not device.startswith("cpu") else 0.0
    if num_actors is not None and cpus_per_actor is not None:
        return ActorLayout(num_actors, cpus_per_actor, gpus_per_actor, "given")
    usable = max(1, int(cluster.get("CPU", 1)) - RESERVED_CPUS)
    if gpus_per_actor > 0:
        count = num_actors or max(1, math.floor(gpus / gpus_per_actor))
        return ActorLayout(count, cpus_per_actor or 1.0, gpus_per_actor, f"one per GPU: {gpus:g} GPU(s)")
    small = weight_bytes is not None and weight_bytes < SMALL_MODEL_BYTES
    if cpus_per_actor is None:
        cpus_per_actor = 1.0 if small or num_actors else float(_node_share(node_cpus, usable))
    count = num_actors or max(1, math.floor(usable / cpus_per_actor))
    size = "a small model" if small else "a model of unknown size" if weight_bytes is None else "a large model"
    return ActorLayout(count, cpus_per_actor, 0.0, f"{size}, {usable} of Ray's free CPUs for actors")


def _node_share(node_cpus: list[float], usable: int) -> int:
    """CPUs of one actor per node: the smallest node's, less its part of the reserve, within `usable`."""
    if not node_cpus:
        return usable
    share = int(min(node_cpus)) - math.ceil(RESERVED_CPUS / len(node_cpus))
    return max(1, min(usable, share))


def weight_bytes(meta: dict, folder) -> int | None:
    """Bytes of the weight files the predictor loads: a full folder's own, else its base's (when the base is a local
    folder or the tiny preset's cache entry) plus the adapter's; None when they are not on this machine (a Hub id
    not downloaded, a folder behind a URI)."""
    from sentiment_ray.models.loading import resolve_base

    own = _weights_in(folder)
    if meta.get("finetune") == "full":
        return own
    base = _weights_in(resolve_base(meta["base_model"], meta.get("tiny_seed", 0)))
    return None if base is None else base + (own or 0)


def _weights_in(folder) -> int | None:
    """Bytes of the weight files directly in `folder` (a Location or path); None for a URI or no such folder."""
    from sentiment_ray.location import Location

    location = Location.of(folder) if folder else None
    if location is None or location.remote or not location.path.is_dir():
        return None
    path = location.path
    return sum(f.stat().st_size for f in path.iterdir() if f.name.endswith(WEIGHT_SUFFIXES))
