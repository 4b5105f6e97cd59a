"""Label normalisation: every accepted spelling of a sentiment label becomes 0 (negative) or 1 (positive)."""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd

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
