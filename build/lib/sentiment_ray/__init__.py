"""sentiment-ray: Qwen sentiment fine-tuning, scoring and serving on Ray.

Nothing heavy is imported here: `SentimentPredictor` is resolved lazily so that
`import sentiment_ray` stays cheap (no torch / transformers at import time).
"""

__all__ = ["SentimentPredictor"]


def __getattr__(name: str):
    if name == "SentimentPredictor":
        from sentiment_ray.inference.predictor import SentimentPredictor

        return SentimentPredictor
    raise AttributeError(f"module 'sentiment_ray' has no attribute {name!r}")
