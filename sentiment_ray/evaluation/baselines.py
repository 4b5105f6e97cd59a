"""Baselines to put the fine-tuned model's numbers in context, and the `baseline_comparison.json` builder.

`tfidf_baseline` is a classical model trained on the same split in seconds on a CPU: if the fine-tuned
model does not beat it, the fine-tuning bought nothing. Other baselines (e.g. zero-shot label scoring)
enter `baseline_comparison` as `{"description": ..., "metrics": class_metrics(...)}` dicts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from sentiment_ray.calibration import predicted_ids
from sentiment_ray.labels import LABEL_NAMES
from sentiment_ray.metrics import class_metrics

TFIDF_DESCRIPTION = (
    "TF-IDF over character 1-3-grams (sublinear tf, no word segmentation needed for Chinese) + "
    "L2-regularised logistic regression (C=1, liblinear; one-vs-rest for N > 2 classes), trained on the training split"
)
COMPARED_METRICS = ("accuracy", "precision", "recall", "f1", "macro_f1", "roc_auc")


def tfidf_baseline(
    train_texts: Sequence[str],
    train_labels: Sequence[int],
    test_texts: Sequence[str],
    test_labels: Sequence[int],
    seed: int = 0,
    names: Sequence[str] = LABEL_NAMES,
) -> dict:
    """Fit char n-gram TF-IDF + logistic regression on train; `class_metrics` of `names`' classes on test (two
    classes: P(class 1) per row too)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    classifier = LogisticRegression(C=1.0, solver="liblinear", max_iter=1000, random_state=seed)
    if len(names) > 2:  # liblinear fits two classes; N classes as N one-vs-rest fits (probabilities normalised)
        from sklearn.multiclass import OneVsRestClassifier

        classifier = OneVsRestClassifier(classifier)
    model = make_pipeline(TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True), classifier)
    start = time.perf_counter()
    model.fit(list(train_texts), [int(y) for y in train_labels])
    fit_seconds = time.perf_counter() - start
    # predict_proba's columns follow classes_ (the ids seen in training, sorted); a class absent there gets 0.
    probs = np.zeros((len(test_texts), len(names)))
    probs[:, model.classes_] = model.predict_proba(list(test_texts))
    result = {
        "name": "tfidf_char_1_3_logreg",
        "description": TFIDF_DESCRIPTION,
        "seed": seed,
        "n_train": len(train_texts),
        "n_features": len(model[0].vocabulary_),
        "fit_seconds": round(fit_seconds, 3),
        "metrics": class_metrics([int(y) for y in test_labels], probs, names, predicted=predicted_ids(probs)),
    }
    return {**result, "prob_positive": probs[:, 1].tolist()} if len(names) == 2 else result


def baseline_comparison(model_metrics: dict, baselines: dict[str, dict], model_name: str = "fine-tuned") -> dict:
    """The `baseline_comparison.json` dict: one row per system with COMPARED_METRICS, and each baseline's
    difference to the model (model minus baseline: positive = the model is better).

    `model_metrics` is a `class_metrics` dict; `baselines` maps a name to a dict with `metrics` and
    `description` (e.g. `tfidf_baseline`'s result; its per-row `prob_positive` is not copied).
    """
    rows = [{"name": model_name, "role": "model", **_pick(model_metrics)}]
    for name, result in baselines.items():
        picked = _pick(result["metrics"])
        delta = {
            f"{key}_model_minus_baseline": _diff(model_metrics.get(key), picked[key])
            for key in ("accuracy", "f1", "macro_f1")
        }
        extra = {k: result[k] for k in ("fit_seconds", "n_train") if k in result}
        rows.append(
            {"name": name, "role": "baseline", "description": result.get("description"), **picked, **extra, **delta}
        )
    return {"n_test": model_metrics.get("n"), "metrics_compared": list(COMPARED_METRICS), "rows": rows}


def _pick(metrics: dict) -> dict:
    return {key: metrics.get(key) for key in COMPARED_METRICS}


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b
