"""Config: every shipped YAML loads, overrides apply with types, contradictions get clear messages."""

from pathlib import Path

import pytest

from sentiment_ray.config import load_config, save_config
from sentiment_ray.errors import ConfigError

CONFIGS = sorted((Path(__file__).parents[2] / "jobs" / "configs").glob("*.yaml"))


def test_there_are_presets():
    assert {p.stem for p in CONFIGS} >= {"tiny", "qwen2.5-1.5b-lora", "qwen2.5-1.5b-qlora"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_yaml_loads_and_starts_with_its_command(path):
    import yaml

    from sentiment_ray.cli.config_command import resolved_config

    kind, resolved = resolved_config([path], yaml.safe_load(path.read_text(encoding="utf-8")), [])  # as its job does
    jobs = {"score": "score", "evaluate": "evaluate", "serve": "serve"}
    expected = jobs.get(path.stem) or ("tune" if "tune" in path.stem or "sweep" in path.stem else "train")
    assert kind == expected and resolved
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# ") and ("sentiment-ray" in first or "jobs/" in first), first
    assert str(path.relative_to(path.parents[2])) in first


def test_the_lora_preset_keeps_the_seed_projects_defaults():
    cfg = load_config(CONFIGS[[p.stem for p in CONFIGS].index("qwen2.5-1.5b-lora")])
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout) == (8, 16, 0.05)
    assert cfg.lora.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.learning_rate) == (3, 8, 1e-4)
    assert (cfg.train.warmup_ratio, cfg.train.save_steps, cfg.train.save_total_limit) == (0.1, 100, 3)


def test_overrides_are_typed_and_layered(tmp_path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("train:\n  epochs: 2\nmodel:\n  name: tiny\n")
    cfg = load_config(
        yaml_file,
        overrides=["train.learning_rate=3e-4", "lora.target_modules=q_proj,v_proj"],
        updates={"train.epochs": 5, "scaling.num_workers": 1},
    )
    assert cfg.train.epochs == 5.0 and cfg.train.learning_rate == 3e-4
    assert cfg.lora.target_modules == ["q_proj", "v_proj"] and cfg.scaling.num_workers == 1
    assert cfg.model.name == "tiny"


def test_a_second_config_file_overlays_the_first_field_by_field(tmp_path):
    root = Path(__file__).parents[2] / "jobs" / "configs"
    preset, overlay = root / "qwen2.5-1.5b-qlora.yaml", root / "cpu-real-shape.yaml"
    cfg = load_config([preset, overlay], updates={"scaling.num_workers": 2})
    assert (cfg.model.name, cfg.model.finetune, cfg.model.gradient_checkpointing) == (
        "random:qwen2.5-1.5b",
        "qlora",
        True,
    )
    assert (cfg.lora.r, cfg.train.learning_rate, cfg.train.max_steps) == (8, 1e-4, 3)  # preset kept, overlay on top
    assert (cfg.scaling.use_gpu, cfg.scaling.num_workers, cfg.data.source) == (False, 2, "offline")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  batch_size: 0\n")
    with pytest.raises(ConfigError, match=r"qwen2.5-1.5b-qlora.yaml \+ .*bad.yaml: train.batch_size"):
        load_config([preset, bad])


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(None, updates={"model.strategy": "classifier", "train.epochs": 2})
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg


@pytest.mark.parametrize(
    ("updates", "message"),
    [
        ({"model.load_in_4bit": True, "model.finetune": "full"}, "contradicts model.finetune='full'"),
        ({"model.strategy": "regression"}, "model.strategy='regression' is not one of"),
        ({"prompt.label_words": ["好", "好"]}, "label_words are identical"),
        ({"prompt.label_words": ["好"]}, "two non-empty words"),
        ({"prompt.template": "no slot"}, "{text}"),
        ({"train.epoch": 2}, "did you mean 'epochs'"),
        ({"train.batch_size": "eight"}, "train.batch_size' must be int"),
        ({"train.batch_size": True}, "must be int"),
        ({"lora.r": 0}, "lora.r must be >= 1"),
        ({"train.warmup_ratio": 1.5}, "warmup_ratio"),
        ({"model.finetune": "qlora", "train.precision": "bf16"}, "needs a GPU"),
        ({"scaling.placement_strategy": "spread"}, "scaling.placement_strategy='spread' is not one of PACK"),
    ],
)
def test_contradictions_are_refused_with_a_clear_message(updates, message):
    with pytest.raises(ConfigError, match=None) as err:
        load_config(None, updates=updates)
    assert message in str(err.value)


def test_bad_override_syntax_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="section.field=value"):
        load_config(None, overrides=["train.epochs"])
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_the_resume_hint_needs_a_mid_training_checkpoint(tmp_path):
    from sentiment_ray.config import load_config
    from sentiment_ray.training.driver import has_resumable_checkpoint
    from sentiment_ray.training.worker import FINAL_RESULTS

    cfg = load_config(updates={"output_dir": str(tmp_path / "run")})
    assert not has_resumable_checkpoint(cfg)  # nothing ran: no hint
    checkpoint = tmp_path / "run" / "ray" / "train-20261129-000000-000000" / "checkpoint_2026-11-29_00-00-01.000000"
    checkpoint.mkdir(parents=True)
    assert has_resumable_checkpoint(cfg)
    (checkpoint / FINAL_RESULTS).write_text("{}")
    assert not has_resumable_checkpoint(cfg)  # a finished run is not resumed
