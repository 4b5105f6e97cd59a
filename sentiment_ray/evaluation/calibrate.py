"""`sentiment-ray calibrate`: fit temperature scaling on labelled rows and store it in the model folder.

Which rows: a single file is used whole (it is the user's calibration set). A source that has splits (a folder of
train/validation/test, `offline`, a Hub dataset) gives its **validation** split, and so does a file that is the
model's own training source: the test split, which reports results, is never used for fitting.
"""

from __future__ import annotations

from sentiment_ray.data.formats import DEFAULT_READ, ReadOptions


def calibration_rows(model_meta: dict, data: str, text_column: str, label_column: str, read_options: ReadOptions):
    """(texts, labels, source description) of the rows to fit on (see the module docstring)."""
    from sentiment_ray.data import load_splits, read_reviews
    from sentiment_ray.location import Location
    from sentiment_ray.models.folder import labels_of

    config = model_meta.get("config", {})
    trained_on = config.get("data", {}).get("source")
    local = Location.of(data).local_copy()  # a URI: this node's cached copy; a local path: itself
    columns = {"text_column": text_column, "label_column": label_column, "labels": labels_of(model_meta)}
    if local.is_file() and str(data) != str(trained_on):
        rows = read_reviews(local, **columns, require_label=True, options=read_options)  # values read as its classes
        part = "whole file"
    else:
        seed = config.get("train", {}).get("seed", 42)  # the model's own split: its test rows stay unseen
        rows = load_splits(data, **columns, seed=seed, read_options=read_options).validation
        part = "validation split"
    usable = rows[rows["problem"].isna()] if "problem" in rows else rows
    source = {"data": str(data), "part": part, "unusable_rows": int(len(rows) - len(usable))}
    return usable["text"].tolist(), [int(v) for v in usable["label"]], source


def calibrate_folder(
    model_path: str,
    data: str,
    *,
    text_column: str = "text",
    label_column: str = "label",
    read_options: ReadOptions = DEFAULT_READ,
    device: str = "auto",
    name: str | None = None,
) -> dict:
    """Fit on `data`, write the calibration into the folder's meta (`name`: beside the folder's own, under that
    name; None: replacing the folder's own), and return it."""
    from sentiment_ray.calibration import fit_calibration
    from sentiment_ray.inference.predictor import SentimentPredictor
    from sentiment_ray.models.folder import write_calibration
    from sentiment_ray.runtime import check_local_output

    check_local_output(model_path, "--model-path")  # the folder's meta is rewritten in place
    check_name(name)
    predictor = SentimentPredictor.from_pretrained(model_path, device=device, calibrated=False)
    texts, labels, source = calibration_rows(predictor.meta, data, text_column, label_column, read_options)
    predictions = predictor.predict_batch(texts)
    # binary: P(class 1), as calibration always read it; N classes: the [N] probabilities in class order
    rows = zip(labels, predictions, predictions.token_lengths, strict=True)
    scored = [(y, _probs(p), n) for y, p, n in rows if p["error"] is None]
    calibration = fit_calibration([y for y, _, _ in scored], [p for _, p, _ in scored], source, [n for *_, n in scored])
    write_calibration(model_path, calibration, name)
    return calibration


def check_name(name: str | None) -> None:
    """A calibration name: letters, digits, `_`, `-`, `.`, at most 64; not `default` (the folder's own)."""
    import re

    from sentiment_ray.calibration import DEFAULT_NAME
    from sentiment_ray.errors import ConfigError

    if name is None:
        return
    if name == DEFAULT_NAME or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        raise ConfigError(
            f"--as {name!r}: a calibration name is 1-64 letters, digits, '_', '-' or '.', and not {DEFAULT_NAME!r} "
            "(leave --as out to replace the folder's own calibration)"
        )


def _probs(prediction: dict):
    probs = list(prediction["probs"].values())
    return probs[1] if len(probs) == 2 else probs
