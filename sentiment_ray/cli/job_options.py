"""Options of `score`, `evaluate` and `zero-shot` from their dataclass, a `--config` YAML and the flags.

Each default is defined once, in the options dataclass (`ScoreOptions`, `EvaluateOptions`); the flags default to
None and override the YAML, which overrides the dataclass. The YAML's keys are the dataclass's field names, plus
`encoding`, `quoting` and `sheet` (how review files are read); an unknown key is refused with the closest one.
"""

from __future__ import annotations

import dataclasses

from sentiment_ray.config import read_yaml_mapping
from sentiment_ray.errors import ConfigError, unknown_key

READ_KEYS = ("encoding", "quoting", "sheet")


def flag_of(cls, name: str) -> str:
    """The flag of `cls`'s field `name` (`inputs` → `--input`), as the CLI generates it."""
    from sentiment_ray.cli.option_flags import flag_name, option_fields

    return flag_name(option_fields(cls)[name])


def job_options(cls, config: str | None, flags: dict, fixed: dict | None = None):
    """`cls` built from the YAML `config` (optional), then the non-None `flags`, then `fixed` (not configurable)."""
    from sentiment_ray.data.formats import ReadOptions

    where = config or "flags"
    values = read_yaml_mapping(config) if config else {}
    names = [f.name for f in dataclasses.fields(cls) if f.name != "read_options"] + list(READ_KEYS)
    unknown = [key for key in values if key not in names]
    if unknown:
        raise ConfigError(f"{where}: " + "; ".join(unknown_key(key, names) for key in unknown))
    values |= {k: v for k, v in flags.items() if v is not None} | (fixed or {})
    read = {k: values.pop(k) for k in READ_KEYS if k in values}
    missing = [f.name for f in dataclasses.fields(cls) if required(f) and f.name not in values]
    if missing:
        flags_needed = ", ".join(flag_of(cls, name) for name in missing)
        raise ConfigError(f"{where}: missing {', '.join(missing)} (give {flags_needed} or set it in --config)")
    try:
        return cls(**values, read_options=ReadOptions(**read))
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from None


def required(field) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
