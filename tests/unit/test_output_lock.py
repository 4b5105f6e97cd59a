"""One score job per output (sentiment_ray/inference/output_lock.py): real lock files, real processes."""

import json
import subprocess
import sys

import pytest

from sentiment_ray.errors import DataError
from sentiment_ray.inference.output_lock import lock_path, output_lock


def test_a_second_job_on_a_held_output_is_refused_naming_the_first(tmp_path):
    output = str(tmp_path / "out")
    with output_lock(output) as held:
        holder = json.loads(held.read_text())
        with pytest.raises(DataError, match=rf"pid {holder['pid']} on {holder['host']}.*delete {held}"):
            with output_lock(output):
                pass  # never reached: the block must not run
        assert held.is_file()  # the refusal leaves the first job's lock alone
    assert not lock_path(output).exists()  # released at the end


def test_the_lock_is_released_when_the_job_fails(tmp_path):
    output = str(tmp_path / "out")
    with pytest.raises(RuntimeError), output_lock(output):
        raise RuntimeError("the job failed")
    with output_lock(output):  # the next run takes it
        pass


def test_the_lock_of_a_job_that_is_gone_is_taken_over(tmp_path, caplog):
    import socket

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path = lock_path(str(tmp_path / "out"))
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": int(gone.stdout), "started": 0, "command": "x"}))
    with caplog.at_level("WARNING", logger="sentiment_ray.score"), output_lock(str(tmp_path / "out")) as held:
        assert json.loads(held.read_text())["pid"] != int(gone.stdout)
    assert "a score job that is gone" in caplog.text


def test_a_lock_from_another_host_is_never_taken_over(tmp_path):
    path = lock_path(str(tmp_path / "out"))
    path.write_text(json.dumps({"host": "another-host", "pid": 1, "started": 0, "command": "score"}))
    with pytest.raises(DataError, match="another-host"), output_lock(str(tmp_path / "out")):
        pass


def test_a_uri_output_is_not_locked(tmp_path):
    with output_lock("s3://bucket/out") as held:
        assert held is None
