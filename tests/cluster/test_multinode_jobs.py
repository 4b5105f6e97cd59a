"""The jobs in jobs/ submitted with `ray job submit` to a real two-node cluster with token auth.

Both nodes run on this machine, so `storage_path` on local disk stands in for the shared filesystem
(NFS, S3, GCS) that nodes on separate machines need.
"""

import json
import time
import uuid
from pathlib import Path

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


def train_job(run: Path, *extra: str) -> list[str]:
    return [
        "python",
        "jobs/train.py",
        "--config=jobs/configs/tiny.yaml",
        f"--output-dir={run / 'out'}",
        f"--set=storage_path={run / 'storage'}",
        *SMALL_RUN,
        *extra,
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


def test_stopped_job_resubmitted_with_resume_auto_continues_the_step_count(two_node_cluster, tmp_path):
    """LoRA, small checkpoints: what is tested is stopping and resuming a job, not the size of what it saves."""
    lora = ("--set=model.finetune=lora", "--set=data.max_train_samples=256")
    job = train_job(tmp_path, *lora, "--set=train.max_steps=60", "--set=train.save_steps=5")
    first = f"kill-me-{uuid.uuid4().hex[:8]}"
    two_node_cluster.submit(*job, no_wait=True, submission_id=first)
    wait_for_checkpoint(tmp_path / "storage", timeout=300)
    stop = two_node_cluster.ray("job", "stop", "--address", two_node_cluster.dashboard_url, first)
    stopped_at = time.time()
    assert stop.returncode == 0, stop.stderr[-2000:]
    assert not (tmp_path / "out" / "train_results.json").exists(), "the job finished before it could be stopped"
    assert_succeeded(two_node_cluster.submit(*job, "--resume=auto"))  # the same command again
    results = json.loads((tmp_path / "out" / "train_results.json").read_text())
    assert results["resumed_from_step"] >= 5 and results["resumed_from_step"] % 5 == 0
    assert results["global_step"] == 60
    assert len(list((tmp_path / "storage").glob("train-*"))) == 1, "the rerun started a new Ray run"
    print(
        f"stop → resubmitted run training again from step {results['resumed_from_step']}: "
        f"{results['resumed_at_unix'] - stopped_at:.1f} s"
    )


def wait_for_checkpoint(storage: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list(storage.glob("train-*/checkpoint_*")):
            return
        time.sleep(0.5)
    raise AssertionError(f"no checkpoint appeared in {storage} within {timeout}s")
