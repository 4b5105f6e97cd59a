"""Classification metrics for any N classes, computed once here for training, evaluation, tuning and benchmarks.

Two classes keep the binary keys they always had (`precision`, `recall`, `f1` of class 1, `roc_auc` of P(class 1));
every N adds macro / micro / weighted F1, per-class precision, recall and F1, the N×N confusion matrix and the
one-vs-rest macro ROC-AUC.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sentiment_ray.labels import LABEL_NAMES


def softmax(scores) -> np.ndarray:
    """[n, N] scores → [n, N] probabilities, computed stably in float64."""
    scores = np.asarray(scores, dtype=np.float64)
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def softmax2(scores: np.ndarray) -> np.ndarray:
    """[n, 2] scores → P(class 1) per row, computed stably in float64."""
    scores = np.asarray(scores, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(scores[:, 0] - scores[:, 1]))


def binary_metrics(labels, prob_positive, threshold: float = 0.5) -> dict:
    """`class_metrics` of binary sentiment from P(positive), a row predicted positive when P >= `threshold`."""
    p = np.asarray(prob_positive, dtype=np.float64)
    return class_metrics(labels, np.stack([1.0 - p, p], axis=1), LABEL_NAMES, predicted=(p >= threshold).astype(int))


def class_metrics(labels, probs, names: Sequence[str], predicted=None) -> dict:
    """Accuracy, P/R/F1 (per class; macro, micro, weighted), ROC-AUC and the confusion matrix (sklearn).

    `probs`: [n, N] class probabilities; `predicted`: the predicted ids (default: the most probable class)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    ids = list(range(len(names)))
    predicted = probs.argmax(axis=1) if predicted is None else np.asarray(predicted, dtype=np.int64)
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=ids, zero_division=0)
    result = {"n": int(labels.size), "accuracy": float(accuracy_score(labels, predicted))}
    if len(names) == 2:  # the binary keys: class 1 is the positive class
        result.update(precision=float(precision[1]), recall=float(recall[1]), f1=float(f1[1]))
    result.update(
        macro_precision=float(precision.mean()),
        macro_recall=float(recall.mean()),
        macro_f1=float(f1.mean()),
        micro_f1=float(f1_score(labels, predicted, labels=ids, average="micro", zero_division=0)),
        weighted_f1=float(f1_score(labels, predicted, labels=ids, average="weighted", zero_division=0)),
        per_class={
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(names)
        },
        roc_auc=roc_auc(labels, probs),
        confusion_matrix=confusion_matrix(labels, predicted, labels=ids).tolist(),
        confusion_matrix_layout=f"rows = true [{', '.join(names)}], columns = predicted",
    )
    return result


def roc_auc(labels: np.ndarray, probs: np.ndarray) -> float | None:
    """Two classes: the ROC-AUC of P(class 1). N: the one-vs-rest macro average over the classes present (each
    against the rest), None when fewer than two classes are present."""
    from sklearn.metrics import roc_auc_score

    present = np.unique(labels)
    if len(present) < 2:
        return None
    if probs.shape[1] == 2:
        return float(roc_auc_score(labels, probs[:, 1]))
    return float(np.mean([roc_auc_score(labels == k, probs[:, k]) for k in present]))
