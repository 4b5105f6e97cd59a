"""Faults injected into real jobs on the session's Ray: a second score job on a busy output, a predictor actor
killed with SIGKILL mid-job, a full disk, a Serve model replica killed under load. What must hold: no interleaved
or lost rows, each row written once, the same predictions as an undisturbed run, no failed request
(results/reliability.md)."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import wait_for

from benchmarks.net import free_port, wait_ready
from benchmarks.score_fault import predictor_actor_pids
from benchmarks.serve_fault import ClosedLoop, kill_one_replica
from sentiment_ray.errors import DataError
from sentiment_ray.inference.batch import ScoreOptions, read_output, run_scoring
from sentiment_ray.inference.output_lock import lock_path
from sentiment_ray.inference.predictor import SentimentPredictor
from sentiment_ray.location import Location

pytestmark = pytest.mark.faults

GOOD = ["质量很好，物流也快", "太差了，不推荐", "一般般吧。", "非常满意，还会再买"]


def reviews(path, rows: int) -> list[str]:
    texts = [f"{GOOD[i % 4]}#{i}" for i in range(rows)]
    pd.DataFrame({"text": texts}).to_csv(path, index=False)
    return texts


def test_a_second_job_into_a_busy_output_refuses_naming_the_first(ray_env, tmp_path, model_folder):
    reviews(tmp_path / "in.csv", 2000)
    output = tmp_path / "out"
    command = [sys.executable, "-m", "sentiment_ray.cli", "score", "--model-path", str(model_folder)]
    command += ["--input", str(tmp_path / "in.csv"), "--output", str(output), "--quiet"]
    first = subprocess.Popen(command, env=ray_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lock_path(str(output)).is_file, timeout_s=120), "the first job never took the lock"
        second = ScoreOptions(str(model_folder), [str(tmp_path / "in.csv")], str(output), overwrite=True)
        with pytest.raises(DataError, match=rf"being written by another score job \(pid {first.pid} on "):
            run_scoring(second)  # even --overwrite: it would delete the first job's rows under it
        _, err = first.communicate(timeout=600)
    finally:
        first.kill()
    assert first.returncode == 0, err[-3000:]
    out = read_output(output)
    assert len(out) == 2000 and out["row_key"].is_unique and not lock_path(str(output)).exists()


def test_a_predictor_actor_killed_mid_job_loses_and_repeats_no_row(ray_cluster, tmp_path, model_folder):
    texts = reviews(tmp_path / "in.csv", 8000)
    opts = ScoreOptions(
        str(model_folder), [str(tmp_path / "in.csv")], str(tmp_path / "out"), batch_size=64, precision="fp32"
    )
    outcome = {}
    job = threading.Thread(target=lambda: outcome.update(summary=run_scoring(opts)), daemon=True)
    job.start()
    pids = wait_for(predictor_actor_pids, timeout_s=120)
    assert pids, "no predictor actor came up"
    time.sleep(3)  # the actor is scoring by now: its model loads in about a second
    os.kill(pids[0], signal.SIGKILL)
    assert job.is_alive() and len(read_output(tmp_path / "out")) < len(texts)  # killed while rows were left
    job.join(timeout=600)
    assert "summary" in outcome, "the job failed after its actor was killed"
    out = read_output(tmp_path / "out")
    assert len(out) == len(texts) and out["row_key"].is_unique and list(out["text"]) == texts
    expected = SentimentPredictor.from_pretrained(model_folder, precision="fp32").predict_batch(texts)
    assert list(out["label"]) == [e["label"] for e in expected]
    assert out["confidence"].tolist() == pytest.approx([e["confidence"] for e in expected], abs=1e-4)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs (needs root: `mount`), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_fails_the_job_naming_its_output_and_the_rerun_with_space_finishes(
    ray_cluster, tmp_path, small_disk, model_folder
):
    texts = [f"{GOOD[i % 4]}，包装完好，客服态度也不错，推荐购买#{i}" * 3 for i in range(1200)]  # ~0.5 MB scored
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "in.csv", index=False)
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"x" * 1_800_000)  # leaves about 200 kB: the scored CSV needs more
    output = small_disk / "out"
    opts = ScoreOptions(str(model_folder), [str(tmp_path / "in.csv")], str(output), output_format="csv")
    with pytest.raises(DataError, match=rf"--output {output}: no space left on device"):
        run_scoring(opts)
    assert not lock_path(str(output)).exists()  # released: the rerun may take it
    ballast.unlink()  # space again
    summary = run_scoring(opts)  # the same command resumes; a block cut off by the full disk is written again
    out = read_output(output, "csv")
    assert summary["rows_written"] == len(out) == len(texts) and out["row_key"].is_unique
    assert sorted(out["text"]) == sorted(texts)


def test_a_model_replica_killed_under_load_fails_no_request(ray_cluster, model_folder):
    """16 clients send single texts to two model replicas; one gets SIGKILL. The HTTP front sends each request
    whose replica died to the other one, which holds the model already (each loads it at start): every request
    answers 200. Before replicas loaded at start, the survivor, cold because Serve sent every request to its warm
    peer, loaded under the load, and on a busy CI machine each client's request timed out. (How long Serve takes
    to run two replicas again is measured by benchmarks/serve_fault.py.)"""
    from ray import serve

    from sentiment_ray.inference.serve import build_application
    from sentiment_ray.inference.serve_config import serve_config

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    values = {"model_path": str(model_folder), "precision": "fp32", "replicas": 2, "cpus_per_replica": 1}
    serve.run(build_application(serve_config(values, "faults")), name="faults", route_prefix="/")
    try:
        wait_ready(f"http://127.0.0.1:{port}", timeout_s=120)
        with ClosedLoop(f"http://127.0.0.1:{port}", clients=16) as load:
            time.sleep(2)
            killed_at = time.monotonic()
            kill_one_replica("faults")
            # 64 answers to requests sent after the kill: counted, not timed (a busy CI machine is slow)
            wait_for(lambda: sum(load.outcomes(since=killed_at).values()) >= 64, timeout_s=120)
        after = load.outcomes(since=killed_at)
    finally:
        serve.shutdown()  # the next module on this worker starts Serve on a port of its own
    assert set(load.outcomes()) == {"200"}, load.outcomes()
    assert after["200"] >= 64, after  # requests ran while the killed replica was down


def test_an_s3_store_stopped_mid_upload_leaves_no_loadable_model_and_the_next_upload_completes(
    s3, tmp_path, model_folder, monkeypatch
):
    """A trained run is published to s3:// over a second local S3 server (the same objects as the session's),
    which is stopped while the model folder uploads over an earlier complete copy. The publish fails naming the
    URI and the kept staged run; the half-replaced folder is refused by the loader (its sentiment_meta.json goes
    first out and last in); with the server started again, the next publish completes."""
    import shutil

    from moto.server import ThreadedMotoServer
    from s3_local import BUCKET, s3_keys

    from sentiment_ray.errors import SentimentRayError
    from sentiment_ray.models.folder import read_meta
    from sentiment_ray.training.publish import publish_run

    def start(port: int = 0):
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server._server.server_address[1]}")
        return server, server._server.server_address[1]

    staged = tmp_path / "staged"

    def stage_a_run() -> Path:
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(model_folder, staged / "model")
        for i in range(8):  # sorted first: the model upload spends its first second on these
            (staged / "model" / f"a_ballast_{i}.bin").write_bytes(os.urandom(4_000_000))
        (staged / "logs").mkdir()
        (staged / "logs" / "train.log").write_text("log\n")
        return staged

    uri, meta_key = f"s3://{BUCKET}/faults/run", "faults/run/model/sentiment_meta.json"
    output = Location.of(uri)
    server, port = start()
    try:
        publish_run(stage_a_run(), output)  # an earlier run's complete folder at the same URI
        assert read_meta(f"{uri}/model")["strategy"]

        def stop_when_the_model_upload_begins():  # its first step deletes the earlier copy's meta
            wait_for(lambda: meta_key not in s3_keys("faults/run/model/"), timeout_s=60, every_s=0.01)
            server.stop()

        stopper = threading.Thread(target=stop_when_the_model_upload_begins, daemon=True)
        stopper.start()
        kept = re.escape(str(staged))
        with pytest.raises(SentimentRayError, match=rf"{uri}/model: uploading .* failed .*kept in {kept}"):
            publish_run(stage_a_run(), output)
        stopper.join(timeout=60)
        server, _ = start(port)  # the same objects: moto keeps them in this process
        left = s3_keys("faults/run/model/")
        assert left and meta_key not in left  # the earlier copy's files, without its meta
        with pytest.raises(SentimentRayError, match="sentiment_meta.json is missing"):
            read_meta(f"{uri}/model")
        publish_run(stage_a_run(), output)
        assert read_meta(f"{uri}/model")["strategy"]
        assert [p.name for p in staged.iterdir()] == ["logs"]  # the staged copy is deleted, its log kept
    finally:
        server.stop()
