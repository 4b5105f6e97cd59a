"""The typed configs (`schema.py`) and how they are read from YAML and the command line (`files.py`).

Everything is re-exported here: `from sentiment_ray.config import RunConfig, load_config` is the public path.
"""

from sentiment_ray.config.files import (
    PRESETS_DIR,
    build_dataclass,
    canonical_key,
    config_names,
    load_config,
    preset_names,
    read_config_files,
    read_yaml_mapping,
    resolve_config_path,
    save_config,
)
from sentiment_ray.config.schema import (
    DEFAULT_TEMPLATE,
    FINETUNE_MODES,
    PLACEMENT_STRATEGIES,
    PRECISIONS,
    QUOTING_CHOICES,
    REPORT_TARGETS,
    STRATEGIES,
    DataConfig,
    LabelClass,
    LoraConfig,
    ModelConfig,
    PromptConfig,
    RunConfig,
    ScalingConfig,
    TrainConfig,
    check_choice,
)

__all__ = [
    "DEFAULT_TEMPLATE", "FINETUNE_MODES", "PLACEMENT_STRATEGIES", "PRECISIONS", "PRESETS_DIR", "QUOTING_CHOICES",
    "REPORT_TARGETS", "STRATEGIES", "DataConfig", "LabelClass", "LoraConfig", "ModelConfig", "PromptConfig",
    "RunConfig", "ScalingConfig", "TrainConfig", "build_dataclass", "canonical_key", "check_choice", "config_names",
    "load_config", "preset_names", "read_config_files", "read_yaml_mapping", "resolve_config_path", "save_config",
]  # fmt: skip
