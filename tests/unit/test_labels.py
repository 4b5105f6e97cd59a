"""parse_label: every accepted spelling, missing values, and refusals with a helpful message."""

import math

import numpy as np
import pandas as pd
import pytest

from sentiment_ray.labels import LABEL_NAMES, parse_label


def test_label_names_order_matches_ids():
    assert LABEL_NAMES == ("negative", "positive")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (1, 1),
        (np.int64(1), 1),
        (0.0, 0),
        (1.0, 1),
        (np.float32(1.0), 1),
        ("0", 0),
        ("1", 1),
        (" 1 ", 1),
        ("negative", 0),
        ("positive", 1),
        ("Positive", 1),
        ("NEGATIVE", 0),
        ("neg", 0),
        ("pos", 1),
        ("  Pos\t", 1),
        ("NEG", 0),
        ("负面", 0),
        ("正面", 1),
        (" 正面 ", 1),
        ("消极", 0),
        ("积极", 1),
    ],
)
def test_accepted_spellings(value, expected):
    result = parse_label(value)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize("value", [None, math.nan, np.nan, pd.NA, "", "   "])
def test_missing_values_are_none(value):
    assert parse_label(value) is None


@pytest.mark.parametrize(
    "value", [True, False, np.True_, 2, -1, 0.5, 2.0, "2", "xyz", "pos itive", "中性", [1], {"a": 1}]
)
def test_other_values_are_refused(value):
    with pytest.raises(ValueError) as info:
        parse_label(value)
    message = str(info.value)
    assert repr(value) in message
    for spelling in ("positive", "negative", "pos", "neg", "正面", "负面", "积极", "消极", "'0'/'1'"):
        assert spelling in message
