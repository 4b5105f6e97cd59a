"""Ray Train on the session's local Ray cluster: 2 CPU workers (gloo DDP), the tiny Qwen2, the offline corpus.

What depends on Ray is checked on the shared runs (`trained_runs`: one per strategy) and on one run per behaviour:
resume after a failed run, and Ray Train's own restart of a killed worker. Every strategy x fine-tune mode trains in
process in tests/unit/test_training_loop.py.
"""

import json

import pytest
from helpers import TRAINED, small_run
from ray.train import TrainingFailedError

from sentiment_ray.inference.predictor import SentimentPredictor
from sentiment_ray.location import Location
from sentiment_ray.training.driver import resolve_resume, run_training, storage_of


@pytest.mark.parametrize("strategy", sorted(TRAINED))
def test_two_worker_run_yields_a_loadable_model_folder(trained_runs, strategy):
    outcome = trained_runs[strategy]
    run = outcome.output_dir
    for name in ("config.yaml", "data_report.json", "train_results.json", "test_results.json"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").rglob("events.out.tfevents.*")), "no TensorBoard events written"
    train = json.loads((run / "train_results.json").read_text())
    assert train["global_step"] == 4 and train["num_workers"] == 2 and train["tiny_model"] is True
    assert len(train["step_seconds"]) == 4 and 0 < train["seconds_per_step"] <= max(train["step_seconds"])
    assert [w["peak_rss_mb"] > 100 for w in train["workers"]] == [True, True] and train["driver_peak_rss_mb"] > 100
    assert sorted(w["rank"] for w in train["workers"]) == [0, 1]
    test = json.loads((run / "test_results.json").read_text())
    for split in ("validation", "test"):
        assert test[split]["n"] == 32
        assert {"accuracy", "precision", "recall", "f1", "roc_auc", "confusion_matrix"} <= set(test[split])
        assert sum(map(sum, test[split]["confusion_matrix"])) == 32
    predictor = SentimentPredictor.from_pretrained(outcome.model_dir, device="cpu", precision="fp32")
    assert predictor.meta["strategy"] == strategy and predictor.meta["finetune"] == TRAINED[strategy]
    calibration = predictor.meta["calibration"]  # fitted at the end of training, on the validation split only
    assert calibration["fitted_on"]["part"] == "validation split" and calibration["fitted_on"]["rows"] == 32
    assert calibration["temperature"] > 0 and calibration["thresholds"]
    reference = calibration["reference"]  # what the shift check compares new rows with (sentiment_ray/shift.py)
    assert (
        reference["rows"] == 32 == sum(reference["confidence"]["counts"]) == sum(reference["length_tokens"]["counts"])
    )
    predictions = predictor.predict_batch(["质量很好，推荐购买", "太差了，退货"])
    assert all(p["error"] is None and p["label"] in ("positive", "negative") for p in predictions)


def test_a_failed_run_resumes_and_ray_train_restarts_a_killed_worker(ray_cluster, tmp_path, monkeypatch):
    """Two behaviours of Ray in two runs. The first run's rank 0 dies at step 5 (checkpoints at 2 and 4) with no
    retries: the run fails. The same command again resumes it (`resume: auto`, the default) and, allowed one
    failure, loses rank 0 again at step 7: Ray Train restarts the worker group from its latest checkpoint within
    the same call, and the run ends at step 8, still the first run's Ray run."""
    cfg = small_run(tmp_path / "resume", **{"train.max_steps": 8})
    monkeypatch.setenv("SENTIMENT_RAY_FAIL_AT_STEP", "5")
    with pytest.raises(TrainingFailedError):
        run_training(cfg)
    storage = storage_of(cfg, Location.of(cfg.output_dir))
    first_run = resolve_resume("auto", storage)[0]  # the failed run, kept for `auto` to continue

    monkeypatch.setenv("SENTIMENT_RAY_FAIL_AT_STEP", "7")  # a new marker file: this injection fires once too
    retried = small_run(tmp_path / "resume", **{"train.max_steps": 8, "train.max_failures": 1})
    outcome = run_training(retried)

    train = outcome.train_results
    assert train["ray_run"].endswith(f"/{first_run}"), (train["ray_run"], first_run)  # resumed, not started anew
    # Ray registers a reported checkpoint asynchronously, so a crash one step after the save at 6 may leave
    # step 4 as the latest registered one. Either way the count continues instead of restarting.
    assert train["resumed_from_step"] in (4, 6) and train["global_step"] == 8
    assert (outcome.output_dir / "fault_injected_at_step_5").is_file()
    fault = train["fault_injection"]
    assert fault["killed_at_step"] == 7 and fault["recovery_s"] > 0
    # A finished run is not resumed: `auto` now starts a new Ray run instead of continuing this one.
    assert resolve_resume("auto", storage)[0] != first_run
    resumed, recovery = train["resumed_from_step"], fault["recovery_s"]
    print(f"worker killed at step 7, training again from step {resumed} {recovery:.1f} s later")
