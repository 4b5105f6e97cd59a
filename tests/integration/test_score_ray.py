"""Batch scoring on a real local Ray Data pipeline: every row comes out once, bad rows carry an error."""

import json

import pandas as pd
import pytest
from helpers import wait_for

import sentiment_ray
from sentiment_ray.inference.batch import ScoreOptions, checkpoint_dir, read_output, run_scoring
from sentiment_ray.inference.predictor import SentimentPredictor

GOOD = ["质量很好，物流也快", "太差了，不推荐", "一般般吧。"]


def write_malformed_inputs(folder):
    """One file per format, each with rows of every malformed kind next to good ones."""
    folder.mkdir()
    csv_bytes = (
        (
            "rid,text,label\n"
            "a1,质量很好，物流也快,1\n"
            "a2,,0\n"  # empty text
            "a3,   ,0\n"  # whitespace only
            "a4,too,many,fields\n"  # wrong field count
            'a5,"多行\n评论，很好",1\n'  # a quoted newline is one row
        ).encode()
        + b"a6,\xff\xfe broken bytes,1\n"
        + ("a7," + "长" * 30_000 + ",1\n").encode()
        + "a8,太差了，不推荐,0\n".encode()
    )
    (folder / "a.csv").write_bytes(csv_bytes)
    jsonl = [
        json.dumps({"rid": "b1", "text": "一般般吧。"}, ensure_ascii=False),
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"rid": "b4", "text": 42}),
        json.dumps({"rid": "b5", "text": None}),
        json.dumps({"rid": "b6", "comment": "no text key"}),
        "",
        json.dumps({"rid": "b7", "text": "很好"}),
    ]
    (folder / "b.jsonl").write_text("\n".join(jsonl) + "\n", encoding="utf-8")
    pd.DataFrame({"rid": ["c1", "c2", "c3"], "text": ["很好", None, "太差"]}).to_parquet(folder / "c.parquet")
    return {"a.csv": 8, "b.jsonl": 7, "c.parquet": 3}


def test_every_row_is_kept_in_order_with_errors(ray_cluster, tmp_path, model_folder):
    counts = write_malformed_inputs(tmp_path / "in")
    summary = sentiment_ray.score(  # the Python API: ScoreOptions' fields as keywords, paths as Path
        model_path=model_folder, inputs=tmp_path / "in", output=tmp_path / "out", id_column="rid", batch_size=4
    )
    out = read_output(tmp_path / "out")
    assert summary["rows_written"] == len(out) == sum(counts.values())
    assert not checkpoint_dir(tmp_path / "out").path.exists()  # deleted after a complete run
    errors = dict(zip(out["id"], out["error"], strict=True))
    assert errors["a1"] is None and errors["a8"] is None and errors["b1"] is None and errors["c1"] is None
    assert "empty" in errors["a2"] and "empty" in errors["a3"]
    assert "fields" in errors["4"]  # a record whose fields are unusable gets its position (1-based) as id
    assert errors["a5"] is None and "not valid utf-8" in errors["a6"] and "too long" in errors["a7"]
    assert "not valid JSON" in errors["2"] and "not an object" in errors["3"]
    assert "not a string" in errors["b4"] and "missing" in errors["b5"] and "no column 'text'" in errors["b6"]
    assert "missing" in errors["c2"]
    assert list(out[out["source_file"].str.endswith("a.csv")]["source_row"]) == list(range(1, 9))
    assert list(out[out["source_file"].str.endswith("a.csv")]["source_line"]) == [2, 3, 4, 5, 6, 8, 9, 10]
    assert list(out[out["source_file"].str.endswith("a.csv")]["id"][:3]) == ["a1", "a2", "a3"]
    good = out[out["error"].isna()]
    assert set(good["label"]) <= {"positive", "negative"} and good["prob_positive"].between(0, 1).all()
    assert set(out.columns) >= {"rid", "text", "label", "label_id", "confidence", "prob_positive", "error"}


