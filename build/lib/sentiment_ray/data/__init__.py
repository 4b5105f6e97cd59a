"""Data layer: read review files, load the offline corpus or a Hub dataset, and build train/validation/test splits.

Importing this package pulls in pandas and numpy only; `datasets` is imported when a Hub source is loaded.
"""

from sentiment_ray.data.readers import read_reviews
from sentiment_ray.data.sources import Splits, load_splits

__all__ = ["Splits", "load_splits", "read_reviews"]
