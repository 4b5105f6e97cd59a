"""sentiment-ray: Qwen sentiment fine-tuning, scoring and serving on Ray.

The Python API (sentiment_ray/api.py): `train`, `score`, `evaluate` and `SentimentPredictor`. Each is resolved
lazily, so that `import sentiment_ray` stays cheap (no torch, transformers or Ray at import time).
"""

__all__ = ["SentimentPredictor", "evaluate", "score", "train"]


def __getattr__(name: str):
    if name == "SentimentPredictor":
        from sentiment_ray.inference.predictor import SentimentPredictor

        return SentimentPredictor
    if name in ("train", "score", "evaluate"):
        from sentiment_ray import api

        return getattr(api, name)
    raise AttributeError(f"module 'sentiment_ray' has no attribute {name!r}")
