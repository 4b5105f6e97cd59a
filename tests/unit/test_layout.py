"""The score and evaluate jobs' actor layout when the user leaves it out (sentiment_ray/inference/layout.py)."""

from __future__ import annotations

import pytest

from sentiment_ray.inference.layout import SMALL_MODEL_BYTES, actor_layout

SMALL, LARGE = SMALL_MODEL_BYTES // 10, SMALL_MODEL_BYTES * 3
EMBEDDED_2_CORES = {"CPU": 4.0}  # the embedded Ray of a 2-core machine: 4 logical CPUs, 2 of them the reserve


def layout(cluster, nodes, weights, num_actors=None, cpus=None, gpus=None, device="auto"):
    found = actor_layout(num_actors, cpus, gpus, device, cluster, nodes, weights)
    return found.num_actors, found.cpus_per_actor, found.gpus_per_actor


@pytest.mark.parametrize(
    ("cluster", "nodes", "weights", "expected"),
    [
        (EMBEDDED_2_CORES, [4.0], SMALL, (2, 1.0, 0.0)),  # measured best on 2 cores: 2 x 1
        (EMBEDDED_2_CORES, [4.0], LARGE, (1, 2.0, 0.0)),  # measured best at Qwen2.5-1.5B's width: 1 x 2
        (EMBEDDED_2_CORES, [4.0], None, (1, 2.0, 0.0)),  # unknown size (a Hub id): as a large model
        ({"CPU": 48.0}, [16.0, 16.0, 16.0], LARGE, (3, 15.0, 0.0)),  # one per node, the reserve spread
        ({"CPU": 48.0}, [16.0, 16.0, 16.0], SMALL, (46, 1.0, 0.0)),
        ({"CPU": 2.0}, [2.0], SMALL, (1, 1.0, 0.0)),  # `ray start` on 2 cores: 1 CPU left for actors
        ({"CPU": 32.0, "GPU": 4.0}, [16.0, 16.0], LARGE, (4, 1.0, 1.0)),  # one per GPU
    ],
)
def test_an_unset_layout_is_sized_to_what_ray_offers(cluster, nodes, weights, expected):
    assert layout(cluster, nodes, weights) == expected


def test_given_values_are_kept_and_the_rest_sized_around_them():
    assert layout(EMBEDDED_2_CORES, [4.0], LARGE, num_actors=3, cpus=0.5, gpus=0.0) == (3, 0.5, 0.0)
    assert layout(EMBEDDED_2_CORES, [4.0], LARGE, num_actors=2) == (2, 1.0, 0.0)  # actors given: 1 CPU each
    assert layout({"CPU": 16.0}, [16.0], SMALL, cpus=4.0) == (3, 4.0, 0.0)  # CPUs given: as many as fit
    assert layout({"CPU": 32.0, "GPU": 4.0}, [32.0], SMALL, device="cpu") == (30, 1.0, 0.0)  # cpu: GPUs unused
    assert layout({"CPU": 8.0, "GPU": 2.0}, [8.0], SMALL, gpus=0.5) == (4, 1.0, 0.5)


def test_the_layout_says_why_in_the_summary():
    sized = actor_layout(None, None, None, "auto", EMBEDDED_2_CORES, [4.0], SMALL)
    assert sized.describe() == "2 actor(s) x 1 CPU (a small model, 2 of Ray's free CPUs for actors)"
    given = actor_layout(1, 2.0, 0.0, "auto", EMBEDDED_2_CORES, [4.0], SMALL)
    assert given.describe() == "1 actor(s) x 2 CPU (given)"
