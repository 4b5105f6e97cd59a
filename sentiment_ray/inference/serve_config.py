"""The typed config of `sentiment-ray serve` and of `serve run jobs/configs/serve.yaml`: one place for every default.

`ServeConfig` is what Ray Serve's app builder receives (`app_builder(args: ServeConfig)`: Serve validates the
YAML's `args` against it), what `sentiment-ray serve --config` reads, and what its flags override. Unknown keys
are refused with the key named and the closest known one suggested.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator

from sentiment_ray.config import read_yaml_mapping
from sentiment_ray.errors import ConfigError, unknown_key
from sentiment_ray.inference.http_api import Limits

DEFAULT_MODEL = "default"
APP_IMPORT_PATH = "sentiment_ray.inference.serve:app_builder"


class ServeConfig(Limits):
    """Everything a served application needs; the request limits (`Limits`) are fields of it too."""

    # `model_path` is our field, not pydantic's; the docstrings under the fields are their descriptions (flag help)
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), use_attribute_docstrings=True)

    model_path: str
    """The default model folder (model id `default`); on a cluster, a path every node can read."""
    models: dict[str, str] = Field(default_factory=dict)
    """More model folders by id, chosen per request with `serve_multiplexed_model_id` or the body's `model`."""
    host: str = "127.0.0.1"
    """Bind address of `sentiment-ray serve` (this machine only by default); `serve run` takes http_options."""
    port: int = 8000
    """HTTP port of `sentiment-ray serve`."""
    replicas: int = Field(default=1, ge=1)
    """Serve replicas (each a model copy; each batches its own requests)."""
    max_batch_size: int = Field(default=32, ge=1)
    """Texts per dynamic batch (`@serve.batch`)."""
    batch_wait_timeout_s: float = Field(default=0.01, ge=0)
    """How long a batch waits to fill."""
    max_models_per_replica: int = Field(default=4, ge=1)
    """LRU bound of loaded models per replica (`@serve.multiplexed`)."""
    cpus_per_replica: float = Field(default=1.0, gt=0)
    """CPUs reserved per replica; also its torch threads."""
    gpus_per_replica: float = Field(default=0.0, ge=0)
    """GPUs per replica (1 with device cuda places replicas on GPU nodes)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where replicas run their predictor (auto: CUDA when the replica has a GPU)."""
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """Weights and compute dtype (auto: bf16 on GPUs that support it and on CPUs with AVX512-BF16 or AMX)."""
    target_accuracy: float | None = Field(default=None, gt=0.5, le=1.0)
    """Default of a request's `target_accuracy` (selective prediction); None: no abstention unless asked."""
    min_confidence: float | None = Field(default=None, ge=0.5, le=1.0)
    """Default of a request's `min_confidence`, used when neither the request nor target_accuracy sets one."""
    shift_window: int = Field(default=1000, ge=0)
    """Rows per shift-check window of each replica and model (0: no check); /stats counts shifted windows."""

    @model_validator(mode="before")
    @classmethod
    def refuse_unknown_keys(cls, values):
        if isinstance(values, dict):
            unknown = [key for key in values if key not in cls.model_fields]
            if unknown:
                raise ValueError("; ".join(_unknown_key_message(key) for key in unknown))
        return values

    def limits(self) -> Limits:
        return Limits(**{name: getattr(self, name) for name in Limits.model_fields})

    def all_models(self) -> dict[str, str]:
        return {DEFAULT_MODEL: self.model_path, **self.models}


def _unknown_key_message(key: str) -> str:
    return unknown_key(key, ServeConfig.model_fields)


def serve_config(values: dict, where: str) -> ServeConfig:
    """A ServeConfig from `values`, or ConfigError naming `where` and every wrong key or value."""
    try:
        return ServeConfig.model_validate(values)
    except ValidationError as err:
        problems = "; ".join(_problem(e) for e in err.errors())
        raise ConfigError(f"{where}: {problems}") from None


def _problem(error: dict) -> str:
    field = ".".join(str(part) for part in error.get("loc", ()))
    message = error.get("msg", "").removeprefix("Value error, ")
    return f"{field}: {message}" if field else message


def load_serve_yaml(path: str | Path) -> dict:
    """The ServeConfig values in a YAML file: a plain mapping, or a Ray Serve config file (`serve run`'s format),
    whose sentiment application's `args` are taken, with `http_options` host and port."""
    values = read_yaml_mapping(path)
    if "applications" not in values:
        return values
    apps = [a for a in values["applications"] or [] if a.get("import_path") == APP_IMPORT_PATH]
    if len(apps) != 1:
        raise ConfigError(f"{path}: a Serve config file must hold one application with import_path {APP_IMPORT_PATH}")
    http = values.get("http_options") or {}
    return {**{k: http[k] for k in ("host", "port") if k in http}, **(apps[0].get("args") or {})}
