"""A real local Ray cluster, started once for the integration tests."""

import pytest


@pytest.fixture(scope="session")
def s3():
    """The S3 protocol served locally (tests/s3_local.py); its AWS_* variables are set for this process."""
    from s3_local import local_s3

    with local_s3() as variables:
        yield variables


@pytest.fixture(scope="session")
def ray_cluster(s3):
    """Started after the local S3, so that every Ray worker inherits the AWS_* variables that reach it."""
    import ray

    # 4 logical CPUs on a 2-core machine: 2 Train workers plus the controller and Data tasks fit.
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=True)
    yield ray
    ray.shutdown()
