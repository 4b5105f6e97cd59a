"""Robustness of a predictor to seeded text perturbations (`perturb.PERTURBATIONS`).

The predictor is any `predict_fn(list[str]) -> list[dict]` returning Prediction dicts (docs/contracts.md:
`label_id`, `prob_positive`, `error`, one per input, in order): `SentimentPredictor.predict_batch`, a Ray
Data pipeline collected to a list, or a plain rule in tests. It is called once, on the clean texts (unless the
caller passes their predictions) followed by every perturbed variant: a batch-scoring caller pays one job and one
model load for the whole analysis, not one per perturbation.

Rows whose clean or perturbed prediction has an `error` are excluded from that perturbation's statistics
and counted; rows whose label is None count for flip rate but not accuracy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from sentiment_ray.evaluation.perturb import PERTURBATIONS, perturb_all

PredictFn = Callable[[list], list[dict]]

ROBUSTNESS_SCORE_DEFINITION = (
    "mean over perturbations of (1 - flip_rate), where flip_rate is the share of rows (scored without error "
    "both clean and perturbed) whose predicted label differs from the clean prediction; 1.0 = no flips"
)
ACCURACY_DROP_DEFINITION = (
    "clean accuracy minus perturbed accuracy, both on the same rows (labelled, no error clean or perturbed)"
)


class ScoredVariants(NamedTuple):
    """The clean texts' predictions and every perturbed variant with its predictions, in input order."""

    clean: list[dict]
    texts: dict[str, list]
    predictions: dict[str, list[dict]]


def score_variants(
    predict_fn: PredictFn,
    texts: Sequence,
    *,
    seed: int = 0,
    perturbations: Sequence[str] | None = None,
    clean_predictions: Sequence[dict] | None = None,
) -> ScoredVariants:
    """Perturb `texts` and score them with the clean texts (unless `clean_predictions` is given) in one call."""
    texts = list(texts)
    names = list(PERTURBATIONS) if perturbations is None else list(perturbations)
    unknown = [n for n in names if n not in PERTURBATIONS]
    if unknown:
        raise KeyError(f"unknown perturbations {unknown}; known: {', '.join(PERTURBATIONS)}")
    variants = {name: perturb_all(texts, name, seed) for name in names}
    batch = ([] if clean_predictions is not None else texts) + [t for variant in variants.values() for t in variant]
    rows = list(predict_fn(batch))
    if len(rows) != len(batch):
        raise ValueError(f"predict_fn returned {len(rows)} predictions for {len(batch)} texts")
    clean = list(clean_predictions) if clean_predictions is not None else rows[: len(texts)]
    start, predictions = (0 if clean_predictions is not None else len(texts)), {}
    for name in variants:  # the batch holds the variants in this order, each len(texts) long
        predictions[name], start = rows[start : start + len(texts)], start + len(texts)
    return ScoredVariants(clean, variants, predictions)


def robustness_result(
    predict_fn: PredictFn,
    texts: Sequence,
    labels: Sequence,
    *,
    seed: int = 0,
    perturbations: Sequence[str] | None = None,
    n_examples: int = 5,
    clean_predictions: Sequence[dict] | None = None,
    scored: ScoredVariants | None = None,
) -> dict:
    """The `robustness_result.json` dict: clean accuracy, per-perturbation statistics, robustness score.

    `clean_predictions` (predictions of the unperturbed texts, if the caller already has them) or `scored` (from
    `score_variants` with the same texts, seed and perturbations) saves scoring them again.
    """
    texts, labels = list(texts), list(labels)
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
    if scored is None:
        opts = {"seed": seed, "perturbations": perturbations, "clean_predictions": clean_predictions}
        scored = score_variants(predict_fn, texts, **opts)
    clean = scored.clean
    clean_ok = [i for i, row in enumerate(clean) if row.get("error") is None]
    per = {
        name: _one_perturbation(texts, variant, scored.predictions[name], labels, clean, n_examples)
        for name, variant in scored.texts.items()
    }
    flip_rates = [r["flip_rate"] for r in per.values() if r["flip_rate"] is not None]
    return {
        "seed": seed,
        "n": len(texts),
        "n_clean_errors": len(texts) - len(clean_ok),
        "clean_accuracy": _accuracy(clean, labels, clean_ok),
        "perturbations": per,
        "robustness_score": sum(1.0 - f for f in flip_rates) / len(flip_rates) if flip_rates else None,
        "robustness_score_definition": ROBUSTNESS_SCORE_DEFINITION,
        "accuracy_drop_definition": ACCURACY_DROP_DEFINITION,
    }


def _accuracy(preds: list[dict], labels: list, rows: list[int]) -> float | None:
    """Accuracy over `rows` that have a label; None when there are none."""
    labelled = [i for i in rows if labels[i] is not None]
    if not labelled:
        return None
    return sum(int(preds[i]["label_id"] == int(labels[i])) for i in labelled) / len(labelled)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _one_perturbation(
    texts: list, perturbed_texts: list, perturbed: list[dict], labels: list, clean: list[dict], n_examples: int
) -> dict:
    changed = [a != b for a, b in zip(texts, perturbed_texts, strict=True)]
    # Rows both scored without error: the only rows where a flip or an accuracy change means anything.
    valid = [i for i in range(len(texts)) if clean[i].get("error") is None and perturbed[i].get("error") is None]
    flipped = [i for i in valid if clean[i]["label_id"] != perturbed[i]["label_id"]]
    valid_changed = [i for i in valid if changed[i]]
    clean_acc, perturbed_acc = _accuracy(clean, labels, valid), _accuracy(perturbed, labels, valid)
    return {
        "n_evaluated": len(valid),
        "n_excluded_errors": len(texts) - len(valid),
        "n_perturbed_errors": sum(1 for row in perturbed if row.get("error") is not None),
        "changed_text_share": _share(sum(changed), len(texts)),
        "accuracy": perturbed_acc,
        "clean_accuracy_same_rows": clean_acc,
        "accuracy_drop": clean_acc - perturbed_acc if clean_acc is not None else None,
        "n_flipped": len(flipped),
        "flip_rate": _share(len(flipped), len(valid)),
        # Flips among rows whose text actually changed: unchanged rows can only flip if the predictor is
        # non-deterministic, so this isolates the perturbation's effect from its coverage.
        "flip_rate_on_changed": _share(len(set(flipped) & set(valid_changed)), len(valid_changed)),
        "examples": _examples(texts, perturbed_texts, labels, clean, perturbed, flipped, valid_changed, n_examples),
    }


def _examples(texts, perturbed_texts, labels, clean, perturbed, flipped, valid_changed, n_examples) -> list[dict]:
    """Up to `n_examples` rows, flipped ones first, then other rows whose text changed (input order)."""
    flipped_set = set(flipped)
    chosen = (flipped + [i for i in valid_changed if i not in flipped_set])[: max(n_examples, 0)]
    return [
        {
            "index": i,
            "original": texts[i],
            "perturbed": perturbed_texts[i],
            "label": None if labels[i] is None else int(labels[i]),
            "clean_pred": clean[i]["label_id"],
            "perturbed_pred": perturbed[i]["label_id"],
            "clean_prob_positive": clean[i].get("prob_positive"),
            "perturbed_prob_positive": perturbed[i].get("prob_positive"),
            "flipped": i in flipped_set,
        }
        for i in chosen
    ]