def test_predictions_match_the_predictor(ray_cluster, tmp_path, model_folder):
    texts = [f"{t}{i}" for i in range(20) for t in GOOD]
    pd.DataFrame({"text_a": texts, "label": [1] * len(texts)}).to_csv(tmp_path / "in.tsv", sep="\t", index=False)
    run_scoring(
        ScoreOptions(
            model_path=str(model_folder),
            inputs=[str(tmp_path / "in.tsv")],
            output=str(tmp_path / "out"),
            text_column="text_a",
            output_format="jsonl",
            keep_columns=["text_a"],
            num_actors=2,
            batch_size=7,
            precision="fp32",  # both sides in fp32: the batches differ, and bf16 would round them apart
        )
    )
    out = read_output(tmp_path / "out", "jsonl")
    assert list(out["text_a"]) == texts and list(out["id"].astype(str)) == [str(i) for i in range(1, len(texts) + 1)]
    expected = SentimentPredictor.from_pretrained(model_folder, precision="fp32").predict_batch(texts)
    assert list(out["label"]) == [e["label"] for e in expected]
    assert list(out["label_id"]) == [e["label_id"] for e in expected]
    for column in ("prob_positive", "confidence"):  # every value column, not only the label it rounds to
        assert out[column].tolist() == pytest.approx([e[column] for e in expected], abs=1e-4), column


