"""`sentiment-ray info`: what a model or run folder holds, from its files, local or in S3 (moto on 127.0.0.1)."""

import json
import shutil

import pytest
from s3_local import BUCKET

from sentiment_ray.cli.commands import main
from sentiment_ray.models.describe import describe


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory, model_folder):
    """A run folder as `train` leaves it, around the session's model folder."""
    run = tmp_path_factory.mktemp("info") / "run"
    shutil.copytree(model_folder, run / "model")
    results = {"global_step": 4, "max_steps": 4, "num_workers": 2, "wall_time_s": 31.7, "command": "sentiment-ray x"}
    (run / "train_results.json").write_text(json.dumps(results))
    return run


def test_a_model_folder_is_described_from_its_meta(model_folder, capsys):
    meta = json.loads((model_folder / "sentiment_meta.json").read_text(encoding="utf-8"))
    about = describe(str(model_folder))
    assert about["kind"] == "model folder" and about["model_folder"] == str(model_folder)
    assert (about["strategy"], about["finetune"], about["base_model"]) == (meta["strategy"], "lora", "tiny")
    assert [c["name"] for c in about["labels"]] == ["negative", "positive"] and "training" not in about
    weights = sum(p.stat().st_size for p in model_folder.glob("*.safetensors"))
    assert about["files"]["weights_megabytes"] == round(weights / 2**20, 1) > 0

    assert main(["info", str(model_folder)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"model folder: {model_folder}\n") and "strategy label_scoring; fine-tuning lora" in out
    assert "classes (2): negative (负面), positive (正面)" in out


def test_a_run_folder_adds_its_training_and_json_is_everything(run_folder, capsys):
    assert main(["info", str(run_folder), "--json"]) == 0
    about = json.loads(capsys.readouterr().out)
    assert about["kind"] == "run folder" and about["model_folder"] == str(run_folder / "model")
    assert about["training"] == {
        "global_step": 4,
        "max_steps": 4,
        "num_workers": 2,
        "wall_time_s": 32,
        "command": "sentiment-ray x",
    }


def test_a_folder_in_s3_is_described_without_downloading_it(s3, run_folder):
    from sentiment_ray.storage import upload_folder

    uri = f"s3://{BUCKET}/info/run"
    upload_folder(run_folder, uri)
    local, remote = describe(str(run_folder)), describe(uri)
    assert remote["model_folder"] == f"{uri}/model" and remote["files"] == local["files"]
    assert {k: v for k, v in remote.items() if k not in ("path", "model_folder")} == {
        k: v for k, v in local.items() if k not in ("path", "model_folder")
    }


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root.mkdir(), "neither a model folder nor a run folder"),
        (lambda root: None, "no such folder"),
        (lambda root: (root.mkdir(), (root / "sentiment_meta.json").write_text("{broken")), "not valid JSON"),
        (lambda root: (root.mkdir(), (root / "sentiment_meta.json").write_text('{"strategy": "x"}')), "strategy"),
    ],
    ids=["empty", "missing", "broken-json", "bad-meta"],
)
def test_what_is_not_a_folder_is_one_line_naming_it(tmp_path, capsys, make, message):
    root = tmp_path / "folder"
    make(root)
    assert main(["info", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {root}") and message in err, err
