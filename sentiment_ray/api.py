"""The Python API: `sentiment_ray.train`, `score` and `evaluate` run what `sentiment-ray train`, `score` and
`evaluate` run, with the same typed options, and return the summary the command prints.

    import sentiment_ray
    outcome = sentiment_ray.train("tiny", {"train.max_steps": 20, "output_dir": "runs/api"})
    summary = sentiment_ray.score(model_path=outcome.model_dir, inputs=["examples/reviews.csv"], output="scored/")
    metrics = sentiment_ray.evaluate(model_path=outcome.model_dir, data="examples/reviews.csv", output_dir="eval/")

Options are checked the way the CLI checks them (an unknown or missing one is a ConfigError naming it). The
console is left as the caller set it up: these functions log through `logging` and print nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def train(config=None, updates: Mapping[str, Any] | None = None, overrides: Sequence[str] = ()):
    """Fine-tune on a Ray cluster (joins RAY_ADDRESS's, else starts a local one) → TrainOutcome (run and model
    folders, train and test results).

    `config`: a preset name (`tiny`), a YAML path, a list of them (later files overlay earlier ones), a RunConfig,
    or None for the defaults. `updates`: dotted keys → values, as the named flags give them
    ({"train.max_steps": 20, "output_dir": "runs/x"}). `overrides`: `section.field=value` strings, as `--set`."""
    from sentiment_ray.config import RunConfig, load_config
    from sentiment_ray.training.driver import run_training

    if isinstance(config, RunConfig):
        cfg = load_config(None, overrides=list(overrides), updates=dict(updates or {}), defaults=_flat(config))
    else:
        cfg = load_config(config, overrides=list(overrides), updates=dict(updates or {}))
    return run_training(cfg)


def score(options=None, *, config: str | None = None, **fields) -> dict:
    """Score review files with a Ray Data job → the summary `sentiment-ray score` prints (rows written, errors,
    output, seconds, actors). `options`: a ScoreOptions, or its `fields` as keywords (model_path, inputs,
    output, ...; plus encoding, quoting, sheet) over an optional `config` YAML."""
    from sentiment_ray.inference.batch import ScoreOptions, run_scoring

    return run_scoring(options or _options(ScoreOptions, config, fields))


def evaluate(options=None, *, config: str | None = None, **fields) -> dict:
    """Evaluate a model folder on labelled data → its metrics (metrics.json) and `report`, the report's path.
    `options`: an EvaluateOptions, or its `fields` as keywords (model_path, data, output_dir, ...)."""
    from sentiment_ray.evaluation.suite import EvaluateOptions, run_evaluation

    report = run_evaluation(options or _options(EvaluateOptions, config, fields))
    return {**json.loads((Path(report).parent / "metrics.json").read_text()), "report": str(report)}


def _options(cls, config: str | None, fields: dict):
    import dataclasses

    from sentiment_ray.cli.job_options import READ_KEYS, job_options
    from sentiment_ray.errors import ConfigError, unknown_key

    names = [f.name for f in dataclasses.fields(cls) if f.name != "read_options"] + list(READ_KEYS)
    unknown = [unknown_key(key, names) for key in fields if key not in names]
    if unknown:
        raise ConfigError(f"{cls.__name__}: " + "; ".join(unknown))
    if isinstance(fields.get("inputs"), str | Path):  # one file or folder, as `--input` takes it
        fields["inputs"] = [fields["inputs"]]
    return job_options(cls, config, {k: _plain(v) for k, v in fields.items()})


def _plain(value):
    """Paths as the strings the options hold (URIs stay strings), in lists too."""
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value


def _flat(cfg) -> dict:
    """A RunConfig as dotted keys ({"train.max_steps": 4, "output_dir": ...}), the form load_config takes."""
    flat = {}
    for key, value in cfg.to_dict().items():
        if isinstance(value, dict):
            flat |= {f"{key}.{field}": v for field, v in value.items()}
        else:
            flat[key] = value
    return flat
