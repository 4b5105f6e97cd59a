"""Binary sentiment metrics, computed once here for training, evaluation and benchmarks alike."""

from __future__ import annotations

import numpy as np


def softmax2(scores: np.ndarray) -> np.ndarray:
    """[n, 2] scores → P(positive) per row, computed stably in float64."""
    scores = np.asarray(scores, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(scores[:, 0] - scores[:, 1]))


def binary_metrics(labels, prob_positive, threshold: float = 0.5) -> dict:
    """Accuracy, P/R/F1 (positive class, per class and macro), ROC-AUC and the confusion matrix (sklearn)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support, roc_auc_score

    labels = np.asarray(labels, dtype=np.int64)
    prob_positive = np.asarray(prob_positive, dtype=np.float64)
    predicted = (prob_positive >= threshold).astype(np.int64)
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=[0, 1], zero_division=0)
    both_classes = len(np.unique(labels)) == 2
    return {
        "n": int(labels.size),
        "accuracy": float(accuracy_score(labels, predicted)),
        "precision": float(precision[1]),
        "recall": float(recall[1]),
        "f1": float(f1[1]),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(("negative", "positive"))
        },
        "roc_auc": float(roc_auc_score(labels, prob_positive)) if both_classes else None,
        "confusion_matrix": confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
        "confusion_matrix_layout": "rows = true [negative, positive], columns = predicted",
    }
