"""Paths that may be URIs (sentiment_ray/storage.py) and the Ray-job rule for relative outputs."""

import pytest

from sentiment_ray.errors import ConfigError
from sentiment_ray.runtime import check_durable
from sentiment_ray.storage import StorageError, absolute, is_uri, join, local_copy, local_path


def test_uris_and_local_paths_are_told_apart_and_joined_without_mangling():
    assert is_uri("s3://bucket/runs/a") and is_uri("gs://b/x") and is_uri("hdfs://nn:8020/x")
    assert not is_uri("runs/a") and not is_uri("/abs/runs") and not is_uri("file:///abs/runs")
    assert local_path("file:///abs/runs") == "/abs/runs"
    assert join("s3://bucket/runs/", "/model") == "s3://bucket/runs/model"
    assert absolute("s3://bucket/runs/") == "s3://bucket/runs" and absolute("runs").startswith("/")


def test_a_relative_output_is_refused_inside_a_ray_job_only(monkeypatch):
    check_durable("runs/x", "--output-dir")  # on a laptop: fine
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", "{}")  # what Ray's job manager sets for an entrypoint
    with pytest.raises(ConfigError, match=r"--output-dir 'runs/x' is relative, and this runs inside a Ray job"):
        check_durable("runs/x", "--output-dir")
    check_durable("/shared/runs/x", "--output-dir")
    check_durable("s3://bucket/runs/x", "--output-dir")


def test_a_uri_no_filesystem_takes_names_itself():
    with pytest.raises(StorageError, match="nosuch://bucket/x"):
        local_copy("nosuch://bucket/x")


def test_jobs_that_write_local_folders_refuse_a_uri_instead_of_making_a_folder_named_s3(tmp_path, monkeypatch):
    from sentiment_ray.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["export", "--model-path", "whatever", "--output", "s3://bucket/export"]) == 2
    assert main(["evaluate", "--model-path", "whatever", "--output-dir", "s3://bucket/eval", "--data", "offline"]) == 2
    assert not (tmp_path / "s3:").exists()
