"""The model folder contract (docs/contracts.md): weights or adapter, tokenizer, `sentiment_meta.json`, `config.yaml`.

A folder written by one strategy loads without the user repeating strategy, base model, prompt,
label words or max length: everything needed is in the meta file.
"""

from __future__ import annotations

import json
from pathlib import Path

from sentiment_ray.config import DataConfig, PromptConfig, RunConfig, save_config
from sentiment_ray.errors import ModelFolderError
from sentiment_ray.labels import BINARY_WORDS, LabelSet, binary_sentiment
from sentiment_ray.location import Location
from sentiment_ray.models.folder_check import ZERO_SHOT, check_files, check_hf_config, check_meta, read_json_object
from sentiment_ray.provenance import provenance

META_FILE = "sentiment_meta.json"


def save_model_folder(
    model, tokenizer, config: RunConfig, folder: str | Path, metrics: dict | None = None, calibration=None
) -> Path:
    """Write adapter (lora/qlora) or full weights, tokenizer, config and meta (+ its calibration) into `folder`."""
    labels = config.label_set() or binary_sentiment(config.prompt.label_words)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)  # peft saves the adapter (and the classifier head); full mode the weights
    tokenizer.save_pretrained(folder)
    save_config(config, folder / "config.yaml")
    meta = {
        "strategy": config.model.strategy,
        "base_model": config.model.name,
        "tiny_seed": config.model.tiny_seed,
        "finetune": config.model.finetune,
        "prompt_template": config.prompt.template,
        "label_words": list(labels.words),
        "labels": labels.to_list(),
        "max_length": config.data.max_length,
        "config": config.to_dict(),
        "metrics": metrics or {},
        **({"calibration": calibration} if calibration else {}),
        **provenance(),  # command, machine, library versions, created_at
    }
    (folder / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    return folder


def write_calibration(folder: str | Path, calibration: dict, name: str | None = None) -> None:
    """Store (replace) the `calibration` block of a local model folder's meta, or with `name` the one of that name
    in `calibrations`, in one atomic rename."""
    import os

    path = Path(folder) / META_FILE
    meta = read_meta(folder)
    if name is None:
        meta["calibration"] = calibration
    else:
        meta.setdefault("calibrations", {})[name] = calibration
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, path)


def save_zero_shot_folder(
    base_model: str,
    folder: str | Path,
    prompt: PromptConfig,
    max_length: int = DataConfig.max_length,
    tiny_seed: int = 0,
    labels: LabelSet | None = None,
) -> Path:
    """A model folder that means "the untouched base model, label scoring with `prompt` and `labels`' words" (None:
    binary sentiment with the prompt's label words): meta + tokenizer only.

    Everything that loads model folders (predictor, scoring, evaluation, serving) then runs zero-shot too.
    """
    from sentiment_ray.config import RunConfig, build_dataclass
    from sentiment_ray.models.loading import load_tokenizer, resolve_base

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    load_tokenizer(resolve_base(base_model, tiny_seed)).save_pretrained(folder)
    config = build_dataclass(
        RunConfig,
        {
            "model": {"name": base_model, "tiny_seed": tiny_seed},
            "prompt": {"template": prompt.template, "label_words": prompt.label_words},
            "data": {"max_length": max_length},
            "labels": (labels or binary_sentiment(prompt.label_words)).to_list(),
        },
    )
    labels = config.label_set()
    meta = {
        "strategy": "label_scoring",
        "base_model": base_model,
        "tiny_seed": tiny_seed,
        "finetune": ZERO_SHOT,
        "prompt_template": prompt.template,
        "label_words": list(labels.words),
        "labels": labels.to_list(),
        "max_length": max_length,
        "config": config.to_dict(),
        "metrics": {},
        **provenance(),
    }
    (folder / META_FILE).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
    return folder


def read_meta(folder: Location | str | Path) -> dict:
    """The folder's validated meta: schema, the files its finetune mode needs, and a safe config.json.

    `folder` may be a URI (`s3://…`): this node's cached copy is checked, and errors name the URI.
    """
    folder = Location.of(folder)
    if not folder.remote:
        return _read_local_meta(folder.path)
    local = folder.local_folder()
    try:
        return _read_local_meta(local)
    except ModelFolderError as err:
        raise ModelFolderError(f"{folder} (this node's copy: {local}): {err}") from None


def _read_local_meta(folder: str | Path) -> dict:
    path = Path(folder) / META_FILE
    if not path.is_file():
        hint = " (pass the run's model/ subfolder)" if (Path(folder) / "model" / META_FILE).is_file() else ""
        raise ModelFolderError(f"{folder} is not a sentiment-ray model folder: {META_FILE} is missing{hint}")
    meta = read_json_object(path)
    check_meta(meta, folder)
    check_files(folder, meta)
    check_hf_config(folder)
    return meta


def prepare_folder_base(folder: Location | str | Path) -> dict:
    """Driver side: validate the folder's meta and build the base model it needs before actors start."""
    from sentiment_ray.models.loading import prepare_base

    meta = read_meta(folder)
    if meta["finetune"] != "full":  # a full folder holds its own weights
        prepare_base(meta["base_model"], meta.get("tiny_seed", 0))
    return meta


def prompt_of(meta: dict) -> PromptConfig:
    """The folder's prompt (its label words: those of binary sentiment; `labels_of` has every class's word)."""
    words = meta["label_words"] if len(meta["label_words"]) == 2 else list(BINARY_WORDS)
    return PromptConfig(template=meta["prompt_template"], label_words=list(words))


def labels_of(meta: dict) -> LabelSet:
    """The folder's classes: its `labels`, or binary sentiment with its label words (folders written before N-class
    labels carry only `label_words`)."""
    if "labels" in meta:
        return LabelSet.from_list(meta["labels"], where="sentiment_meta.json labels")
    return binary_sentiment(meta["label_words"])


def load_model_folder(folder: Location | str | Path, device, dtype, specialize: bool = True):
    """(model in eval mode, tokenizer, strategy, meta) from a model folder; LoRA is merged for speed.

    `specialize=False` loads the stock HF model (see `modeling.load_base_model`).
    """
    from sentiment_ray.models.loading import load_base_model, load_tokenizer, resolve_base
    from sentiment_ray.models.strategies import make_strategy

    folder = Location.of(folder)
    meta = read_meta(folder)
    folder = folder.local_folder()  # a URI: the copy read_meta just checked (the cache's fast path)
    tokenizer = load_tokenizer(str(folder))
    strategy = make_strategy(meta["strategy"], tokenizer, prompt_of(meta), meta["max_length"], labels_of(meta))
    base = str(folder) if meta["finetune"] == "full" else resolve_base(meta["base_model"], meta.get("tiny_seed", 0))
    model = load_base_model(
        strategy,
        base,
        pad_token_id=tokenizer.pad_token_id,
        finetune=meta["finetune"],
        device=device,
        dtype=dtype,
        specialize=specialize,
    )
    if meta["finetune"] in ("lora", "qlora"):  # full and zero-shot folders need no adapter
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(folder))
        if meta["finetune"] == "lora":  # merging into 4-bit weights would be lossy, so qlora keeps adapters apart
            model = model.merge_and_unload()
    if meta["finetune"] != "qlora":  # bitsandbytes placed the 4-bit model already; .to() would refuse
        model = model.to(device=device, dtype=dtype)
    return model.eval(), tokenizer, strategy, meta
