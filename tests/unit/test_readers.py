"""read_reviews on real files in every supported format, and the errors for malformed files."""

import json

import pandas as pd
import pytest

from sentiment_ray.data import read_reviews
from sentiment_ray.data.readers import OUTPUT_COLUMNS
from sentiment_ray.errors import DataError


def _write(path, content: str):
    path.write_text(content, encoding="utf-8")
    return path


def _jsonl(path, records):
    return _write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def _labels(frame):
    return [None if pd.isna(v) else int(v) for v in frame["label"]]


def test_csv_with_custom_columns_keeps_ids_and_strings(tmp_path):
    path = _write(tmp_path / "r.csv", 'review_id,review,sentiment\n007,很好,positive\n1e3,"差,很差",0\n')
    frame = read_reviews(path, text_column="review", label_column="sentiment", id_column="review_id")
    assert list(frame.columns) == list(OUTPUT_COLUMNS)
    assert list(frame["id"]) == ["007", "1e3"]  # not mangled into 7 / 1000.0
    assert list(frame["text"]) == ["很好", "差,很差"]
    assert _labels(frame) == [1, 0]
    assert str(frame["label"].dtype) == "Int64"
    assert list(frame["problem"]) == [None, None]
    assert list(frame["source_row"]) == [1, 2]


def test_tsv_chnsenticorp_layout_generates_ids(tmp_path):
    path = _write(tmp_path / "train.tsv", 'label\ttext_a\n1\t房间干净\n0\t服务太差\n\n1\t"好"评\n')
    frame = read_reviews(path, text_column="text_a")
    assert list(frame["id"]) == ["1", "2", "3"]  # the record's position when there is no id column
    assert list(frame["text"]) == ["房间干净", "服务太差", '"好"评']  # a TSV has no quoting: quotes are text
    assert list(frame["source_line"]) == [2, 3, 5]  # the blank line 4 is not a record
    assert _labels(frame) == [1, 0, 1]
    assert list(frame["source_row"]) == [1, 2, 3]


