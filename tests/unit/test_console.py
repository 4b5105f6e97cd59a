"""The console shows a job's own progress lines once; Ray's and the libraries' chatter goes to the log file."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import pytest

from sentiment_ray.console import WorkerLinePrinter


def batch(lines, pid=101, actor="RayTrainWorker", is_err=False):
    return {"lines": lines, "pid": pid, "actor_name": actor, "is_err": is_err}


def test_progress_lines_reach_the_console_once_and_everything_reaches_the_log(tmp_path):
    log, console = tmp_path / "train.log", io.StringIO()
    printer = WorkerLinePrinter(log, console)
    step = "[train] step 50/468 epoch 0.11 loss 0.6360"
    printer.handle(batch([step, "Reporting training result 1: TrainingReport(metrics={'loss': 0.63})"]))
    printer.handle(batch([step], is_err=True))  # the same line again, from the worker's stderr
    printer.handle(batch(["\x1b[36mLoading weights: 100%\x1b[0m", "[tune] trial 1 done"], pid=102))
    printer.handle(batch(["Resources", "2.0/4.0 CPU"], pid="autoscaler", actor=None))
    assert console.getvalue().splitlines() == [step, "[tune] trial 1 done"]
    written = log.read_text().splitlines()
    assert "(RayTrainWorker pid=101) Reporting training result 1: TrainingReport(metrics={'loss': 0.63})" in written
    assert "(RayTrainWorker pid=102) Loading weights: 100%" in written  # colour codes stripped
    assert written.count(f"(RayTrainWorker pid=101) {step}") == 2  # the log keeps what arrived
    assert not any("CPU" in line for line in written)  # the autoscaler's status table stays in Ray's logs


def test_library_logging_and_warnings_go_to_the_log_file_not_the_console(tmp_path):
    log = tmp_path / "run" / "train.log"
    script = textwrap.dedent(
        f"""
        import logging, warnings
        import ray  # installs its own console handler on the `ray` logger
        from ray import serve  # and this one on `ray.serve`
        from pathlib import Path
        from sentiment_ray.console import route_to_log_file
        route_to_log_file(Path({str(log)!r}))
        logging.getLogger("ray").info("Started a local Ray instance")
        logging.getLogger("ray.serve").info("Started Serve in namespace")
        logging.getLogger("transformers.modeling_utils").warning("a deprecation note")
        warnings.warn("`torch_dtype` is deprecated", FutureWarning)
        logging.getLogger("ray").error("a real error")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    written = log.read_text()
    for message in (
        "Started a local Ray instance",
        "Started Serve",
        "a deprecation note",
        "`torch_dtype` is deprecated",
    ):
        assert message in written
        assert message not in out.stdout + out.stderr
    assert "a real error" in out.stderr  # errors still reach the console


def test_progress_goes_through_one_logger_per_layer_that_a_user_can_silence_or_redirect():
    script = textwrap.dedent(
        """
        import logging, sys
        from sentiment_ray.console import show_progress
        show_progress(); show_progress()  # idempotent: one handler, one line per record
        logging.getLogger("sentiment_ray.training.worker").info("step %d/%d loss %.4f", 2, 6, 0.7352)
        logging.getLogger("sentiment_ray.tuning.sweep").warning("waiting for the autoscaler")
        logging.getLogger("sentiment_ray.evaluation.suite").info("TF-IDF baseline skipped")
        logging.getLogger("sentiment_ray").setLevel(logging.WARNING)  # the user silences progress
        logging.getLogger("sentiment_ray.training.driver").info("not shown")
        logging.getLogger("sentiment_ray.training.driver").warning("still shown")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "[train] step 2/6 loss 0.7352",
        "[tune] warning: waiting for the autoscaler",
        "[evaluate] TF-IDF baseline skipped",
        "[train] warning: still shown",
    ]


def test_importing_the_library_configures_no_logging():
    script = (
        "import logging, sentiment_ray, sentiment_ray.training.worker\n"
        "print(logging.getLogger('sentiment_ray').handlers)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_jobs_log_file_sits_beside_a_local_output_and_in_the_cache_otherwise(tmp_path, monkeypatch):
    from sentiment_ray.console import job_log_file

    monkeypatch.setenv("SENTIMENT_RAY_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert job_log_file("score", "runs/scored/") == tmp_path / "runs/scored.log"  # never inside the output folder
    remote = job_log_file("score", "s3://bucket/scored")
    assert remote.parent == tmp_path / "cache" / "logs" and remote.name.startswith("score-")


@pytest.mark.parametrize("command", ["train", "score", "evaluate", "zero-shot", "tune", "serve"])
def test_every_job_command_takes_verbose_or_quiet(command):
    from sentiment_ray.cli.parsers import build_parser

    parser = build_parser()
    job = parser._subparsers._group_actions[0].choices[command]
    assert {"--verbose", "--quiet"} <= {opt for action in job._actions for opt in action.option_strings}
    with pytest.raises(SystemExit):  # one or the other
        parser.parse_args([command, "--verbose", "--quiet"])


def test_with_json_output_stdout_holds_only_the_json_and_warnings_go_to_stderr(tmp_path):
    script = textwrap.dedent(
        """
        import logging, sys
        from pathlib import Path
        from sentiment_ray.console import console_mode, show_progress
        show_progress()
        console_mode(False, False, Path(sys.argv[1]), json_output=True)
        logging.getLogger("sentiment_ray.score").info("progress: not shown")
        logging.getLogger("sentiment_ray.score").warning("shift: not like the calibration rows")
        print('{"rows": 1}')
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "job.log")], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == '{"rows": 1}\n'  # a script's json.loads(stdout) works
    assert "[score] warning: shift: not like the calibration rows" in out.stderr and "progress" not in out.stderr
