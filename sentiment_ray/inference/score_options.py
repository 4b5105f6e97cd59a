"""The options of the score job (`sentiment-ray score`, `jobs/configs/score.yaml`): each default defined here once."""

from __future__ import annotations

from dataclasses import dataclass, field

from sentiment_ray.data.formats import DEFAULT_READ, ReadOptions

FORMATS = ("parquet", "csv", "jsonl")
"""Output formats."""


@dataclass
class ScoreOptions:
    model_path: str
    inputs: list[str]
    output: str
    text_column: str = "text"
    id_column: str | None = None
    read_options: ReadOptions = DEFAULT_READ
    """Encoding, quoting and sheet of the input files."""
    output_format: str = "parquet"
    keep_columns: list[str] | None = None
    """Original columns to keep in the output (None: all of them)."""
    num_actors: int = 1
    batch_size: int = 512
    """Rows per Ray Data batch (one predictor call); the predictor sorts them by length into forwards."""
    batch_tokens: int | None = None
    """Padded tokens per forward (None: the predictor's per-device default)."""
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    device: str = "auto"
    precision: str = "auto"
    overwrite: bool = False
    target_accuracy: float | None = None
    """Selective prediction: rows below the calibrated threshold for this accuracy get `abstained` true."""
    min_confidence: float | None = None
    """Selective prediction with a fixed confidence threshold instead of a target accuracy."""
    extra_meta: dict = field(default_factory=dict)