def test_csv_bom_and_multiline_quoted_text(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes('\ufefftext,label\n"第一行\n第二行",1\n'.encode())
    frame = read_reviews(path)
    assert list(frame["text"]) == ["第一行\n第二行"]
    assert _labels(frame) == [1]


def test_jsonl_with_custom_columns_and_int_ids(tmp_path):
    records = [{"uid": 5, "content": "不错", "y": "正面"}, {"uid": 6, "content": "一般", "y": "负面", "extra": 1}]
    path = _jsonl(tmp_path / "r.jsonl", records)
    frame = read_reviews(path, text_column="content", label_column="y", id_column="uid")
    assert list(frame["id"]) == ["5", "6"]
    assert _labels(frame) == [1, 0]


def test_parquet_keeps_int_ids_with_nulls_as_given(tmp_path):
    path = tmp_path / "r.parquet"
    table = pd.DataFrame(
        {"id": pd.array([10, None, 12], dtype="Int64"), "text": ["a", "b", "c"], "label": [1.0, 0.0, None]}
    )
    table.to_parquet(path)
    frame = read_reviews(path, id_column="id")
    assert list(frame["id"]) == ["10", None, "12"]
    assert _labels(frame) == [1, 0, None]
    assert list(frame["problem"]) == [None, None, "missing label"]


def test_every_label_spelling_in_a_file(tmp_path):
    spellings = ["0", "1", "negative", "positive", "NEG", "Pos", " pos ", "负面", "正面", "消极", "积极"]
    expected = [0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1]
    path = _write(tmp_path / "s.csv", "text,label\n" + "".join(f"t{i},{s}\n" for i, s in enumerate(spellings)))
    frame = read_reviews(path)
    assert _labels(frame) == expected
    assert frame["problem"].isna().all()


def test_row_problems(tmp_path):
    records = [
        {"text": "好", "label": 1},
        {"text": "", "label": 1},
        {"text": "   ", "label": 0},
        {"text": None, "label": 0},
        {"text": 123, "label": 0},
        {"text": "还行", "label": None},
        {"text": "还行", "label": ""},
        {"text": "还行", "label": "xyz"},
        {"text": "还行", "label": True},
        {"label": 1},
    ]
    frame = read_reviews(_jsonl(tmp_path / "p.jsonl", records))
    assert list(frame["problem"]) == [
        None,
        "empty text",
        "empty text",
        "empty text",
        "text is not a string",
        "missing label",
        "missing label",
        "unknown label 'xyz'",
        "unknown label True",
        "empty text",
    ]
    assert frame["text"][4] is None  # the text column only ever holds str or None
    assert frame["text"][2] == "   "  # text is kept as read
    assert list(frame["source_row"]) == list(range(1, 11))


def test_absent_label_column_gives_na_unless_required(tmp_path):
    path = _write(tmp_path / "u.csv", "text\n好\n坏\n")
    frame = read_reviews(path)
    assert frame["label"].isna().all()
    assert frame["problem"].isna().all()  # unlabeled rows are still usable for scoring
    with pytest.raises(DataError, match=r"u\.csv: no label column 'label'.*'text'.*--label-column"):
        read_reviews(path, require_label=True)
    with pytest.raises(DataError, match=r"no label column 'y'.*--label-column"):
        read_reviews(path, label_column="y", require_label=True)


def test_label_column_none_reads_no_labels(tmp_path):
    frame = read_reviews(_write(tmp_path / "l.csv", "text,label\n好,xyz\n"), label_column=None)
    assert frame["label"].isna().all()
    assert frame["problem"].isna().all()


def test_missing_text_column_lists_columns_and_flag(tmp_path):
    path = _write(tmp_path / "t.tsv", "label\ttext_a\n1\t好\n")
    with pytest.raises(DataError) as info:
        read_reviews(path)
    message = str(info.value)
    assert str(path) in message
    assert "'text'" in message and "'label', 'text_a'" in message and "--text-column" in message


def test_missing_id_column(tmp_path):
    with pytest.raises(DataError, match=r"no id column 'uid'.*--id-column"):
        read_reviews(_write(tmp_path / "i.csv", "text,label\n好,1\n"), id_column="uid")


def test_bad_json_line_is_a_record_problem_with_its_line(tmp_path):
    path = _write(tmp_path / "bad.jsonl", '{"text": "好", "label": 1}\n\n{"text": "坏", "label": 0\n')
    frame = read_reviews(path)
    assert list(frame["source_row"]) == [1, 2] and list(frame["source_line"]) == [1, 3]
    assert frame["problem"][1].startswith("not valid JSON")


def test_json_line_that_is_not_an_object(tmp_path):
    frame = read_reviews(_write(tmp_path / "arr.jsonl", '{"text": "好"}\n["坏", 0]\n'))
    assert list(frame["problem"]) == [None, "a JSON list, not an object"]


def test_json_object_naming_a_key_twice(tmp_path):
    frame = read_reviews(_write(tmp_path / "twice.jsonl", '{"text": "好", "label": 1}\n{"text": "好", "text": "坏"}\n'))
    assert list(frame["problem"]) == [None, "the JSON object names 'text' more than once"]


def test_a_json_file_is_an_array_and_json_lines_take_jsonl(tmp_path):
    frame = read_reviews(_write(tmp_path / "array.json", '[{"text": "好", "label": 1}, {"text": "坏", "label": 0}]'))
    assert _labels(frame) == [1, 0] and frame["source_line"].isna().all()
    with pytest.raises(DataError, match=r"lines\.json: line 2 is not valid JSON"):
        read_reviews(_write(tmp_path / "lines.json", '{"text": "好"}\n{"text": "坏"}\n'))
    with pytest.raises(DataError, match=r"object\.json: a \.json file must hold one JSON array.*\.jsonl"):
        read_reviews(_write(tmp_path / "object.json", '{"text": "好"}'))


def test_undecodable_bytes_in_a_utf8_file_are_that_record_s_problem(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"text,label\n" + "好评如潮，非常满意".encode() * 60 + b",1\n" + "差评,0\n".encode("gbk"))
    frame = read_reviews(path)
    assert frame.attrs["file"]["encoding"] == "utf-8"
    assert frame["problem"][0] is None
    assert (
        frame["problem"][1]
        == "column 'text' holds bytes that are not valid utf-8 (or a lone surrogate such as \\ud800)"
    )


@pytest.mark.parametrize("bad_row", ["好,1,extra", "好"])
def test_csv_row_with_wrong_field_count_is_a_record_problem(tmp_path, bad_row):
    frame = read_reviews(_write(tmp_path / "f.csv", f"text,label\n不错,1\n{bad_row}\n"))
    assert frame["problem"][1].startswith("record has ") and "but the header has 2 (text, label)" in frame["problem"][1]
    assert int(frame["source_line"][1]) == 3


def test_duplicate_column_names_are_refused_with_their_positions(tmp_path):
    with pytest.raises(
        DataError, match=r"dup\.csv: the header names a column more than once \('text' at columns \[2, 3\]\)"
    ):
        read_reviews(_write(tmp_path / "dup.csv", "id,text,text\n1,好,坏\n"))


@pytest.mark.parametrize(
    ("name", "content", "pattern"),
    [
        ("zero.csv", "", r"zero\.csv: the file is empty"),
        ("blank.jsonl", "\n  \n", r"blank\.jsonl: no records"),
        ("header.csv", "text,label\n", r"header\.csv: no records"),
    ],
)
def test_empty_files(tmp_path, name, content, pattern):
    with pytest.raises(DataError, match=pattern):
        read_reviews(_write(tmp_path / name, content))


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"r\.xls: unsupported file type '\.xls'.*\.csv.*\.tsv.*\.jsonl.*\.xlsx"):
        read_reviews(_write(tmp_path / "r.xls", "x"))
    with pytest.raises(DataError, match=r"r\.xlsx: cannot be read as an \.xlsx workbook"):
        read_reviews(_write(tmp_path / "r.xlsx", "x"))
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        read_reviews(tmp_path / "nope.csv")


