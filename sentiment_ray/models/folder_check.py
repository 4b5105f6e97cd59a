"""Model folders are checked before anything loads them: a typo or a tampered file is a clear error, never a
silent fallback to an untrained model and never someone else's code.

`check_meta` validates `sentiment_meta.json` against its schema (docs/contracts.md, model folder);
`check_files` that the files the folder's finetune mode needs are there; `check_hf_config` that a
`config.json` asks for no remote code (`auto_map`) and names a model type transformers knows.
Every loader goes through `model_folder.read_meta`, which runs all three.
"""

from __future__ import annotations

import json
from pathlib import Path

from sentiment_ray.config import FINETUNE_MODES, STRATEGIES
from sentiment_ray.errors import ConfigError, ModelFolderError, ModelLoadError

ZERO_SHOT = "zero_shot"
"""`finetune` value of a zero-shot folder: no weights of its own, the base model is used as it is."""
FOLDER_FINETUNES = (*FINETUNE_MODES, ZERO_SHOT)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
FULL_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
NEEDED_FILES = {
    "lora": ("adapter_config.json", "adapter_model.safetensors"),
    "qlora": ("adapter_config.json", "adapter_model.safetensors"),
    "full": ("config.json",),  # + the weights: model.safetensors, or its shards' index
    ZERO_SHOT: (),
}


def _fail(folder, field: str, problem: str) -> ModelFolderError:
    return ModelFolderError(f"{folder}: sentiment_meta.json field {field!r} {problem}")


def _check_labels(meta: dict, folder) -> None:
    """`labels` (a list of classes, each with a name and a word) when present; else the two binary `label_words`
    of a folder written before N-class labels."""
    from sentiment_ray.labels import LabelSet

    words = meta.get("label_words")
    classes = meta.get("labels")
    count = len(classes) if isinstance(classes, list) and len(classes) > 2 else 2
    if not (isinstance(words, list) and len(words) == count and all(isinstance(w, str) and w for w in words)):
        wanted = "two non-empty strings [negative, positive]" if count == 2 else f"{count} non-empty strings"
        raise _fail(folder, "label_words", f"must be {wanted}, got {words!r}")
    if len(set(words)) != len(words):
        raise _fail(folder, "label_words", f"must differ, got {words!r}")
    if "labels" not in meta:  # a folder written before N-class labels: binary sentiment
        return
    if not isinstance(classes, list) or not all(isinstance(c, dict) for c in classes):
        raise _fail(folder, "labels", f"must be a list of classes ({{name, values, word}}), got {classes!r}")
    try:
        labels = LabelSet.from_list(classes)
    except ConfigError as err:
        raise _fail(folder, "labels", f"is not a valid set of classes: {err}") from None
    if words != list(labels.words):
        raise _fail(folder, "label_words", f"must be the classes' words {list(labels.words)}, got {words!r}")


def check_meta(meta: object, folder: str | Path) -> dict:
    """`meta` if it follows the schema; else ModelFolderError naming the folder, the field and what is allowed."""
    if not isinstance(meta, dict):
        raise ModelFolderError(f"{folder}: sentiment_meta.json holds a JSON {type(meta).__name__}, not an object")
    for field, choices in (("strategy", STRATEGIES), ("finetune", FOLDER_FINETUNES)):
        if meta.get(field) not in choices:
            raise _fail(folder, field, f"is {meta.get(field)!r}; allowed: {', '.join(choices)}")
    for field in ("base_model", "prompt_template"):
        if not isinstance(meta.get(field), str) or not meta[field].strip():
            raise _fail(folder, field, f"must be a non-empty string, got {meta.get(field)!r}")
    if "{text}" not in meta["prompt_template"]:
        raise _fail(folder, "prompt_template", "must hold the placeholder {text}")
    _check_labels(meta, folder)
    for field, minimum, required in (("max_length", 8, True), ("tiny_seed", 0, False)):
        value = meta.get(field)
        if value is None and not required:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise _fail(folder, field, f"must be an integer >= {minimum}, got {value!r}")
    return meta


def check_files(folder: str | Path, meta: dict) -> None:
    """The files `meta["finetune"]` needs, and the tokenizer, are present and non-empty."""
    folder = Path(folder)
    needed = (*NEEDED_FILES[meta["finetune"]], *TOKENIZER_FILES)
    missing = [name for name in needed if not _non_empty(folder / name)]
    if meta["finetune"] == "full" and not any(_non_empty(folder / n) for n in FULL_WEIGHTS):
        missing.append(" or ".join(FULL_WEIGHTS))
    if meta["finetune"] == ZERO_SHOT:  # weights beside a zero-shot meta: a trained folder whose meta was changed
        trained = [n for n in (*NEEDED_FILES["lora"], *FULL_WEIGHTS) if (folder / n).exists()]
        if trained:
            raise ModelFolderError(
                f"{folder}: sentiment_meta.json says finetune 'zero_shot' (the untrained base), but the folder holds "
                f"trained weights ({', '.join(trained)}); set finetune to the mode it was trained with"
            )
    if missing:
        raise ModelFolderError(
            f"{folder}: a {meta['finetune']} model folder needs {', '.join(needed)}; missing or empty: "
            f"{', '.join(missing)}"
        )
    for name in (*needed, *FULL_WEIGHTS):
        if name.endswith(".safetensors") and (folder / name).is_file():
            _check_safetensors(folder / name)
        elif name.endswith(".json") and (folder / name).is_file():  # peft / tokenizers: a bare JSONDecodeError
            read_json_object(folder / name)


def _check_safetensors(path: Path) -> None:
    """Reads only the header: a truncated or foreign file is named here, not by a SafetensorError mid-load."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as weights:
            weights.keys()
    except Exception as err:  # safetensors raises SafetensorError, OSError, ... depending on the damage
        raise ModelFolderError(f"{path}: not a readable safetensors file ({err})") from None


def read_json_object(path: Path) -> dict:
    """The JSON object in `path`, or ModelFolderError naming the file and what is wrong with it."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFolderError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise ModelFolderError(f"{path}: holds a JSON {type(value).__name__}, not an object")
    return value


def _non_empty(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


def check_hf_config(folder: str | Path) -> None:
    """Refuse a config.json that would run code from the folder, or that names a model type transformers lacks."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        return
    config = read_json_object(path)
    if "auto_map" in config:
        raise ModelFolderError(
            f"{path}: `auto_map` asks to run Python code shipped in the folder; sentiment-ray never runs remote "
            "code (trust_remote_code=False). Use a model whose architecture transformers includes."
        )
    from transformers import CONFIG_MAPPING

    model_type = config.get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise ModelFolderError(f"{path}: model_type {model_type!r} is not a model type transformers knows")


def check_base_name(name: str) -> None:
    """A base model given as a local folder exists, is a Hugging Face model and runs no code; a Hub id passes.

    Light (no torch), so that `train --model` with a wrong path fails within a second, before the data and Ray.
    """
    from sentiment_ray.models.shapes import check_shape_name, is_random_shape

    if is_random_shape(name):
        return check_shape_name(name)
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ModelLoadError(f"--model {name}: the folder has no config.json, so it is not a Hugging Face model")
        check_hf_config(local)
    elif name.startswith(("/", "./", "../", "~")) or local.exists():
        raise ModelLoadError(f"--model {name}: no such folder (a Hub id looks like Qwen/Qwen2.5-1.5B)")
