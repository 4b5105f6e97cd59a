"""The options of the score job (`sentiment-ray score`, `jobs/configs/score.yaml`): each default defined here once.

The CLI's flags are generated from these fields (`sentiment_ray/cli/option_flags.py`): the docstring under a field
is its flag's help.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sentiment_ray.config import PRECISIONS
from sentiment_ray.data.formats import DEFAULT_READ, ReadOptions
from sentiment_ray.inference import DEFAULT_BATCH_TOKENS

FORMATS = ("parquet", "csv", "jsonl")
"""Output formats."""


@dataclass
class ScoreOptions:
    model_path: str
    """A model folder (<run>/model), local or a URI (s3://…)."""
    inputs: list[str] = field(metadata={"flag": "--input", "metavar": "FILE|DIR|GLOB"})
    """Review files to score: a file, a folder or a glob, local or a URI; repeat the flag for more."""
    output: str
    """Output folder (Ray Data writes one file per block); its log goes to <output>.log beside it."""
    text_column: str = "text"
    """Column holding the review text."""
    id_column: str | None = None
    """Column holding record ids; none: a column named `id`, else the record's position in its file."""
    read_options: ReadOptions = field(default=DEFAULT_READ, metadata={"flag": None})
    """Encoding, quoting and sheet of the input files."""
    output_format: str = field(default="parquet", metadata={"flag": "--format", "choices": FORMATS})
    """Output file format."""
    keep_columns: list[str] | None = field(default=None, metadata={"flag": "--columns", "separator": ","})
    """Original columns to keep in the output, comma-separated; none: all of them."""
    num_actors: int | None = None
    """Predictor actors (model copies); none: sized to the CPUs (or GPUs) Ray offers (docs/guide/scoring.md)."""
    batch_size: int = 512
    """Rows per Ray Data batch (one predictor call); the predictor sorts them by length into forwards."""
    batch_tokens: int | None = field(default=None, metadata={"shown_default": DEFAULT_BATCH_TOKENS})
    """Padded tokens per forward; none: the predictor's default for its device."""
    cpus_per_actor: float | None = None
    """CPUs each actor reserves, also its torch threads; none: sized with num_actors."""
    gpus_per_actor: float | None = None
    """GPUs each actor reserves; none: 1 on a cluster with GPUs (or with device cuda), else 0."""
    device: str = "auto"
    """auto | cpu | cuda: where each actor runs its predictor."""
    precision: str = field(default="auto", metadata={"choices": PRECISIONS})
    """Weights and compute dtype (auto: bf16 on GPUs that support it and on CPUs with AVX512-BF16 or AMX, else fp32)."""
    overwrite: bool = False
    """Replace a finished output folder (an interrupted one is resumed without it)."""
    target_accuracy: float | None = None
    """Selective prediction: rows below the calibrated threshold for this accuracy get `abstained` true."""
    min_confidence: float | None = None
    """Selective prediction with a fixed confidence threshold instead of a target accuracy."""
    calibration: str | None = None
    """A calibration stored by `calibrate --as NAME` (its temperature and thresholds); none: the folder's own."""
    extra_meta: dict = field(default_factory=dict, metadata={"flag": None})
