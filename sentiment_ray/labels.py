"""Labels: today's binary sentiment spellings (0 negative, 1 positive) and label sets of any N classes."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from sentiment_ray.errors import ConfigError

LABEL_NAMES = ("negative", "positive")

# Keys are compared after strip() + lower(); lower() is a no-op for the Chinese spellings.
_SPELLINGS = {
    "0": 0,
    "1": 1,
    "negative": 0,
    "positive": 1,
    "neg": 0,
    "pos": 1,
    "负面": 0,
    "正面": 1,
    "消极": 0,
    "积极": 1,
}

ACCEPTED_SPELLINGS = "0/1, '0'/'1', negative/positive, neg/pos (any case), 负面/正面, 消极/积极"


def is_missing(value: object) -> bool:
    """None, NaN, pd.NA and NaT count as missing; pd.isna is only safe on scalars."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _unknown(value: object) -> ValueError:
    return ValueError(f"unknown label {value!r}; accepted spellings: {ACCEPTED_SPELLINGS}; missing values are allowed")


def parse_label(value: object) -> int | None:
    """Return 0 (negative), 1 (positive) or None (missing); raise ValueError for anything else.

    Bools are refused on purpose: a True/False column is more often a mis-chosen column (e.g. "is_verified")
    than a sentiment label, and silently reading it as 1/0 would train on noise.
    """
    if is_missing(value):
        return None
    if isinstance(value, (bool, np.bool_)):
        raise _unknown(value)
    if isinstance(value, numbers.Integral):
        if int(value) in (0, 1):
            return int(value)
        raise _unknown(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return None
        if number in (0.0, 1.0):
            return int(number)
        raise _unknown(value)
    if isinstance(value, str):
        key = value.strip().lower()
        if key == "":
            return None
        if key in _SPELLINGS:
            return _SPELLINGS[key]
    raise _unknown(value)


# --- Label sets: any N classes ---------------------------------------------------------------------------------

BINARY_WORDS = ("负面", "正面")
"""Label words of today's binary sentiment (`prompt.label_words`' default)."""


@dataclass(frozen=True)
class LabelSet:
    """The classes of a model, in id order: the name users see, the data values that mean each class, and the
    label word label scoring compares after the prompt.

    `binary sentiment` (names negative, positive) reads labels with `parse_label` (every accepted spelling,
    0/1 as numbers or text); any other set matches a value against a class's name and values after str() and
    strip(), exactly first and then ignoring case. Integers and integral floats match as their decimal digits
    (a label column with a gap reads as floats), so `values: ["1"]` matches 1, 1.0 and "1".
    """

    names: tuple[str, ...]
    words: tuple[str, ...]
    values: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self):
        if len(self.names) < 2:
            raise ConfigError(f"labels: a model needs at least 2 classes, got {list(self.names)}")
        if len(set(self.names)) != len(self.names):
            raise ConfigError(f"labels: class names must differ, got {list(self.names)}")
        if len(self.words) != len(self.names) or not all(w and w.strip() for w in self.words):
            raise ConfigError(f"labels: every class needs a non-empty label word, got {list(self.words)}")
        if len(set(self.words)) != len(self.words):
            raise ConfigError(
                f"labels: label words must differ (label scoring could not tell them apart): {self.words}"
            )
        _ = self._tables  # refuses a value claimed by two classes

    @property
    def binary_sentiment(self) -> bool:
        return self.names == LABEL_NAMES

    def __len__(self) -> int:
        return len(self.names)

    @cached_property
    def _tables(self) -> tuple[dict, dict]:
        """(exact key → id, casefolded key → id) of every name and value."""
        exact, folded = {}, {}
        for i, (name, values) in enumerate(zip(self.names, self.values or [()] * len(self.names), strict=True)):
            for value in (name, *values):
                for table, key in ((exact, value.strip()), (folded, value.strip().casefold())):
                    if table.get(key, i) != i:
                        raise ConfigError(
                            f"labels: the value {value!r} would mean both {self.names[table[key]]!r} and {name!r}"
                        )
                    table[key] = i
        return exact, folded

    def id_of(self, value: object) -> int | None:
        """The class id of a data value, None when missing; ValueError naming the classes when it names none."""
        if self.binary_sentiment:
            return parse_label(value)
        if is_missing(value):
            return None
        key = value_key(value)
        if key == "":
            return None
        exact, folded = self._tables
        found = exact.get(key, folded.get(key.casefold()))
        if found is None:
            raise ValueError(f"unknown label {value!r}; the classes are {', '.join(map(repr, self.names))}")
        return found

    def to_list(self) -> list[dict]:
        """The `labels` list of a run config and a model folder's meta (name, values, word per class)."""
        values = self.values or [()] * len(self.names)
        return [
            {"name": n, "values": list(v), "word": w} for n, v, w in zip(self.names, values, self.words, strict=True)
        ]

    @classmethod
    def from_list(cls, classes: list, where: str = "labels") -> LabelSet:
        """From a `labels` list of dicts (or objects with name / values / word). A word defaults to the class name
        (to 负面 / 正面 for the classes negative, positive)."""
        if not isinstance(classes, list):
            raise ConfigError(f"{where} must be a list of classes, got {type(classes).__name__}")
        rows = [c if isinstance(c, dict) else vars(c) for c in classes]
        for i, row in enumerate(rows):
            if not isinstance(row.get("name"), str) or not row["name"].strip():
                raise ConfigError(f"{where}[{i}].name must be a non-empty string, got {row.get('name')!r}")
        names = tuple(r["name"] for r in rows)
        default_words = BINARY_WORDS if names == LABEL_NAMES else names
        return cls(
            names=names,
            words=tuple(r.get("word") or default for r, default in zip(rows, default_words, strict=True)),
            values=tuple(tuple(str(v) for v in (r.get("values") or ())) for r in rows),
        )


def binary_sentiment(words: tuple[str, ...] | list[str] = BINARY_WORDS) -> LabelSet:
    """Today's classes: negative (id 0) and positive (id 1), read with every spelling `parse_label` accepts."""
    return LabelSet(names=LABEL_NAMES, words=tuple(words), values=(("0",), ("1",)))


def value_key(value: object) -> str:
    """A data value as the text a class's values are compared with (bools refused: see `parse_label`)."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"unknown label {value!r}: a true/false column is not a label column")
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def infer_label_set(values) -> LabelSet:
    """The classes of a training split's label values (missing ones ignored).

    Binary sentiment when at least half of them are its spellings (0/1, positive/negative, 正面/负面, …): the rest
    are unknown labels, counted, dropped and refused above max_invalid_fraction, as they always were. Otherwise one
    class per distinct value, integers in numeric order and names in sorted order, each class its own label word.
    A label column of 0/1/2 is therefore binary sentiment with unknown 2s: list three classes under `labels`.
    """
    present = [v for v in values if not is_missing(v) and not (isinstance(v, str) and not v.strip())]
    if not present:
        raise ValueError("the training split has no labels to infer the classes from")
    binary = sum(1 for v in present if _is_binary_spelling(v))
    if 2 * binary >= len(present):
        return binary_sentiment()
    keys = sorted({value_key(v) for v in present}, key=lambda k: (not _is_int(k), int(k) if _is_int(k) else 0, k))
    return LabelSet(names=tuple(keys), words=tuple(keys), values=tuple(() for _ in keys))


def _is_binary_spelling(value: object) -> bool:
    try:
        return parse_label(value) is not None
    except ValueError:
        return False


def _is_int(key: str) -> bool:
    return key.lstrip("-").isdigit()
