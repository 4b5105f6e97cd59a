"""Locations: a path decided once as local or a URI (sentiment_ray/location.py), and the Ray-job rule for relative
outputs."""

import pytest

from sentiment_ray.errors import ConfigError
from sentiment_ray.location import Location, is_relative_path
from sentiment_ray.runtime import check_durable
from sentiment_ray.storage import StorageError


def test_uris_and_local_paths_are_told_apart_once_and_joined_without_mangling(tmp_path, monkeypatch):
    for uri in ("s3://bucket/runs/a", "gs://b/x", "hdfs://nn:8020/x", "S3://bucket/x"):
        assert Location.of(uri).remote
    monkeypatch.chdir(tmp_path)
    for local, text in (
        ("runs/a", f"{tmp_path}/runs/a"),
        ("/abs/runs/", "/abs/runs"),
        ("file:///abs/runs", "/abs/runs"),
    ):
        assert Location.of(local) == Location(text, remote=False)  # file:// is a local path, made absolute
    bucket = Location.of("s3://bucket/runs/")
    assert bucket.text == "s3://bucket/runs" and bucket.join("/model").text == "s3://bucket/runs/model"
    assert bucket.sibling(".checkpoint").text == "s3://bucket/runs.checkpoint" and bucket.name == "runs"
    assert bucket.join("in", "a.csv").parent == bucket.join("in")
    assert bucket.inner("bucket/runs/ray/x").text == "s3://bucket/runs/ray/x"  # a path as pyarrow reports it
    assert Location.of(bucket) is bucket and Location.of(tmp_path).path == tmp_path
    with pytest.raises(ValueError, match="is a URI"):
        _ = bucket.path
    assert is_relative_path("runs/a") and not is_relative_path("/abs") and not is_relative_path("s3://b/x")


def test_a_local_location_reads_through_the_same_calls_as_a_remote_one(tmp_path):
    (tmp_path / "f.txt").write_text("hi")
    folder = Location.of(f"file://{tmp_path}")
    assert folder.kind() == "folder" and folder.join("f.txt").kind() == "file" and folder.join("no").kind() == "missing"
    assert folder.join("f.txt").read_bytes() == b"hi" and folder.local_copy() == tmp_path
    fs, inner = folder.join("f.txt").filesystem()
    assert fs.open_input_stream(inner).read() == b"hi"


def test_a_relative_output_is_refused_inside_a_ray_job_only(monkeypatch):
    check_durable("runs/x", "--output-dir")  # on a laptop: fine
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", "{}")  # what Ray's job manager sets for an entrypoint
    with pytest.raises(ConfigError, match=r"--output-dir 'runs/x' is relative, and this runs inside a Ray job"):
        check_durable("runs/x", "--output-dir")
    check_durable("/shared/runs/x", "--output-dir")
    check_durable("s3://bucket/runs/x", "--output-dir")


def test_a_uri_no_filesystem_takes_names_itself():
    with pytest.raises(StorageError, match="nosuch://bucket/x"):
        Location.of("nosuch://bucket/x").local_copy()


def test_jobs_that_write_local_folders_refuse_a_uri_instead_of_making_a_folder_named_s3(tmp_path, monkeypatch):
    from sentiment_ray.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["export", "--model-path", "whatever", "--output", "s3://bucket/export"]) == 2
    assert main(["evaluate", "--model-path", "whatever", "--output-dir", "s3://bucket/eval", "--data", "offline"]) == 2
    assert not (tmp_path / "s3:").exists()
