"""`sentiment-ray config validate FILE [FILE ...]`: load a config the way its job would (a later file overlays an
earlier one, as `train --config A --config B` does), print it resolved; no Ray, no model.

The kind is read from the file: a Serve config (`applications:` or `model_path:`), a sweep (`tune:`), the flat
options of `score` or `evaluate`, else a training run. Unknown or misspelled keys fail as they would in the job,
with the key named.
"""

from __future__ import annotations

import dataclasses
import sys

import yaml

from sentiment_ray.cli.job_options import READ_KEYS, flag_of, job_options, required
from sentiment_ray.config import load_config, read_config_files, resolve_config_path
from sentiment_ray.errors import ConfigError


def cmd_config(args) -> int:
    paths = [resolve_config_path(file) for file in args.file]
    kind, resolved = resolved_config(paths, read_config_files(paths), args.set)
    print(f"# {', '.join(map(str, paths))}: a valid {kind} config; every field, defaults included", file=sys.stderr)
    print(yaml.safe_dump(resolved, allow_unicode=True, sort_keys=False), end="")
    return 0


def resolved_config(paths: list, raw: dict, overrides: list[str]) -> tuple[str, dict]:
    if "applications" in raw or "model_path" in raw:
        from sentiment_ray.inference.serve_config import load_serve_yaml, serve_config

        if overrides or len(paths) > 1:
            raise ConfigError("a Serve config is one file and takes no --set; serve takes its flags")
        return "serve", serve_config(load_serve_yaml(paths[0]), str(paths[0])).model_dump()
    if "tune" in raw:
        from sentiment_ray.tuning.space import load_tune_config

        cfg, tc = load_tune_config(paths, overrides=overrides)
        return "tune", {**cfg.to_dict(), "tune": dataclasses.asdict(tc)}
    for kind, cls in _job_option_classes().items():  # a flat mapping of one job's option names
        if raw and set(raw) <= {f.name for f in dataclasses.fields(cls)} | set(READ_KEYS):
            if len(paths) > 1 or overrides:
                raise ConfigError(f"a {kind} config is one file and takes no --set; {kind} takes its flags")
            missing = {f.name: f"<{flag_of(cls, f.name)}>" for f in dataclasses.fields(cls) if required(f)}
            opts = job_options(cls, str(paths[0]), {}, fixed={k: v for k, v in missing.items() if k not in raw})
            return kind, {**dataclasses.asdict(opts), "read_options": dataclasses.asdict(opts.read_options)}
    return "train", load_config(paths, overrides=overrides).to_dict()


def _job_option_classes() -> dict:
    from sentiment_ray.evaluation.suite import EvaluateOptions
    from sentiment_ray.inference.batch import ScoreOptions

    return {"score": ScoreOptions, "evaluate": EvaluateOptions}
