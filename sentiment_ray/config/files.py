"""Configs from files and the command line: YAML (or a preset name), then named flags, then `--set` overrides.

Values are checked against the dataclasses' type hints (`build_dataclass`), naming the offending key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from sentiment_ray.config.schema import RunConfig, TrainConfig
from sentiment_ray.errors import ConfigError, closest

PRESETS_DIR = Path(__file__).resolve().parents[1] / "presets"
"""The YAML presets that ship with the package (a link to jobs/configs in the repository)."""


def build_dataclass(cls: type, values: dict[str, Any], where: str = ""):
    """Build `cls` from a (nested) dict, naming the offending key on unknown fields or wrong types."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'} must be a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    aliases = getattr(cls, "ALIASES", {})
    for key, value in values.items():
        if key in aliases:  # the Hugging Face name of one of our fields
            if aliases[key] in values:
                raise ConfigError(f"{where}.{key} and {where}.{aliases[key]} are the same setting; keep one")
            key = aliases[key]
        path = f"{where}.{key}" if where else key
        if key not in names:
            hint = closest(key, names)
            suggestion = f"; did you mean '{hint}'?" if hint else f"; known fields: {', '.join(names)}"
            raise ConfigError(f"unknown config field '{path}'{suggestion}")
        kwargs[key] = _coerce(hints[key], value, path)
    return cls(**kwargs)


def _coerce(hint, value, path: str):
    """Check/convert one YAML value against a field's type hint (int→float is allowed, nothing else silent)."""
    if dataclasses.is_dataclass(hint):
        return build_dataclass(hint, value, path)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for option in inner[:-1]:  # the first type the value fits, in the order the hint names them
            try:
                return _coerce(option, value, path)
            except ConfigError:
                continue
        return _coerce(inner[-1], value, path)
    if origin is list:
        if isinstance(value, str):  # CLI convenience: q_proj,v_proj
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"config field '{path}' must be a list, got {value!r}")
        return [_coerce(args[0], v, f"{path}[{i}]") for i, v in enumerate(value)]
    if hint in (int, float) and isinstance(value, str):
        value = _number_from_text(value, hint, path)  # YAML 1.1 reads 3e-4 as a string
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"config field '{path}' must be {hint.__name__}, got {value!r}")
    return value


def _number_from_text(text: str, hint: type, path: str):
    try:
        return hint(text)
    except ValueError:
        raise ConfigError(f"config field '{path}' must be {hint.__name__}, got {text!r}") from None


def load_config(
    path: str | Path | list | None = None,
    overrides: list[str] | None = None,
    updates: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
) -> RunConfig:
    """YAML file(s) (optional; a later file overlays an earlier one) or already-parsed `defaults` {"train.epochs": 3},
    then the named flags' typed `updates`, then `section.field=value` strings (`--set`, values parsed as YAML
    scalars) → a validated RunConfig.

    A `--set` that gives a field another value than a named flag is refused: which one was meant is unknown.
    """
    values = read_config_files(path)
    for key, value in (defaults or {}).items():
        _set_path(values, key.split("."), value)
    for key, value in (updates or {}).items():
        _set_path(values, key.split("."), value)
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like section.field=value, e.g. train.epochs=2")
        value = yaml.safe_load(raw) if raw.strip() else ""
        key = canonical_key(key.strip())
        if key in (updates or {}) and updates[key] != value:
            raise ConfigError(f"--set {item} contradicts the flag that sets {key} to {updates[key]!r}; keep one")
        _set_path(values, key.split("."), value)
    try:
        return build_dataclass(RunConfig, values)
    except ConfigError as err:
        raise ConfigError(f"{config_names(path)}: {err}") from None


def config_names(path: str | Path | list | None) -> str:
    """How error messages name the config: `a.yaml + overlay.yaml`, or `config` when there is no file."""
    paths = path if isinstance(path, list) else [path] if path is not None else []
    return " + ".join(str(p) for p in paths) or "config"


def read_config_files(path: str | Path | list | None) -> dict[str, Any]:
    """One YAML mapping, or several merged in order: a later file's sections overlay an earlier one's, key by key.

    So `--config jobs/configs/qwen2.5-1.5b-lora.yaml --config jobs/configs/cpu-real-shape.yaml` is the preset with
    the overlay's few fields replaced and every other field of each section kept.
    """
    values: dict[str, Any] = {}
    for one in path if isinstance(path, list) else [path] if path is not None else []:
        _merge(values, read_yaml_mapping(one))
    return values


def _merge(base: dict[str, Any], overlay: dict[str, Any]) -> None:
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def resolve_config_path(path: str | Path) -> Path:
    """A YAML path, or the name of a preset that ships with the package (`tiny`, `qwen2.5-1.5b-lora`, ...)."""
    path = Path(path)
    if path.is_file() or len(path.parts) > 1:
        return path
    preset = PRESETS_DIR / f"{path}.yaml"  # any characters: `qwen2.5-1.5b-lora` is a name, not a file `.5-lora`
    return preset if preset.is_file() else path


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML file or preset; ConfigError naming the file when it is missing, not YAML or no mapping."""
    path = resolve_config_path(path)
    if not path.is_file():
        presets = ", ".join(preset_names())
        raise ConfigError(f"config file not found: {path} (or a preset name: {presets})")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(loaded or {}, dict):
        raise ConfigError(f"{path}: holds a YAML {type(loaded).__name__}, not a mapping")
    return loaded or {}


def canonical_key(key: str) -> str:
    """`train.num_train_epochs` → `train.epochs`: a Hugging Face name given for one of our fields."""
    section, _, name = key.rpartition(".")
    return f"{section}.{TrainConfig.ALIASES[name]}" if section == "train" and name in TrainConfig.ALIASES else key


def _set_path(values: dict[str, Any], keys: list[str], value: Any) -> None:
    node = values
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set '{'.'.join(keys)}': '{key}' is not a section")
    node[keys[-1]] = value


def save_config(config: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), allow_unicode=True, sort_keys=False), encoding="utf-8")
