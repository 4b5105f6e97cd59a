"""Model folders, review files and score outputs behind `s3://` (the S3 protocol, served locally by moto)."""

from __future__ import annotations

import multiprocessing

import pandas as pd
from s3_local import BUCKET, s3_keys

from sentiment_ray.inference.batch import ScoreOptions, read_output, run_scoring
from sentiment_ray.inference.predictor import SentimentPredictor
from sentiment_ray.location import Location
from sentiment_ray.storage import upload_folder

TEXTS = ["质量很好，物流也快", "太差了，不推荐", "一般般吧。", "很好", "差评"]


def _resolve(uri: str, queue) -> None:
    queue.put(str(Location.of(uri).local_folder()))


def test_a_model_folder_on_s3_is_downloaded_once_per_node_and_predicts_as_the_local_one(
    s3, model_folder, tmp_path, monkeypatch
):
    monkeypatch.setenv("SENTIMENT_RAY_CACHE", str(tmp_path / "cache"))
    uri = f"s3://{BUCKET}/models/shared-once"
    upload_folder(model_folder, uri)
    ctx = multiprocessing.get_context("spawn")  # four processes of one node resolve it at the same time
    queue = ctx.Queue()
    workers = [ctx.Process(target=_resolve, args=(uri, queue)) for _ in range(4)]
    for w in workers:
        w.start()
    paths = {queue.get(timeout=120) for _ in workers}
    for w in workers:
        w.join(timeout=60)
    assert len(paths) == 1  # one entry, shared
    entries = [p for p in (tmp_path / "cache" / "remote").iterdir() if not p.name.startswith(".")]
    assert [str(e) for e in entries] == list(paths)
    local = SentimentPredictor.from_pretrained(str(model_folder), device="cpu", precision="fp32")
    remote = SentimentPredictor.from_pretrained(uri, device="cpu", precision="fp32")
    assert [p["prob_positive"] for p in remote.predict_batch(TEXTS)] == [
        p["prob_positive"] for p in local.predict_batch(TEXTS)
    ]


def test_a_changed_folder_behind_the_same_uri_is_a_new_cache_entry(s3, model_folder, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setenv("SENTIMENT_RAY_CACHE", str(tmp_path / "cache"))
    uri = f"s3://{BUCKET}/models/changes"
    upload_folder(model_folder, uri)
    first = Location.of(uri).local_folder()
    changed = tmp_path / "changed"
    shutil.copytree(model_folder, changed)
    (changed / "NOTES.txt").write_text("retrained")
    upload_folder(changed, uri)
    second = Location.of(uri).local_folder()
    assert first != second and (second / "NOTES.txt").read_text() == "retrained"


def test_score_reads_model_and_reviews_from_s3_and_writes_its_output_there(ray_cluster, s3, model_folder, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    pd.DataFrame({"rid": [f"r{i}" for i in range(40)], "text": (TEXTS * 8)}).to_csv(inputs / "a.csv", index=False)
    (inputs / "b.jsonl").write_text('{"rid": "j1", "text": "很好"}\n{broken\n', encoding="utf-8")
    upload_folder(inputs, f"s3://{BUCKET}/reviews")
    upload_folder(model_folder, f"s3://{BUCKET}/models/score")
    output = f"s3://{BUCKET}/scored/run1"
    summary = run_scoring(
        ScoreOptions(
            model_path=f"s3://{BUCKET}/models/score",
            inputs=[f"s3://{BUCKET}/reviews/*.csv", f"s3://{BUCKET}/reviews/b.jsonl"],
            output=output,
            id_column="rid",
            batch_size=8,
        )
    )
    assert summary["records"] == summary["rows_written"] == 42
    assert summary["rows_with_error"] == 1  # the broken JSON line is kept, with its error
    assert any(key.endswith(".parquet") for key in s3_keys("scored/run1/"))
    out = read_output(output)
    assert sorted(set(out["source_file"])) == [f"s3://{BUCKET}/reviews/a.csv", f"s3://{BUCKET}/reviews/b.jsonl"]
    local = SentimentPredictor.from_pretrained(str(model_folder), device="cpu", precision="fp32")
    rows = out[out["source_file"].str.endswith("a.csv")]
    expected = [p["label"] for p in local.predict_batch(rows["text"].tolist())]
    assert rows["label"].tolist() == expected


def test_a_run_with_an_s3_output_dir_keeps_nothing_of_it_on_the_drivers_disk_but_scratch(
    ray_cluster, s3, tmp_path, monkeypatch
):
    import json

    from helpers import small_run

    from sentiment_ray.storage import read_bytes
    from sentiment_ray.training.driver import run_dir, run_training

    cfg = small_run(f"s3://{BUCKET}/runs/first", **{"train.max_steps": 2})
    outcome = run_training(cfg)
    assert outcome.output_dir == f"s3://{BUCKET}/runs/first" and outcome.model_dir == f"{outcome.output_dir}/model"
    keys = s3_keys("runs/first/")
    for name in (
        "config.yaml",
        "data_report.json",
        "train_results.json",
        "test_results.json",
        "model/sentiment_meta.json",
    ):
        assert f"runs/first/{name}" in keys, name
    assert any("/tensorboard/" in k and "events.out.tfevents" in k for k in keys)  # uploaded by rank 0
    assert any(k.startswith("runs/first/ray/train-") and "/checkpoint_" in k for k in keys)  # Ray Train's storage
    train = json.loads(read_bytes(f"{outcome.output_dir}/train_results.json"))
    assert train["global_step"] == 2 and train["ray_run"].startswith(f"s3://{BUCKET}/runs/first/ray/")
    assert not (run_dir(Location.of(cfg.output_dir)) / "ray").exists()  # the staging folder holds no Ray storage
    predictor = SentimentPredictor.from_pretrained(outcome.model_dir, device="cpu", precision="fp32")
    assert all(p["error"] is None for p in predictor.predict_batch(TEXTS))