def test_corrupt_parquet(tmp_path):
    with pytest.raises(DataError, match=r"broken\.parquet: cannot be read as Parquet"):
        read_reviews(_write(tmp_path / "broken.parquet", "not parquet at all"))


def test_xlsx_reads_the_first_sheet_or_the_named_one(tmp_path):
    from sentiment_ray.data.formats import ReadOptions

    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as book:
        pd.DataFrame({"评论": ["很好", "太差"], "标签": [1, 0], "编号": [7, 8]}).to_excel(
            book, sheet_name="reviews", index=False
        )
        pd.DataFrame({"text": ["一般"], "label": ["正面"]}).to_excel(book, sheet_name="other", index=False)
    first = read_reviews(path, text_column="评论", label_column="标签", id_column="编号")
    assert list(first["text"]) == ["很好", "太差"] and _labels(first) == [1, 0]
    assert list(first["id"]) == ["7", "8"]  # whole numbers come back as ints, not "7.0"
    assert list(first["source_line"]) == [2, 3]  # the sheet's row numbers
    other = read_reviews(path, options=ReadOptions(sheet="other"))
    assert list(other["text"]) == ["一般"] and _labels(other) == [1]
    with pytest.raises(DataError, match=r"book\.xlsx: no sheet 'nope'; sheets: reviews, other"):
        read_reviews(path, options=ReadOptions(sheet="nope"))


@pytest.mark.parametrize(("encoding", "bom"), [("gb18030", b""), ("utf-16", b""), ("utf-8", b"\xef\xbb\xbf")])
def test_encodings_are_detected_and_reported(tmp_path, encoding, bom):
    path = tmp_path / "reviews.csv"
    path.write_bytes(bom + "text,label\n质量很好，物流也快,1\n太差了，不推荐,0\n".encode(encoding))
    frame = read_reviews(path)
    assert list(frame["text"]) == ["质量很好，物流也快", "太差了，不推荐"]
    assert frame.attrs["file"]["encoding"] == {"gb18030": "gb18030", "utf-16": "utf-16", "utf-8": "utf-8-sig"}[encoding]


def test_an_explicit_encoding_wins_and_a_wrong_name_is_refused(tmp_path):
    from sentiment_ray.data.formats import ReadOptions

    path = tmp_path / "reviews.tsv"
    path.write_bytes("text\tlabel\n好\t1\n".encode("gb18030"))
    assert read_reviews(path, options=ReadOptions(encoding="gb18030")).attrs["file"]["encoding"] == "gb18030"
    with pytest.raises(DataError, match=r"reviews\.tsv: unknown encoding 'klingon'"):
        read_reviews(path, options=ReadOptions(encoding="klingon"))


def test_scoring_applies_the_same_column_rules_before_ray_starts(tmp_path):
    from sentiment_ray.inference.batch import ScoreOptions, describe_inputs
    from sentiment_ray.location import Location

    dup = _write(tmp_path / "dup.csv", "id,text,text\n1,好,坏\n")
    opts = ScoreOptions(model_path="", inputs=[str(dup)], output="")
    with pytest.raises(DataError, match=r"dup\.csv: the header names a column more than once \('text'"):
        describe_inputs([Location.of(dup)], opts)
    other = _write(tmp_path / "other.jsonl", '{"review": "好"}\n')
    with pytest.raises(DataError, match=r"other\.jsonl: no column 'text'; available columns: 'review'.*--text-column"):
        describe_inputs([Location.of(other)], opts)
    good = _write(tmp_path / "good.tsv", 'text\n"好\n坏\n')
    assert describe_inputs([Location.of(good)], opts) == [{"path": str(good), "format": "tsv", "encoding": "utf-8"}]


def test_a_record_the_csv_module_refuses_is_that_record_s_problem(tmp_path):
    path = tmp_path / "cr.csv"
    path.write_bytes(b"text,label\na\rb,1\nc,0\n")  # a lone carriage return in an unquoted field
    frame = read_reviews(path)
    assert frame.attrs["file"]["records"] == 2 and list(frame["source_line"]) == [2, 3]
    assert frame["problem"][0].startswith("not a valid CSV record") and frame["problem"][1] is None