def test_interrupted_run_resumes_without_duplicates(ray_cluster, tmp_path, model_folder, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    for part in range(4):
        texts = [f"{GOOD[i % 3]}#{part}-{i}" for i in range(50)]
        pd.DataFrame({"text": texts}).to_csv(folder / f"part{part}.csv", index=False)
    opts = ScoreOptions(model_path=str(model_folder), inputs=[str(folder)], output=str(tmp_path / "out"), batch_size=10)
    free_before = ray_cluster.available_resources()["CPU"]
    monkeypatch.setenv("SENTIMENT_RAY_SCORE_FAIL_ON", "part3.csv")  # the job dies on the last file
    with pytest.raises(Exception, match="fault injection"):  # the exception (and its traceback) is kept here
        run_scoring(opts)
    # The failed job's actors give their CPUs back although the exception is still held: they used to stay alive,
    # and the rerun, sized to the free CPUs, then waited for a read task's CPU for good.
    assert wait_for(lambda: ray_cluster.available_resources().get("CPU", 0) >= free_before, timeout_s=30)
    first = read_output(tmp_path / "out")
    assert len(first) < 200 and checkpoint_dir(tmp_path / "out").path.exists()
    monkeypatch.delenv("SENTIMENT_RAY_SCORE_FAIL_ON")
    run_scoring(opts)  # same command again: only the missing rows are written
    out = read_output(tmp_path / "out")
    assert len(out) == 200 and out["row_key"].is_unique
    with pytest.raises(Exception, match="already holds a finished run"):
        run_scoring(opts)


SIX = ["书籍", "平板", "手机", "水果", "洗发水", "衣服"]  # several of these words are two tokens in Qwen's vocabulary


def test_a_six_class_folder_scores_one_probability_column_per_class(ray_cluster, tmp_path, tiny_path, tokenizer):
    from helpers import build_model_folder

    folder = build_model_folder(tmp_path / "six", tiny_path, tokenizer, labels=[{"name": c} for c in SIX])
    texts = [f"{t}{i}" for i in range(10) for t in GOOD]
    pd.DataFrame({"text": texts}).to_csv(tmp_path / "in.csv", index=False)
    options = {"inputs": [str(tmp_path / "in.csv")], "output": str(tmp_path / "out"), "output_format": "csv"}
    run_scoring(ScoreOptions(model_path=str(folder), precision="fp32", **options))
    out = read_output(tmp_path / "out", "csv")
    columns = [f"prob_{c}" for c in SIX]
    assert list(out.columns)[-10:] == ["label", "label_id", "confidence", *columns, "error"]
    assert "prob_positive" not in out and len(out) == len(texts) and (out["error"].fillna("") == "").all()
    probs = out[columns].astype(float)  # read_output keeps a CSV's cells as text
    assert abs(probs.sum(axis=1) - 1).max() < 1e-6
    expected = SentimentPredictor.from_pretrained(folder, precision="fp32").predict_batch(texts)
    assert list(out["label"]) == [e["label"] for e in expected] and set(out["label"]) <= set(SIX)
    want = [p for e in expected for p in e["probs"].values()]
    assert probs.to_numpy().ravel().tolist() == pytest.approx(want, abs=1e-4)


def test_a_binary_folder_from_before_n_class_labels_scores_the_columns_it_did(ray_cluster, tmp_path, tiny_path):
    from helpers import BINARY_FOLDERS, binary_folder

    folder = binary_folder("classifier", tiny_path, tmp_path)
    kept = json.loads((BINARY_FOLDERS / "classifier_predictions.json").read_text(encoding="utf-8"))
    pd.DataFrame({"text": kept["texts"]}).to_json(
        tmp_path / "in.jsonl", orient="records", lines=True, force_ascii=False
    )
    inputs = {"inputs": [str(tmp_path / "in.jsonl")], "output": str(tmp_path / "out")}
    run_scoring(ScoreOptions(model_path=str(folder), precision="fp32", **inputs))
    out = read_output(tmp_path / "out")
    assert list(out.columns)[-5:] == ["label", "label_id", "confidence", "prob_positive", "error"]
    for row, old in zip(out.to_dict("records"), kept["predictions"], strict=True):
        assert isinstance(row["error"], str) == (old["error"] is not None), (row, old)
        if old["error"] is None:
            assert (row["label"], row["label_id"]) == (old["label"], old["label_id"])
            for column in ("prob_positive", "confidence"):
                assert row[column] == pytest.approx(old[column], abs=1e-5), (column, row, old)


def test_the_score_command_prints_a_summary_and_keeps_ray_datas_output_in_its_log(ray_env, tmp_path, model_folder):
    """`sentiment-ray score` as a user runs it (joining the session's Ray): Ray Data's own logs go to `<output>.log`;
    the console shows the progress line and a summary naming the actor layout; `--json` runs as `--quiet` does and
    makes stdout one JSON object, so no progress line may get in."""
    import subprocess
    import sys

    pd.DataFrame({"id": range(30), "text": GOOD * 10}).to_csv(tmp_path / "in.csv", index=False)
    command = [sys.executable, "-m", "sentiment_ray.cli", "score", "--model-path", str(model_folder)]
    command += ["--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out")]
    done = subprocess.run(command, env=ray_env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    done_at = next(i for i, line in enumerate(lines) if line.startswith("[score] done: 30 rows from 1 file(s)"))
    assert lines[done_at - 1].startswith("[score] 30/30 rows (100%)"), lines  # after any progress lines
    assert lines[done_at + 1].startswith("actors:   ") and "actor(s) x" in lines[done_at + 1], lines
    assert lines[-1] == f"full log: {tmp_path / 'out.log'}", lines
    log = (tmp_path / "out.log").read_text(encoding="utf-8")
    assert "execution finished" in log  # Ray Data's own lines are in the log ...
    assert "execution finished" not in done.stdout + done.stderr and "logging_progress" not in done.stderr  # ... only
    as_json = subprocess.run([*command, "--overwrite", "--json"], env=ray_env, capture_output=True, text=True)
    summary = json.loads(as_json.stdout)  # stdout is the summary alone
    assert summary["rows_written"] == 30 and summary["log_file"] == str(tmp_path / "out.log"), as_json.stderr
    assert summary["num_actors"] >= 1 and summary["actors"].startswith(f"{summary['num_actors']} actor(s)")
