"""A real local Ray cluster, started once for the integration tests."""

import pytest


@pytest.fixture(scope="session")
def ray_cluster():
    import ray

    # 4 logical CPUs on a 2-core machine: 2 Train workers plus the controller and Data tasks fit.
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=True)
    yield ray
    ray.shutdown()
