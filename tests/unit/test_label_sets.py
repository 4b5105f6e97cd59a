"""Label sets of any N classes: the `labels` config, reading values as classes, inferring the classes of a split."""

import pandas as pd
import pytest

from sentiment_ray.config import load_config
from sentiment_ray.data import load_splits
from sentiment_ray.errors import ConfigError, DataError
from sentiment_ray.labels import LabelSet, binary_sentiment, infer_label_set

STARS = [
    {"name": "差评", "values": [1, 2], "word": "差"},
    {"name": "中评", "values": [3]},
    {"name": "好评", "values": [4, 5]},
]


def test_a_labels_list_is_typed_checked_and_read_as_values_names_or_integers():
    cfg = load_config(None, updates={"labels": STARS})
    labels = cfg.label_set()
    assert labels.names == ("差评", "中评", "好评") and labels.words == ("差", "中评", "好评")
    assert [labels.id_of(v) for v in (1, "2", 3.0, " 中评 ", "5", None, "")] == [0, 0, 1, 1, 2, None, None]
    with pytest.raises(ValueError, match="unknown label '6'; the classes are '差评', '中评', '好评'"):
        labels.id_of("6")
    with pytest.raises(ValueError, match="true/false"):
        labels.id_of(True)
    assert LabelSet.from_list(labels.to_list()) == labels  # what the saved config and the meta hold
    assert load_config(None).label_set() is None  # no list: inferred from the training split


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([{"name": "a"}], "at least 2 classes"),
        ([{"name": "a"}, {"name": "a"}], "class names must differ"),
        ([{"name": "a", "word": "x"}, {"name": "b", "word": "x"}], "label words must differ"),
        ([{"name": "a", "values": ["1"]}, {"name": "b", "values": ["1"]}], "'1' would mean both 'a' and 'b'"),
        ([{"name": ""}, {"name": "b"}], r"labels\[0\].name must be a non-empty string"),
    ],
)
def test_a_wrong_labels_list_is_a_config_error_naming_the_problem(labels, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, updates={"labels": labels})


def test_custom_binary_words_with_a_class_list_need_the_words_in_the_list():
    with pytest.raises(ConfigError, match="give each class its `word`"):
        load_config(None, updates={"labels": STARS, "prompt.label_words": ["坏", "好"]})
    binary = load_config(None, updates={"labels": [{"name": "negative"}, {"name": "positive"}]}).label_set()
    assert binary.binary_sentiment and binary.words == ("负面", "正面") and binary.id_of("正面") == 1


def test_inferred_classes_are_binary_sentiment_for_its_spellings_and_sorted_values_otherwise():
    assert infer_label_set([0, 1, "正面", "negative", None, "xyz"]) == binary_sentiment()
    assert infer_label_set([5, 1, 3, "3", 10.0]).names == ("1", "3", "5", "10")  # integers in numeric order
    assert infer_label_set(["水果", "书籍", "手机", "书籍"]).names == ("书籍", "手机", "水果")
    assert infer_label_set([0, 1, 2, 2, 2]).names == ("0", "1", "2")  # half or more not binary: three classes


def test_a_file_of_categories_trains_on_its_classes_and_unknown_values_elsewhere_are_counted(tmp_path):
    cats = ["书籍", "手机", "水果"]
    rows = [(f"第{i}条评论，关于{cats[i % 3]}", cats[i % 3]) for i in range(90)]
    pd.DataFrame(rows, columns=["text", "cat"]).to_csv(tmp_path / "train.csv", index=False)
    test = [*rows[:10], ("一条新类别的评论", "衣服")]
    pd.DataFrame(test, columns=["text", "cat"]).to_csv(tmp_path / "test.csv", index=False)

    splits = load_splits(tmp_path, label_column="cat", max_invalid_fraction=0.1)

    assert splits.labels.names == ("书籍", "手机", "水果") and splits.report["labels"] == list(splits.labels.names)
    assert set(splits.train["label"]) == {0, 1, 2} and len(splits.test) == 10
    assert splits.report["invalid_rows"]["test"]["by_reason"] == {"unknown label": 1}
    test_file = splits.report["conservation"][str(tmp_path / "test.csv")]
    assert test_file["records"] == 11 and test_file["used"] + sum(test_file["dropped"].values()) == 11
    configured = load_splits(
        tmp_path,
        label_column="cat",
        labels=LabelSet(("水果", "书籍", "手机", "衣服"), ("水果", "书籍", "手机", "衣服")),
    )
    assert configured.labels.names[0] == "水果" and len(configured.test) == 11  # 衣服 is a class now


def test_the_offline_corpus_is_binary_and_refuses_other_classes():
    with pytest.raises(ConfigError, match="offline is binary sentiment"):
        load_splits("offline", labels=LabelSet(("a", "b", "c"), ("a", "b", "c")))


def test_binary_data_with_too_many_unknown_labels_is_refused_with_a_hint_to_list_the_classes(tmp_path):
    rows = [(f"评论{i}", i % 2) for i in range(40)] + [(f"中性{i}", 2) for i in range(10)]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(tmp_path / "three.csv", index=False)
    with pytest.raises(DataError, match="list the classes under `labels`"):
        load_splits(tmp_path / "three.csv")
