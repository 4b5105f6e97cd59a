"""The config reference table (docs/guide/config.md) generated from the dataclasses' attribute docstrings."""

from __future__ import annotations

import dataclasses

from sentiment_ray import config as config_module
from sentiment_ray.cli.option_flags import attribute_docstrings

SECTIONS = {
    "model": config_module.ModelConfig,
    "lora": config_module.LoraConfig,
    "prompt": config_module.PromptConfig,
    "data": config_module.DataConfig,
    "train": config_module.TrainConfig,
    "scaling": config_module.ScalingConfig,
}


def _default(field: dataclasses.Field) -> str:
    if field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        value = field.default
    return repr(value).replace("\n", "\\n").replace("|", "\\|")


def config_table() -> str:
    """Markdown rows: | field | default | meaning |, one per config field, sections in file order."""
    rows = ["| field | default | meaning |", "| --- | --- | --- |"]
    for section, cls in SECTIONS.items():
        docs = attribute_docstrings(cls)
        for field in dataclasses.fields(cls):
            rows.append(f"| `{section}.{field.name}` | `{_default(field)}` | {docs.get(field.name, '')} |")
    top = attribute_docstrings(config_module.RunConfig)
    for name in ("output_dir", "storage_path", "labels"):
        field = next(f for f in dataclasses.fields(config_module.RunConfig) if f.name == name)
        rows.append(f"| `{name}` | `{_default(field)}` | {top.get(name, '')} |")
    return "\n".join(rows)


def tune_table() -> str:
    """Markdown rows for the `tune:` section of a sweep config (docs/guide/tune.md)."""
    from sentiment_ray.tuning.space import TuneConfig

    docs = attribute_docstrings(TuneConfig)
    rows = ["| field | default | meaning |", "| --- | --- | --- |"]
    rows += [f"| `tune.{f.name}` | `{_default(f)}` | {docs.get(f.name, '')} |" for f in dataclasses.fields(TuneConfig)]
    return "\n".join(rows)


if __name__ == "__main__":
    print(config_table(), tune_table(), sep="\n\n")
