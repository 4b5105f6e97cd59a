"""`ray job submit` to a real two-node cluster with token auth: a submission without the token is refused.

The jobs in jobs/ on this cluster, stopped and resubmitted, with their storage in S3: test_shared_storage.py.
"""

import pytest

pytestmark = pytest.mark.cluster

SMALL_RUN = [
    "--set=data.max_train_samples=64",
    "--set=data.val_size=32",
    "--set=data.test_size=32",
    "--set=data.max_length=48",
    "--set=train.batch_size=4",
    "--set=train.eval_batch_size=16",
]


def assert_succeeded(done) -> None:
    assert done.returncode == 0 and "succeeded" in done.stderr + done.stdout, done.stdout[-4000:] + done.stderr[-4000:]


def test_submission_without_the_token_is_refused(two_node_cluster, tmp_path):
    command = ["python", "-c", "print('should never run')"]
    no_token = {**two_node_cluster.env, "RAY_AUTH_MODE": "disabled", "HOME": str(tmp_path)}
    no_token.pop("RAY_AUTH_TOKEN_PATH")
    refused = two_node_cluster.submit(*command, env=no_token)
    assert refused.returncode != 0 and "Missing authentication token" in refused.stderr, refused.stderr[-2000:]
    wrong = {**two_node_cluster.env, "RAY_AUTH_TOKEN": "0" * 64}
    refused = two_node_cluster.submit(*command, env=wrong)
    assert refused.returncode != 0 and "Invalid authentication token" in refused.stderr, refused.stderr[-2000:]
    jobs = two_node_cluster.ray("job", "list", "--address", two_node_cluster.dashboard_url)
    assert jobs.returncode == 0 and "should never run" not in jobs.stdout + jobs.stderr
