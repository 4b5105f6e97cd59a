"""The data-conformance contract on real-world review files, through training, evaluation and scoring.

`tests/data/conformance/` holds files in the shapes real exports take, with `manifest.json` giving each
file's records and how many training may use. Our own cases (`OWN_CASES`) are written here. The contract:

- training and evaluation account for every record: used + dropped (with a reason) = records;
- scoring writes exactly one row per record, with its position, and an error where it cannot score;
- a file without records gets a clear message naming it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from sentiment_ray.data import load_splits
from sentiment_ray.errors import DataError
from sentiment_ray.evaluation.suite import EvaluateOptions, evaluation_rows
from sentiment_ray.inference.batch import ScoreOptions, read_output, run_scoring

CORPUS = Path(__file__).parents[1] / "data" / "conformance"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))
GOOD = ["房间很干净，服务也很周到", "等了一个小时才上菜", "物流很快，包装完好", "做工粗糙，用两天就坏了"]


def _own_cases() -> dict[str, tuple[bytes, dict]]:
    """name → (file bytes, manifest entry) for cases the shared corpus does not have."""
    rows = [(i % 2, f"{GOOD[i % 4]}，第{i}条") for i in range(40)]
    tsv = "label\ttext\n" + "".join(f"{label}\t{text}\n" for label, text in rows)
    crlf_csv = "label,text\r\n" + "".join(f'{label},"{text}\r\n续"\r\n,\r\n' for label, text in rows[:20])
    jsonl = b"".join(json.dumps({"label": y, "text": t}, ensure_ascii=False).encode() + b"\n" for y, t in rows[:19])
    objects = [{"label": y, "text": t} for y, t in rows[:20]]
    array = json.dumps([*objects[:10], ["not", "an", "object"], *objects[10:]], ensure_ascii=False)
    extra_tab = "label\ttext\n" + "".join(f"{y}\t{t}\n" for y, t in rows[:20]) + "0\t太差\t多了一列\n"
    entry = {"text_column": "text", "label_column": "label"}
    return {
        "own_gbk_no_bom.tsv": (tsv.encode("gb18030"), {**entry, "records": 40, "used_min": 40, "used_max": 40}),
        "own_utf16be_bom.csv": (
            b"\xfe\xff" + tsv.replace("\t", ",").encode("utf-16-be"),
            {**entry, "records": 40, "used_min": 40, "used_max": 40},
        ),
        # Excel's CSV: CRLF, a line break inside quotes, and an empty ",," row after each record (not a record)
        "own_excel_crlf_blank_rows.csv": (crlf_csv.encode(), {**entry, "records": 20, "used_min": 20, "used_max": 20}),
        "own_jsonl_bad_bytes.jsonl": (
            jsonl + b'{"label": 1, "text": "\xff\xfe"}\n',
            {**entry, "records": 20, "used_min": 19, "used_max": 19},
        ),
        "own_array.json": (array.encode(), {**entry, "records": 21, "used_min": 20, "used_max": 20}),
        "own_extra_tab.tsv": (extra_tab.encode(), {**entry, "records": 21, "used_min": 20, "used_max": 20}),
    }


OWN_CASES = _own_cases()
CASES = {**MANIFEST, **{name: entry for name, (_, entry) in OWN_CASES.items()}}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The shared corpus and our own cases in one folder."""
    folder = tmp_path_factory.mktemp("conformance")
    for name in MANIFEST:
        (folder / name).write_bytes((CORPUS / name).read_bytes())
    for name, (data, _) in OWN_CASES.items():
        (folder / name).write_bytes(data)
    return folder


def _columns(entry: dict) -> dict:
    return {"text_column": entry["text_column"], "label_column": entry["label_column"]}


@pytest.mark.parametrize("name", sorted(CASES))
def test_training_accounts_for_every_record(corpus, name):
    entry, path = CASES[name], corpus / name
    if entry["records"] == 0:
        with pytest.raises(DataError, match=rf"{name}: no records"):
            load_splits(path, **_columns(entry))
        return
    splits = load_splits(path, **_columns(entry), max_invalid_fraction=0.1)
    file = splits.report["conservation"][str(path)]
    assert file["records"] == entry["records"]
    assert file["used"] + sum(file["dropped"].values()) == entry["records"]
    assert entry["used_min"] <= file["used"] <= entry["used_max"], file
    assert sum(len(f) for f in (splits.train, splits.validation, splits.test)) == file["used"]


