"""`sentiment-ray predict`: reviews from flags, built-in demos, a review file or stdin → one JSON line per review.

`--input FILE` reads any review file through the one parser per format (docs/guide/review-files.md) and writes one
line per record, in file order: a record that cannot be scored (no text, undecodable bytes, a broken JSON line)
gets its `error`, never a missing line. `--input -` reads stdin, one review per line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

from sentiment_ray.errors import DataError

DEMO_TEXTS = [
    "这个产品质量非常好，值得购买！",
    "物流太慢了，包装也破了，很失望。",
    "酒店位置不错，服务也很周到，下次还会再来。",
    "屏幕有坏点，客服态度差，不推荐。",
]
CHUNK_ROWS = 1024
"""Reviews of a file predicted per call: the predictor sorts each chunk by length; memory stays bounded."""


def cmd_predict(args) -> int:
    from sentiment_ray.calibration import check_request
    from sentiment_ray.inference.predictor import SentimentPredictor

    check_request(args.target_accuracy, args.min_confidence)  # a bad target fails before the model loads
    rows = input_rows(args) if args.input else None  # a bad file or column fails before the model loads
    predictor = SentimentPredictor.from_pretrained(
        args.model_path,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        calibrated=not args.uncalibrated,
    )
    selective = {"target_accuracy": args.target_accuracy, "min_confidence": args.min_confidence}
    selective["calibration"] = args.calibration
    predictor.selection(**selective)  # no calibration (or an unknown name): known before a review is read
    if args.interactive:
        return _interactive(predictor, selective)
    if rows is None:
        rows = [{"text": text} for text in (DEMO_TEXTS if args.demo else args.text)]
    tally = None
    for chunk in _chunks(rows):
        predictions = predictor.predict_batch([row["text"] for row in chunk], **selective)
        tally = predictions.tally if tally is None else tally.merge(predictions.tally)
        for row, prediction in zip(chunk, predictions, strict=True):
            problem = row.pop("problem", None)
            print(json.dumps({**row, **prediction, **({"error": problem} if problem else {})}, ensure_ascii=False))
    _warn_on_shift(predictions, tally)
    return 0


def _warn_on_shift(last, tally) -> None:
    """One line on stderr when the predicted rows (all chunks) are not like the calibration rows (shift.py)."""
    from sentiment_ray.shift import check_shift, warning_line

    line = warning_line(check_shift(last.calibration, tally, last.calibration_name))
    if line:
        print(line, file=sys.stderr)


def input_rows(args) -> list[dict]:
    """{"id", "source_row", "text"[, "problem"]} per record of `--input` (a file, or `-`: stdin's lines)."""
    if args.input == "-":
        return [{"source_row": n, "text": line.rstrip("\r\n")} for n, line in enumerate(sys.stdin, start=1)]
    return file_rows(args.input, args.text_column, args.id_column, _read_options(args))


def file_rows(path: str, text_column: str, id_column: str | None, options) -> list[dict]:
    from pathlib import Path

    from sentiment_ray.data.formats import open_records
    from sentiment_ray.data.records import invalid_unicode_problem

    if not Path(path).is_file():
        raise DataError(f"--input {path}: no such file")
    with open(path, "rb") as stream:
        parsed = open_records(stream, path, options)
        records = list(parsed.records)
    columns = parsed.columns or list(dict.fromkeys(k for r in records if r.values for k in r.values))
    id_column = id_column or ("id" if "id" in columns else None)  # as `score` does
    for column, flag in ((text_column, "--text-column"), (id_column, "--id-column")):
        if column and records and column not in columns:
            raise DataError(f"{path}: no column {column!r} ({flag}); its columns: {', '.join(columns)}")
    rows = []
    for record in records:
        values = record.values or {}
        row = {"id": values.get(id_column) if id_column else record.number, "source_row": record.number}
        row["text"] = values.get(text_column)
        problem = record.problem or invalid_unicode_problem(record, [text_column], parsed.encoding)
        rows.append(row | ({"problem": problem, "text": None} if problem else {}))
    return rows


def _read_options(args):
    from sentiment_ray.data.formats import ReadOptions

    return ReadOptions(encoding=args.encoding, quoting=args.quoting, sheet=args.sheet)


def _chunks(rows: list[dict]) -> Iterator[list[dict]]:
    for start in range(0, len(rows), CHUNK_ROWS):
        yield rows[start : start + CHUNK_ROWS]


def _interactive(predictor, selective: dict) -> int:
    print("Type a review (quit/exit to stop).", flush=True)
    for line in sys.stdin:
        text = line.rstrip("\n")
        if text.strip().lower() in {"quit", "exit"}:
            break
        print(json.dumps(predictor.predict(text, **selective), ensure_ascii=False), flush=True)
    return 0
