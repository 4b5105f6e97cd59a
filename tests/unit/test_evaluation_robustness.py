"""Robustness bookkeeping with a deterministic keyword rule as the predictor (its flips are predictable)."""

from __future__ import annotations

import json

import pytest

from sentiment_ray.evaluation.perturb import PERTURBATIONS, perturb_all
from sentiment_ray.evaluation.robustness import robustness_result, score_variants

POSITIVE_WORDS = ("好", "喜欢")  # 好 is the same in traditional script; 喜欢 becomes 喜歡


def keyword_rule(texts: list) -> list[dict]:
    """Prediction dicts: positive iff a positive keyword occurs; empty / non-str texts get an error."""
    rows = []
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            rows.append({"label_id": None, "prob_positive": None, "error": "text is empty"})
            continue
        positive = any(word in text for word in POSITIVE_WORDS)
        rows.append({"label_id": int(positive), "prob_positive": 0.9 if positive else 0.1, "error": None})
    return rows


TEXTS = [
    "东西很好",  # positive via 好 (survives traditional)
    "孩子喜欢这本书",  # positive via 喜欢 only → flips under traditional
    "我们都喜欢",  # positive via 喜欢 only → flips under traditional
    "质量太差了",  # negative
    "物流慢，不满意",  # negative
    "",  # error row
]
LABELS = [1, 1, 1, 0, 0, 1]


def test_flip_rates_match_the_rule():
    result = robustness_result(keyword_rule, TEXTS, LABELS, seed=0, perturbations=["traditional", "width"])
    assert result["n"] == 6 and result["n_clean_errors"] == 1
    assert result["clean_accuracy"] == 1.0  # the 5 scored rows are all right
    trad, width = result["perturbations"]["traditional"], result["perturbations"]["width"]
    assert trad["n_evaluated"] == 5 and trad["n_excluded_errors"] == 1
    assert trad["flip_rate"] == pytest.approx(2 / 5)
    assert trad["accuracy"] == pytest.approx(3 / 5)
    assert trad["accuracy_drop"] == pytest.approx(2 / 5)
    assert trad["changed_text_share"] == pytest.approx(5 / 6)  # all but the empty row have a simplified char
    assert trad["flip_rate_on_changed"] == pytest.approx(2 / 5)
    assert [e["original"] for e in trad["examples"][:2]] == ["孩子喜欢这本书", "我们都喜欢"]
    assert all(e["flipped"] for e in trad["examples"][:2]) and not trad["examples"][2]["flipped"]
    # Width only touches the full-width comma, which the rule ignores.
    assert width["flip_rate"] == 0.0 and width["accuracy_drop"] == 0.0
    assert width["changed_text_share"] == pytest.approx(1 / 6)
    assert result["robustness_score"] == pytest.approx(((1 - 2 / 5) + 1.0) / 2)
    json.dumps(result, ensure_ascii=False)


def test_all_perturbations_agree_with_applying_the_rule_directly():
    result = robustness_result(keyword_rule, TEXTS, LABELS, seed=5)
    assert set(result["perturbations"]) == set(PERTURBATIONS)
    clean = keyword_rule(TEXTS)
    for name, stats in result["perturbations"].items():
        perturbed = keyword_rule(perturb_all(TEXTS, name, 5))
        valid = [i for i in range(len(TEXTS)) if clean[i]["error"] is None and perturbed[i]["error"] is None]
        flips = sum(clean[i]["label_id"] != perturbed[i]["label_id"] for i in valid)
        assert stats["n_flipped"] == flips and stats["flip_rate"] == pytest.approx(flips / len(valid)), name


def test_errors_only_after_perturbation_are_excluded_and_counted():
    def fails_on_traditional(texts):
        rows = keyword_rule(texts)
        return [
            {"label_id": None, "prob_positive": None, "error": "no"} if "東" in t else r
            for t, r in zip(texts, rows, strict=True)
        ]

    stats = robustness_result(fails_on_traditional, TEXTS, LABELS, perturbations=["traditional"])["perturbations"]
    trad = stats["traditional"]
    assert trad["n_perturbed_errors"] == 2  # 東西很好 and the empty row
    assert trad["n_evaluated"] == 4 and trad["n_excluded_errors"] == 2


def test_wrong_prediction_count_and_unknown_name_raise():
    with pytest.raises(ValueError):
        robustness_result(lambda texts: keyword_rule(texts)[:-1], TEXTS, LABELS)
    with pytest.raises(KeyError):
        robustness_result(keyword_rule, TEXTS, LABELS, perturbations=["nope"])


def test_all_rows_erroring_gives_null_score():
    result = robustness_result(keyword_rule, ["", " "], [0, 1], perturbations=["typo"])
    assert result["clean_accuracy"] is None
    assert result["perturbations"]["typo"]["flip_rate"] is None
    assert result["robustness_score"] is None


def test_every_variant_is_scored_in_one_call_and_each_row_gets_its_own_prediction():
    calls = []

    def recording_rule(texts: list) -> list[dict]:
        calls.append(list(texts))
        return keyword_rule(texts)

    names = ["traditional", "width"]
    clean = keyword_rule(TEXTS)
    with_clean = robustness_result(recording_rule, TEXTS, LABELS, perturbations=names, clean_predictions=clean)
    without_clean = robustness_result(recording_rule, TEXTS, LABELS, perturbations=names)

    variants = [t for name in names for t in perturb_all(TEXTS, name, 0)]
    assert calls == [variants, TEXTS + variants]  # one pass each: a Ray Data caller loads its model once
    assert with_clean == without_clean == robustness_result(keyword_rule, TEXTS, LABELS, perturbations=names)
    scored = score_variants(recording_rule, TEXTS, perturbations=names)  # what `evaluate` scores in its one job
    assert scored.clean == clean and scored.texts["width"] == perturb_all(TEXTS, "width", 0)
    assert robustness_result(None, TEXTS, LABELS, perturbations=names, scored=scored) == with_clean
    examples = with_clean["perturbations"]["traditional"]["examples"]
    assert all(e["perturbed_pred"] == keyword_rule([e["perturbed"]])[0]["label_id"] for e in examples)