@pytest.mark.parametrize("name", sorted(n for n, e in CASES.items() if e["records"]))
def test_evaluation_accounts_for_every_record(corpus, name):
    entry = CASES[name]
    opts = EvaluateOptions(model_path="", data=str(corpus / name), output_dir="", **_columns(entry))
    rows, _, report = evaluation_rows(opts)
    assert report["file"]["records"] == entry["records"]
    assert report["rows"] + report["unusable_rows_skipped"] == entry["records"]
    assert entry["used_min"] <= report["rows"] <= entry["used_max"]
    assert rows["source_row"].is_unique


def test_the_unclosed_quote_file_trains_on_200_rows_and_csv_quoting_is_reported(corpus):
    path = corpus / "tsv_unclosed_quote.tsv"
    plain = load_splits(path).report["conservation"][str(path)]
    assert plain["used"] == 200 and plain["line_breaks_before_a_record"]["count"] == 0
    from sentiment_ray.data.formats import ReadOptions

    quoted = load_splits(path, read_options=ReadOptions(quoting="csv")).report["conservation"][str(path)]
    assert quoted["records"] < 200  # with CSV quoting, quotes swallow the lines after them
    assert quoted["line_breaks_before_a_record"]["count"] > 0  # and the report says so
    assert "--quoting" in quoted["line_breaks_before_a_record"]["hint"]


def _score(ray_cluster, files: list[Path], out: Path, model_folder, text_column="text") -> pd.DataFrame:
    summary = run_scoring(
        ScoreOptions(
            model_path=str(model_folder),
            inputs=[str(f) for f in files],
            output=str(out),
            text_column=text_column,
            batch_size=64,
        )
    )
    frame = read_output(out)
    assert summary["rows_written"] == len(frame) == summary["records"]
    return frame


def test_scoring_writes_one_row_per_record(ray_cluster, corpus, tmp_path, model_folder):
    text_files = [corpus / n for n, e in CASES.items() if e["text_column"] == "text"]
    frame = _score(ray_cluster, text_files, tmp_path / "out", model_folder)
    sheet = _score(ray_cluster, [corpus / "xlsx_reviews.xlsx"], tmp_path / "xlsx", model_folder, "评论")
    frame = pd.concat([frame, sheet], ignore_index=True)
    for name, entry in CASES.items():
        rows = frame[frame["source_file"] == str(corpus / name)]
        assert len(rows) == entry["records"], name
        assert list(rows["source_row"]) == list(range(1, entry["records"] + 1)), name
        errors = rows[rows["error"].notna()]
        # Scoring needs no label: every record training may use is scored without an error.
        assert entry["records"] - len(errors) >= entry["used_min"], (name, list(errors["error"]))
    surrogate = frame[(frame["source_file"] == str(corpus / "jsonl_lone_surrogate.jsonl")) & frame["error"].notna()]
    assert list(surrogate["source_row"]) == [8] and "lone surrogate" in surrogate["error"].iloc[0]
    huge = frame[frame["source_file"] == str(corpus / "csv_huge_field.csv")]
    assert "too long" in huge[huge["source_row"] == 3]["error"].iloc[0]


def test_the_same_reviews_in_every_encoding_and_format_score_the_same(ray_cluster, tmp_path, model_folder):
    texts = [f'{GOOD[i % 4]}，他说"还行"，第{i}条' for i in range(30)]
    frame = pd.DataFrame({"text": texts, "label": [i % 2 for i in range(30)]})
    folder = tmp_path / "in"
    folder.mkdir()
    tsv = "text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(texts, frame["label"], strict=True))
    (folder / "utf8.tsv").write_text(tsv, encoding="utf-8")
    frame.to_csv(folder / "gb18030.csv", index=False, encoding="gb18030")
    (folder / "excel_unicode.txt").write_bytes(tsv.replace("\n", "\r\n").encode("utf-16"))  # BOM + UTF-16-LE
    frame.to_excel(folder / "sheet.xlsx", index=False, sheet_name="reviews")
    scored = _score(ray_cluster, sorted(folder.iterdir()), tmp_path / "out", model_folder)
    by_file = {Path(f).name: rows.reset_index(drop=True) for f, rows in scored.groupby("source_file")}
    reference = by_file.pop("utf8.tsv")
    assert list(reference["text"]) == texts and reference["error"].isna().all()
    for name, rows in by_file.items():
        assert list(rows["text"]) == texts, name
        assert list(rows["label"]) == list(reference["label"]), name
        assert list(rows["prob_positive"]) == pytest.approx(list(reference["prob_positive"]), abs=1e-6), name
