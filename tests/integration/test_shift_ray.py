"""The shift check on a real shift, end to end: calibrated on short reviews of the offline corpus, the model meets
long ones. `score` warns for them and not for more short ones; `calibrate --as long` on 400 labelled long rows
then keeps the promise on the other long rows.

The tiny fixture model has random adapters, so against the corpus' labels no threshold reaches any target (as
the `calibrated_folder` fixture explains). Labels here are the model's own predictions with the least confident
30% flipped, in each domain: confident rows are right, so a target has a threshold; the shift is in the texts.
"""

import json
import shutil

import pandas as pd
import pytest
from helpers import self_labelled

from sentiment_ray.cli import main
from sentiment_ray.data.corpus import load_offline_splits
from sentiment_ray.inference.batch import ScoreOptions, read_output, run_scoring
from sentiment_ray.inference.predictor import SentimentPredictor
from sentiment_ray.models.describe import describe

TARGET = 0.9


@pytest.fixture(scope="module")
def domains(tmp_path_factory, model_folder):
    """A copy of the fixture folder calibrated on 600 short reviews, and CSVs of other short and of long ones."""
    root = tmp_path_factory.mktemp("shift")
    folder = root / "model"
    shutil.copytree(model_folder, folder)
    texts = pd.Series(load_offline_splits(seed=0, val_size=600, test_size=600)[0]["train"]["text"].tolist())
    short, long = texts[texts.str.len() <= 30], texts[texts.str.len() >= 120]
    files = {
        "calibration": self_labelled(folder, short.iloc[:600].tolist()),
        "short": self_labelled(folder, short.iloc[600:1200].tolist()),
        "long": self_labelled(folder, long.iloc[:1000].tolist()),
    }
    for name, frame in files.items():
        frame.to_csv(root / f"{name}.csv", index=False)
    assert main(["calibrate", "--model-path", str(folder), "--data", str(root / "calibration.csv")]) == 0
    return folder, root


def test_a_folder_remembers_its_calibration_rows_shape(domains):
    folder, _ = domains
    reference = json.loads((folder / "sentiment_meta.json").read_text())["calibration"]["reference"]
    assert reference["rows"] == 600 and sum(reference["confidence"]["counts"]) == 600
    assert sum(reference["length_tokens"]["counts"]) == 600 and reference["source"]["part"] == "whole file"


def test_short_reviews_pass_the_check_and_score_warns_on_long_ones(ray_cluster, domains, tmp_path, caplog):
    folder, root = domains
    predictor = SentimentPredictor.from_pretrained(str(folder), device="cpu")  # as predict_batch callers see it
    short = predictor.predict_batch(pd.read_csv(root / "short.csv")["text"].tolist(), target_accuracy=TARGET)
    assert short.shift["checked"] and not short.shift["shifted"], short.shift
    assert "abstained" in short[0] and "shift" not in short[0]  # a side channel: the rows are as they were
    opts = ScoreOptions(
        model_path=str(folder), inputs=[str(root / "long.csv")], output=str(tmp_path / "out"), target_accuracy=TARGET
    )
    with caplog.at_level("WARNING", logger="sentiment_ray.score"):
        verdict = run_scoring(opts)["shift"]
    assert verdict["shifted"] and "length_tokens" in verdict["shifted_tests"] and verdict["rows"] == 1000, verdict
    assert verdict["source"]["part"] == "whole file" and verdict["advice"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "calibration.csv (whole file)" in warnings[0] and "length_tokens" in warnings[0]


def test_recalibrating_on_400_long_rows_keeps_the_promise_on_the_other_long_rows(
    ray_cluster, domains, tmp_path, capsys
):
    folder, root = domains
    long = pd.read_csv(root / "long.csv")
    long.iloc[:400].to_csv(tmp_path / "sample.csv", index=False)
    long.iloc[400:].to_csv(tmp_path / "rest.csv", index=False)
    argv = ["calibrate", "--model-path", str(folder), "--data", str(tmp_path / "sample.csv"), "--as", "long"]
    assert main(argv) == 0
    about = describe(str(folder))  # `sentiment-ray info`
    assert (
        about["calibrations"]["long"]["fitted_on"]["rows"] == 400 and about["calibration"]["fitted_on"]["rows"] == 600
    )
    opts = ScoreOptions(
        model_path=str(folder),
        inputs=[str(tmp_path / "rest.csv")],
        output=str(tmp_path / "out"),
        target_accuracy=TARGET,
        calibration="long",
        precision="fp32",  # as `predict` below: the abstained flags compare row for row
    )
    summary = run_scoring(opts)
    assert summary["shift"]["calibration"] == "long" and not summary["shift"]["shifted"], summary["shift"]
    assert summary["selection"]["lower_bound_n"] > 0 and "400 labelled rows" in summary["selection"]["promise"]
    out = read_output(tmp_path / "out")
    kept = out[out["abstained"] == False]  # noqa: E712 - a nullable boolean column
    assert len(kept) > 100
    assert (kept["label_id"].astype(int) == kept["input_label"].astype(int)).mean() >= TARGET - 0.01
    # `predict --calibration long` selects the same rows; with the folder's own (short rows) it warns on stderr.
    predict = ["predict", "--model-path", str(folder), "--input", str(tmp_path / "rest.csv"), "--precision", "fp32"]
    predict += ["--target-accuracy", str(TARGET)]
    capsys.readouterr()
    assert main([*predict, "--calibration", "long"]) == 0
    printed = capsys.readouterr()
    assert [json.loads(line)["abstained"] for line in printed.out.splitlines()] == out["abstained"].tolist()
    assert "shift" not in printed.err
    assert main(predict) == 0
    warned = capsys.readouterr().err
    assert "calibration.csv (whole file)" in warned and "length_tokens" in warned, warned
    # The folder's own calibration is untouched, and an unknown name is refused before Ray starts.
    predictor = SentimentPredictor.from_pretrained(str(folder), device="cpu")
    assert predictor.meta["calibration"]["fitted_on"]["rows"] == 600
    with pytest.raises(Exception, match="holds: default, long"):
        run_scoring(ScoreOptions(**{**opts.__dict__, "calibration": "nope", "output": str(tmp_path / "x")}))
