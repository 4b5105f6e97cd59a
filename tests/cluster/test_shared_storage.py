"""The model travels: train on two nodes into `s3://`, then score, evaluate and serve it from there, no local path.

The S3 protocol is served locally (moto, tests/s3_local.py); both nodes reach it through the standard AWS_*
variables, as they would reach AWS, MinIO or R2. Every path handed to the jobs after training is a URI.
"""

import time
import urllib.request
import uuid

import pandas as pd
import pytest
from s3_local import BUCKET, s3_keys
from test_multinode_jobs import SMALL_RUN, assert_succeeded

from benchmarks.net import free_port, wait_ready

pytestmark = pytest.mark.cluster


def test_train_spread_over_two_nodes_into_s3_stopped_resumed_then_scored_evaluated_and_served_from_s3(
    two_node_cluster, tmp_path
):
    """One LoRA train job, its 2 workers on 2 nodes (STRICT_SPREAD), into `s3://`: stopped (`ray job stop`) once its
    step-5 checkpoint is registered (the job holds there, SENTIMENT_RAY_HOLD_AT_STEP), then the same command again
    with `--resume=auto` continues the step count from there. Then the score and evaluate jobs and Serve read what
    they need from the bucket (zero-shot reads nothing from it; tests/unit/test_cli.py checks that jobs/zero_shot.py
    runs its subcommand)."""
    import json

    from sentiment_ray.inference.batch import read_output
    from sentiment_ray.storage import read_bytes, upload_folder

    run = f"s3://{BUCKET}/cluster/run"
    train = ["python", "jobs/train.py", "--config=jobs/configs/tiny.yaml", f"--output-dir={run}", *SMALL_RUN]
    train += ["--set=scaling.placement_strategy=STRICT_SPREAD", "--set=model.finetune=lora"]
    train += ["--set=data.max_train_samples=256", "--set=train.max_steps=10", "--set=train.save_steps=5"]
    first = f"kill-me-{uuid.uuid4().hex[:8]}"
    # The first job waits after its step-5 checkpoint until it is stopped, so it can never finish first.
    two_node_cluster.submit(*train, no_wait=True, submission_id=first, job_env={"SENTIMENT_RAY_HOLD_AT_STEP": "5"})
    registered = "checkpoint_manager_snapshot.json"  # Ray resumes from a checkpoint once it is registered
    wait_for(lambda: any(k.endswith(registered) for k in s3_keys("cluster/run/ray/")), "a checkpoint registered")
    stop = two_node_cluster.ray("job", "stop", "--address", two_node_cluster.dashboard_url, first)
    stopped_at = time.time()
    assert stop.returncode == 0, stop.stderr[-2000:]
    assert "cluster/run/train_results.json" not in s3_keys("cluster/run/"), "the job finished before it was stopped"
    assert_succeeded(two_node_cluster.submit(*train, "--resume=auto"))  # the same command again

    results = json.loads(read_bytes(f"{run}/train_results.json"))
    assert results["resumed_from_step"] == 5 and results["global_step"] == 10
    assert len({w["node_id"] for w in results["workers"]}) == 2, results["workers"]  # one worker per node
    keys = s3_keys("cluster/run/")
    assert {"cluster/run/model/sentiment_meta.json", "cluster/run/model/adapter_model.safetensors"} <= set(keys)
    assert "cluster/run/train_results.json" in keys and any("/tensorboard/" in k for k in keys)
    assert len({k.split("/")[3] for k in keys if k.startswith("cluster/run/ray/train-")}) == 1, "a new Ray run"
    print(
        f"stop → resubmitted run training again from step {results['resumed_from_step']}: "
        f"{results['resumed_at_unix'] - stopped_at:.1f} s"
    )

    reviews = tmp_path / "reviews"
    reviews.mkdir()
    pd.DataFrame({"id": range(40), "text": ["质量很好，推荐购买", "太差了，退货"] * 20}).to_csv(
        reviews / "a.csv", index=False
    )
    upload_folder(reviews, f"s3://{BUCKET}/cluster/reviews")
    score = ["python", "jobs/score.py", f"--model-path={run}/model", f"--input=s3://{BUCKET}/cluster/reviews/"]
    assert_succeeded(two_node_cluster.submit(*score, f"--output=s3://{BUCKET}/cluster/scored", "--num-actors=2"))
    scored = read_output(f"s3://{BUCKET}/cluster/scored")
    assert sorted(scored["id"].astype(int)) == list(range(40)) and scored["label"].isin(["positive", "negative"]).all()
    evaluation = ["python", "jobs/evaluate.py", f"--model-path={run}/model", "--data=offline", "--max-rows=40"]
    assert_succeeded(two_node_cluster.submit(*evaluation, f"--output-dir={tmp_path / 'eval'}"))
    assert "tiny-model numbers" in (tmp_path / "eval" / "report.md").read_text()

    port = free_port()
    serve = ["python", "-m", "sentiment_ray.cli", "serve", f"--model-path={run}/model", f"--port={port}"]
    job = f"serve-{uuid.uuid4().hex[:8]}"
    two_node_cluster.submit(*serve, no_wait=True, submission_id=job)
    try:
        try:
            answer = post_when_ready(f"http://127.0.0.1:{port}", {"text": "质量很好，推荐购买"}, timeout=300)
        except (TimeoutError, OSError) as err:
            logs = two_node_cluster.ray("job", "logs", "--address", two_node_cluster.dashboard_url, job)
            raise AssertionError(f"{err}\n{logs.stdout[-4000:]}") from None
        (prediction,) = answer["predictions"]
        assert prediction["label"] in ("positive", "negative") and prediction["error"] is None
    finally:
        two_node_cluster.ray("job", "stop", "--address", two_node_cluster.dashboard_url, job)


def test_a_relative_output_dir_inside_a_ray_job_is_refused_before_training(two_node_cluster):
    job = ["python", "jobs/train.py", "--config=jobs/configs/tiny.yaml", "--output-dir=runs/lost", *SMALL_RUN]
    done = two_node_cluster.submit(*job)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "is relative, and this runs inside a Ray job" in output, output[-3000:]
    assert "Ray Train run" not in output  # refused before any worker started


def post_when_ready(url: str, body: dict, timeout: float) -> dict:
    """POST /predict once `url`'s /readyz answers 200 (the Serve job runs on the cluster, not in a local process)."""
    import json

    wait_ready(url, timeout_s=timeout, interval_s=2)
    request = urllib.request.Request(f"{url}/predict", json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def wait_for(condition, what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s"
        time.sleep(0.5)
