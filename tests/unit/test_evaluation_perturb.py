"""Seeded Chinese text perturbations: determinism, order independence, and that each changes what it should."""

from __future__ import annotations

import random

import pytest

from sentiment_ray.evaluation.perturb import PERTURBATIONS, SYNONYM_PAIRS, SYNONYMS, perturb_all

REVIEWS = [
    "东西很好，快递很快！",
    "酒店房间很干净，早餐也不错。",
    "质量真的不行，但是价格便宜。",
    "收到货了，觉得还可以，朋友也想买。",
    "屏幕很清楚，电脑运行速度快。",
    "服务员态度特别差，以后不会再来了！",
    "这本书作者写得很用心，孩子很喜欢。",
    "物流太慢了，等了三天才发货。",
]
RANDOM_PERTURBATIONS = ("synonym", "typo", "punctuation")


def test_registry_has_the_five_perturbations():
    assert set(PERTURBATIONS) == {"synonym", "typo", "punctuation", "traditional", "width"}


@pytest.mark.parametrize("name", sorted(PERTURBATIONS))
def test_same_seed_same_output_and_empty_and_none_safe(name):
    texts = [*REVIEWS, "", None]
    first = perturb_all(texts, name, seed=3)
    assert first == perturb_all(texts, name, seed=3)
    assert first[-2] == "" and first[-1] is None
    assert PERTURBATIONS[name]("", random.Random(0)) == ""


@pytest.mark.parametrize("name", RANDOM_PERTURBATIONS)
def test_different_seeds_differ_for_some_texts(name):
    a, b = perturb_all(REVIEWS, name, seed=0), perturb_all(REVIEWS, name, seed=1)
    assert any(x != y for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("name", RANDOM_PERTURBATIONS)
def test_rows_do_not_depend_on_batching_or_neighbours(name):
    whole = perturb_all(REVIEWS, name, seed=7)
    chunked = perturb_all(REVIEWS[:3], name, seed=7) + perturb_all(REVIEWS[3:], name, seed=7, start_index=3)
    assert chunked == whole
    other_first_row = perturb_all(["完全不同的第一行", *REVIEWS[1:]], name, seed=7)
    assert other_first_row[1:] == whole[1:]


@pytest.mark.parametrize("name", ["synonym", "typo", "punctuation", "traditional"])
def test_changes_most_reviews(name):
    # Every review has a table word, characters, punctuation and a simplified-only character.
    for seed in range(5):
        out = perturb_all(REVIEWS, name, seed)
        changed = sum(a != b for a, b in zip(REVIEWS, out, strict=True))
        assert changed == len(REVIEWS), (name, seed, out)


def test_traditional_and_width_examples():
    assert PERTURBATIONS["traditional"]("东西很好", random.Random(0)) == "東西很好"
    width = PERTURBATIONS["width"]
    assert width("ABC123", random.Random(0)) == "ＡＢＣ１２３"
    assert width("ＡＢＣ１２３", random.Random(0)) == "ABC123"
    assert width("价格a 9", random.Random(0)) == "价格ａ\u3000９"
    assert width("很好。", random.Random(0)) == "很好。"  # nothing to flip


def test_synonym_table_is_consistent_and_used():
    words = [w for pair in SYNONYM_PAIRS for w in pair]
    assert len(words) == len(set(words)), "a word appears in two pairs"
    assert len(SYNONYM_PAIRS) >= 40
    assert SYNONYMS["东西"] == "物品" and SYNONYMS["物品"] == "东西"
    out = PERTURBATIONS["synonym"]("东西", random.Random(0))
    assert out == "物品"
    assert PERTURBATIONS["synonym"]("差", random.Random(0)) == "差"  # nothing in the table


def test_synonym_prefers_longest_match():
    # 服务员 must be swapped as a whole (→ 服务生), never partially; 手提电脑 → 笔记本 not 手提计算机.
    for seed in range(10):
        out = PERTURBATIONS["synonym"]("服务员", random.Random(seed))
        assert out == "服务生"
        assert PERTURBATIONS["synonym"]("手提电脑", random.Random(seed)) == "笔记本"


def test_typo_changes_every_nonempty_text_and_keeps_it_nonempty():
    for seed in range(30):
        for text in ["好", "好好", "这个东西真的很好用，推荐购买"]:
            out = PERTURBATIONS["typo"](text, random.Random(seed))
            assert out and out != text


def test_punctuation_flips_or_changes_ending_but_keeps_decimals():
    for seed in range(30):
        out = PERTURBATIONS["punctuation"]("价格3.5元，不错。", random.Random(seed))
        assert out != "价格3.5元，不错。" and "3.5" in out
        assert PERTURBATIONS["punctuation"]("好", random.Random(seed)) in {"好！", "好。"}


def test_unknown_name_raises():
    with pytest.raises(KeyError):
        perturb_all(REVIEWS, "nope", 0)
