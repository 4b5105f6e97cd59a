"""What a model folder or a run folder holds, read from its files without loading a model (`sentiment-ray info`).

A model folder is described from `sentiment_meta.json` (validated as every loader validates it); a run folder adds
`train_results.json`. Local paths and URIs (`s3://…`) alike: a URI's files are listed and its JSON files read in
place, the weights are never downloaded.
"""

from __future__ import annotations

import json

from sentiment_ray.errors import ModelFolderError
from sentiment_ray.location import Location
from sentiment_ray.models.folder import META_FILE
from sentiment_ray.models.folder_check import check_meta
from sentiment_ray.storage import list_files

TRAIN_RESULTS = "train_results.json"


def describe(path: str) -> dict:
    """{kind, model_folder, base_model, strategy, finetune, labels, data, metrics, calibration, files, provenance,
    training (run folders)}; ModelFolderError naming `path` when it is neither kind of folder."""
    root = Location.of(path)
    files = _files(root)
    prefix = "" if META_FILE in files else "model/" if f"model/{META_FILE}" in files else None
    if prefix is None:
        raise ModelFolderError(
            f"{path}: neither a model folder nor a run folder (no {META_FILE}, no model/{META_FILE})"
        )
    meta = check_meta(_json(root, prefix + META_FILE), f"{path}/{prefix.rstrip('/')}")
    model_files = {name[len(prefix) :]: size for name, size in files.items() if name.startswith(prefix)}
    about = _model(meta, model_files) | {"kind": "run folder" if prefix else "model folder"}
    about["path"] = root.text
    about["model_folder"] = root.join(prefix.rstrip("/")).text if prefix else root.text
    if prefix and TRAIN_RESULTS in files:
        about["training"] = _training(_json(root, TRAIN_RESULTS))
    return about


def _files(root: Location) -> dict[str, int]:
    """{relative path: bytes} of every file under `root`."""
    if root.remote:
        return {name: size for name, (size, _) in list_files(root.text).items()}
    folder = root.path
    if not folder.is_dir():
        raise ModelFolderError(f"{root}: no such folder")
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


def _json(root: Location, name: str):
    file = root.join(name)
    try:
        return json.loads(file.read_bytes())
    except ValueError as err:  # UnicodeDecodeError included
        raise ModelFolderError(f"{file}: not valid JSON ({err})") from None


def _model(meta: dict, files: dict[str, int]) -> dict:
    config, calibration = meta.get("config") or {}, meta.get("calibration")
    labels = meta.get("labels") or [
        {"name": n, "word": w} for n, w in zip(("negative", "positive"), meta["label_words"], strict=True)
    ]
    weights = {name: size for name, size in files.items() if name.endswith((".safetensors", ".bin"))}
    return {
        "base_model": meta["base_model"],
        "strategy": meta["strategy"],
        "finetune": meta["finetune"],
        "max_length": meta.get("max_length"),
        "prompt_template": meta.get("prompt_template"),
        "labels": [{"name": c["name"], "word": c.get("word"), "values": c.get("values")} for c in labels],
        "data": (config.get("data") or {}).get("source"),
        "metrics": {part: _headline(m) for part, m in (meta.get("metrics") or {}).items() if isinstance(m, dict)},
        "calibration": None
        if not calibration
        else {"temperature": calibration["temperature"], "fitted_on": calibration.get("fitted_on")},
        "calibrations": {  # `calibrate --as NAME` ones, beside the folder's own
            name: {"temperature": c["temperature"], "fitted_on": c.get("fitted_on")}
            for name, c in (meta.get("calibrations") or {}).items()
        },
        "files": {"count": len(files), "megabytes": _mb(sum(files.values())), "weights_megabytes": _mb(weights)},
        "provenance": {k: meta.get(k) for k in ("created_at", "versions", "machine")},
    }


def _headline(metrics: dict) -> dict:
    return {k: metrics[k] for k in ("n", "accuracy", "macro_f1", "f1", "roc_auc") if metrics.get(k) is not None}


def _training(results: dict) -> dict:
    keys = ("global_step", "max_steps", "num_workers", "train_rows", "wall_time_s", "command", "created_at")
    found = {k: results.get(k) for k in keys if results.get(k) is not None}
    if "wall_time_s" in found:
        found["wall_time_s"] = round(found["wall_time_s"])
    return found


def _mb(sizes) -> float:
    total = sizes if isinstance(sizes, int) else sum(sizes.values())
    return round(total / 2**20, 1)


def summary_lines(about: dict) -> list[str]:
    """The console view of `describe`'s dict: one fact per line."""
    labels = ", ".join(f"{c['name']} ({c['word']})" if c.get("word") else c["name"] for c in about["labels"])
    lines = [
        f"{about['kind']}: {about['path']}"
        + (f" (model folder {about['model_folder']})" if about["kind"] == "run folder" else ""),
        f"base model: {about['base_model']}; strategy {about['strategy']}; fine-tuning {about['finetune']}",
        f"classes ({len(about['labels'])}): {labels}",
        f"trained on: {about['data']}; max length {about['max_length']} tokens",
    ]
    for part, metrics in about["metrics"].items():
        lines.append(
            f"{part}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
        )
    cal = about["calibration"]
    fitted = (cal or {}).get("fitted_on") or {}
    lines.append(
        "calibration: none (`sentiment-ray calibrate` fits one)"
        if not cal
        else f"calibration: temperature {cal['temperature']:.4f} on {fitted.get('rows')} rows of "
        f"{fitted.get('data')} ({fitted.get('part')})"
    )
    for name, other in about.get("calibrations", {}).items():
        fitted = other.get("fitted_on") or {}
        rows, data = fitted.get("rows"), fitted.get("data")
        lines.append(f"calibration {name}: temperature {other['temperature']:.4f} on {rows} rows of {data}")
    files = about["files"]
    lines.append(f"files: {files['count']}, {files['megabytes']} MB ({files['weights_megabytes']} MB of weights)")
    made, versions = about["provenance"], about["provenance"].get("versions") or {}
    machine = made.get("machine") or {}
    lines.append(
        f"made: {made.get('created_at')} with sentiment-ray {versions.get('sentiment-ray')}, "
        f"torch {versions.get('torch')}, on {machine.get('processor')} "
        f"({machine.get('cpu_matmul_flags', 'flags not recorded')}; GPUs: {machine.get('gpus')})"
    )
    if "training" in about:
        lines.append("training: " + ", ".join(f"{k} {v}" for k, v in about["training"].items()))
    return lines
