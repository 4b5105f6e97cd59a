"""load_splits: offline corpus, single files, folder layouts, invalid-row threshold, and the unreachable Hub."""

import json

import pandas as pd
import pytest

from sentiment_ray.data import Splits, load_splits
from sentiment_ray.errors import ConfigError, DataError

SPLITS = ("train", "validation", "test")


@pytest.fixture(scope="module")
def offline42():
    # The corpus has ~35k lines: load it once per module.
    return load_splits("offline", seed=42)


@pytest.fixture(scope="module")
def offline7():
    return load_splits("offline", seed=7)


def _frames(splits: Splits):
    return {name: getattr(splits, name) for name in SPLITS}


def _write_csv(path, n, *, bad=(), text_column="text", label_column="label"):
    """n rows with unique texts and alternating labels; rows listed in `bad` (0-based) get an unknown label."""
    rows = [f"{text_column},{label_column}"]
    rows += [f"评论{i},{'xyz' if i in bad else i % 2}" for i in range(n)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_offline_sizes_and_counts(offline42):
    report = offline42.report
    corpus = report["corpus"]
    assert corpus["raw_total"] == sum(corpus["raw_lines"].values()) > 30000
    assert corpus["duplicates_removed"] > 0 and corpus["conflicting_texts_removed"] > 0
    removed = corpus["empty_lines"] + corpus["duplicates_removed"] + corpus["conflicting_rows_removed"]
    assert corpus["clean_total"] == corpus["raw_total"] - removed
    assert len(offline42.validation) == 1200 and len(offline42.test) == 1200
    assert len(offline42.train) == corpus["clean_total"] - 2400
    assert report["rows"] == {name: len(frame) for name, frame in _frames(offline42).items()}
    json.dumps(report)  # the report goes into run folders as JSON


def test_offline_is_clean(offline42):
    everything = pd.concat(_frames(offline42).values())
    assert everything["problem"].isna().all()
    assert everything["label"].notna().all()
    assert (everything["text"].str.strip() == everything["text"]).all()
    assert (everything["text"].str.len() > 0).all()
    assert everything["text"].is_unique  # no text twice, so none in two splits and none under both labels
    assert everything["id"].is_unique and everything["id"].str.startswith("offline-").all()
    assert offline42.report["texts_in_several_splits"] == 0


def test_offline_split_is_stratified(offline42):
    share = offline42.train["label"].mean()
    for frame in (offline42.validation, offline42.test):
        assert abs(frame["label"].mean() - share) < 0.01
        assert 0.3 < frame["label"].mean() < 0.7  # both labels present, not grouped by label


def test_offline_same_seed_same_splits(offline42):
    again = load_splits("offline", seed=42)
    for name in SPLITS:
        pd.testing.assert_frame_equal(getattr(again, name), getattr(offline42, name))


def test_offline_different_seed_different_splits_same_ids(offline42, offline7):
    assert set(offline42.test["id"]) != set(offline7.test["id"])
    first = pd.concat(_frames(offline42).values()).set_index("id")["text"].sort_index()
    second = pd.concat(_frames(offline7).values()).set_index("id")["text"].sort_index()
    pd.testing.assert_series_equal(first, second)  # an id names the same review whatever the seed


def test_offline_custom_sizes_and_max_train_samples(offline42):
    small = load_splits("offline", seed=42, val_size=100, test_size=50, max_train_samples=500)
    assert (len(small.train), len(small.validation), len(small.test)) == (500, 100, 50)
    assert small.report["train_subsampled_from"] == offline42.report["corpus"]["clean_total"] - 150
    again = load_splits("offline", seed=42, val_size=100, test_size=50, max_train_samples=500)
    pd.testing.assert_frame_equal(small.train, again.train)
    assert set(small.train["label"]) == {0, 1}


def test_single_file_is_split_80_10_10(tmp_path):
    path = _write_csv(tmp_path / "all.csv", 100)
    splits = load_splits(path, seed=1)
    frames = _frames(splits)
    assert [len(frames[name]) for name in SPLITS] == [80, 10, 10]
    ids = [set(frame["id"]) for frame in frames.values()]
    assert set.union(*ids) == {str(i) for i in range(1, 101)}
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert splits.report["source_kind"] == "file" and splits.report["files"]["test"] == str(path)
    assert set(load_splits(path, seed=1).test["id"]) == ids[2]
    assert set(load_splits(path, seed=2).test["id"]) != ids[2]


def test_splits_come_back_shuffled(tmp_path):
    # A file sorted by label must not give a train split sorted by label (a trainer that forgets to shuffle).
    path = tmp_path / "sorted.csv"
    path.write_text("text,label\n" + "".join(f"评论{i},{int(i >= 50)}\n" for i in range(100)), encoding="utf-8")
    labels = list(load_splits(path).train["label"])
    assert labels != sorted(labels) and labels != sorted(labels, reverse=True)


def test_folder_with_dev_alias_and_formats(tmp_path):
    _write_csv(tmp_path / "train.csv", 40, text_column="text_a")
    (tmp_path / "dev.tsv").write_text("label\ttext_a\n1\t好\n0\t坏\n", encoding="utf-8")
    test = pd.DataFrame({"text_a": ["甲", "乙", "丙"], "label": ["pos", "neg", "pos"]})
    test.to_parquet(tmp_path / "test.parquet")
    (tmp_path / "README.md").write_text("not data")
    splits = load_splits(tmp_path, text_column="text_a")
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (40, 2, 3)
    assert list(splits.validation["text"]) == ["好", "坏"]
    assert list(splits.test["label"]) == [1, 0, 1]
    assert splits.report["files"]["validation"] == str(tmp_path / "dev.tsv")
    assert "carved" not in splits.report


def test_folder_val_alias_and_carved_test(tmp_path):
    _write_csv(tmp_path / "train.jsonl.csv", 1)  # not a split name: ignored
    _write_csv(tmp_path / "train.csv", 50)
    _write_csv(tmp_path / "val.csv", 6)
    splits = load_splits(tmp_path, seed=3)
    assert len(splits.validation) == 6
    assert (len(splits.train), len(splits.test)) == (45, 5)
    assert "test" in splits.report["carved"] and "train.csv" in splits.report["carved"]["test"]
    assert not set(splits.train["id"]) & set(splits.test["id"])
    assert splits.report["files"]["test"] == str(tmp_path / "train.csv")


def test_folder_with_two_candidates_for_a_split(tmp_path):
    for name in ("train.csv", "validation.csv", "dev.jsonl"):
        _write_csv(tmp_path / name, 20)
    with pytest.raises(DataError, match=r"several files could be the validation split \(dev\.jsonl, validation\.csv\)"):
        load_splits(tmp_path)


def test_folder_without_train(tmp_path):
    _write_csv(tmp_path / "test.csv", 20)
    with pytest.raises(DataError, match=r"no train file.*found: test\.csv"):
        load_splits(tmp_path)


def test_nonexistent_path(tmp_path):
    missing = tmp_path / "missing.csv"
    with pytest.raises(DataError, match=r"'.*missing\.csv' is not an existing file or folder.*offline"):
        load_splits(missing)


def test_invalid_rows_above_threshold_are_refused(tmp_path):
    _write_csv(tmp_path / "train.csv", 100, bad={3, 10, 20, 30, 40, 50})  # 6% > 5%
    _write_csv(tmp_path / "test.csv", 20)
    with pytest.raises(DataError) as info:
        load_splits(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "train.csv") in message and "train split" in message
    assert "6 of 100 rows" in message and "max_invalid_fraction=0.05" in message
    assert "row 4: unknown label 'xyz'" in message  # source_row is 1-based


def test_invalid_rows_below_threshold_are_dropped_and_counted(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text(
        "text,label\n" + "".join(f"评论{i},{i % 2}\n" for i in range(40)) + ",1\n好,\n坏,xyz\n", encoding="utf-8"
    )
    _write_csv(tmp_path / "validation.csv", 10)
    _write_csv(tmp_path / "test.csv", 10)
    splits = load_splits(tmp_path, max_invalid_fraction=0.1)
    assert len(splits.train) == 40 and splits.train["problem"].isna().all()
    invalid = splits.report["invalid_rows"]
    assert invalid["train"]["count"] == 3 and invalid["train"]["rows_read"] == 43
    assert invalid["train"]["by_reason"] == {"empty text": 1, "missing label": 1, "unknown label": 1}
    assert invalid["train"]["examples"] == [
        {"file": str(train), "source_row": 41, "reason": "empty text"},
        {"file": str(train), "source_row": 42, "reason": "missing label"},
        {"file": str(train), "source_row": 43, "reason": "unknown label 'xyz'"},
    ]
    assert invalid["test"]["count"] == 0
    assert splits.report["rows"] == {"train": 40, "validation": 10, "test": 10}
    with pytest.raises(DataError, match="3 of 43 rows"):
        load_splits(tmp_path)  # 7% > the default 5%


def test_missing_label_column_is_an_error_for_training(tmp_path):
    path = tmp_path / "all.csv"
    path.write_text("text\n" + "".join(f"评论{i}\n" for i in range(20)), encoding="utf-8")
    with pytest.raises(DataError, match=r"no label column 'label'.*--label-column"):
        load_splits(path)


@pytest.mark.parametrize(
    ("options", "pattern"),
    [({"max_invalid_fraction": 1.5}, "max_invalid_fraction"), ({"max_train_samples": 0}, "max_train_samples")],
)
def test_bad_options(tmp_path, options, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_splits(_write_csv(tmp_path / "all.csv", 20), **options)


@pytest.mark.parametrize("source", ["chnsenticorp", "hf:someone/reviews"])
def test_unreachable_hub_gives_a_clear_error(tmp_path, monkeypatch, source):
    # The Hugging Face Hub is unreachable by design on this machine and in CI; offline mode plus empty caches makes
    # the failure immediate and identical everywhere (no retries, no cached copy from an earlier run).
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(DataError) as info:
        load_splits(source)
    message = str(info.value)
    expected_id = "lansinuote/ChnSentiCorp" if source == "chnsenticorp" else "someone/reviews"
    assert f"Hub dataset {expected_id!r}" in message
    assert "could not be reached" in message
    assert "--data offline" in message and "local file or folder" in message
    assert info.value.__suppress_context__  # no huggingface_hub traceback chained under the message
