"""Tampered or careless model folders: each is a ModelFolderError naming folder and field; none loads or runs code.

Every case starts from a real LoRA model folder (the `model_folder` fixture), copied and changed the way a
careless user or an attacker would change it.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys

import pytest

from sentiment_ray.errors import ModelFolderError, ModelLoadError
from sentiment_ray.inference.predictor import SentimentPredictor
from sentiment_ray.models.folder import read_meta
from sentiment_ray.models.loading import prepare_base


def _meta_edit(**changes):
    def edit(folder):
        meta = json.loads((folder / "sentiment_meta.json").read_text(encoding="utf-8"))
        meta.update(changes)
        for key in [k for k, v in changes.items() if v is _DELETE]:
            del meta[key]
        (folder / "sentiment_meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    return edit


_DELETE = object()


def _write(name: str, data: bytes):
    return lambda folder: (folder / name).write_bytes(data)


def _remove(name: str):
    return lambda folder: (folder / name).unlink()


def _pickle_adapter(folder):
    (folder / "adapter_model.safetensors").unlink()
    (folder / "adapter_model.bin").write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")  # a pickle that runs a command


def _link_adapter(folder):
    (folder / "adapter_model.safetensors").unlink()
    (folder / "adapter_model.safetensors").symlink_to("/etc/hostname")


def _hf_config(**config):
    return _write("config.json", json.dumps(config).encode())


TAMPERED = {
    "finetune Full": (_meta_edit(finetune="Full"), r"'finetune' is 'Full'; allowed: lora, qlora, full, zero_shot"),
    "zero_shot on a trained folder": (_meta_edit(finetune="zero_shot"), r"holds trained weights"),
    "unknown strategy": (_meta_edit(strategy="regression"), r"'strategy' is 'regression'; allowed"),
    "strategy missing": (_meta_edit(strategy=_DELETE), r"'strategy' is None"),
    "max_length as a string": (_meta_edit(max_length="128"), r"'max_length' must be an integer >= 8, got '128'"),
    "max_length a bool": (_meta_edit(max_length=True), r"'max_length' must be an integer"),
    "label words empty": (_meta_edit(label_words=[]), r"'label_words' must be two non-empty strings"),
    "label words equal": (_meta_edit(label_words=["好", "好"]), r"'label_words' must differ"),
    "template without {text}": (_meta_edit(prompt_template="评论："), r"'prompt_template' must hold the placeholder"),
    "base model empty": (_meta_edit(base_model=""), r"'base_model' must be a non-empty string"),
    "meta not JSON": (_write("sentiment_meta.json", b"{not json"), r"sentiment_meta.json: not valid JSON"),
    "meta not UTF-8": (_write("sentiment_meta.json", "{}".encode("utf-16")), r"sentiment_meta.json: not valid JSON"),
    "meta a list": (_write("sentiment_meta.json", b"[1, 2]"), r"holds a JSON list, not an object"),
    "adapter missing": (_remove("adapter_model.safetensors"), r"missing or empty: adapter_model.safetensors"),
    "adapter garbage": (_write("adapter_model.safetensors", b"\x00" * 64), r"not a readable safetensors file"),
    "tokenizer missing": (_remove("tokenizer.json"), r"missing or empty: tokenizer.json"),
    "tokenizer empty": (_write("tokenizer.json", b""), r"missing or empty: tokenizer.json"),
    "remote code": (
        _hf_config(model_type="evil", auto_map={"AutoModelForCausalLM": "evil.EvilModel"}),
        r"`auto_map` asks to run Python code",
    ),
    "unknown model type": (_hf_config(model_type="not-a-model"), r"model_type 'not-a-model' is not a model type"),
    "config not JSON": (_write("config.json", b"\xff\xfe{"), r"config.json: not valid JSON"),
    "config a list": (_write("config.json", b"[]"), r"config.json"),
    "meta missing": (_remove("sentiment_meta.json"), r"not a sentiment-ray model folder"),
    "label words three": (_meta_edit(label_words=["正面", "负面", "中性"]), r"'label_words' must be two"),
    "label word a number": (_meta_edit(label_words=[1, "负面"]), r"'label_words' must be two non-empty strings"),
    "max_length negative": (_meta_edit(max_length=-5), r"'max_length' must be an integer >= 8"),
    "template a number": (_meta_edit(prompt_template=5), r"'prompt_template'"),
    "adapter config missing": (_remove("adapter_config.json"), r"missing or empty: adapter_config.json"),
    "adapter config not JSON": (_write("adapter_config.json", b"{oops"), r"adapter_config.json: not valid JSON"),
    "tokenizer config not JSON": (_write("tokenizer_config.json", b"{oops"), r"tokenizer_config.json: not valid JSON"),
    "tokenizer garbage": (_write("tokenizer.json", b"\x00garbage"), r"tokenizer.json"),
    "pickle adapter instead of safetensors": (_pickle_adapter, r"missing or empty: adapter_model.safetensors"),
    "adapter a link to another file": (_link_adapter, r"adapter_model.safetensors"),
}


@pytest.fixture
def tampered(model_folder, tmp_path):
    def make(change):
        folder = tmp_path / "model"
        shutil.copytree(model_folder, folder)
        change(folder)
        return folder

    return make


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_a_tampered_folder_is_a_clear_error_before_anything_loads(tampered, case):
    change, message = TAMPERED[case]
    folder = tampered(change)
    with pytest.raises(ModelFolderError, match=message) as info:
        read_meta(folder)
    assert str(folder) in str(info.value)
    with pytest.raises(ModelFolderError, match=message):  # the predictor runs the same checks first
        SentimentPredictor.from_pretrained(folder, device="cpu")


def test_remote_code_never_runs(tampered, tmp_path):
    marker = tmp_path / "code-ran"
    evil = f"open({str(marker)!r}, 'w').write('x')\n"

    def plant(folder):
        (folder / "evil.py").write_text(evil)
        _hf_config(model_type="evil", auto_map={"AutoModelForCausalLM": "evil.EvilModel"})(folder)

    folder = tampered(plant)
    with pytest.raises(ModelFolderError):
        SentimentPredictor.from_pretrained(folder, device="cpu")
    assert not marker.exists()


@pytest.mark.parametrize("command", ["predict", "train"])
def test_remote_code_is_refused_in_a_terminal_too(tampered, tmp_path, command):
    """In a terminal, transformers would ask whether to run the folder's code; a careless user answers "y".
    The check refuses before anything can ask: exit 2, the refusal on screen, the code never run."""
    marker = tmp_path / "code-ran"

    def plant(folder):
        (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
        _hf_config(model_type="evil", auto_map={"AutoModelForCausalLM": "evil.EvilModel"})(folder)

    folder = tampered(plant)
    args = (
        ["predict", "--model-path", str(folder), "--text", "好"]
        if command == "predict"
        else ["train", "--model", str(folder)]
    )
    terminal, child_side = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "sentiment_ray.cli", *args], stdin=child_side, stdout=child_side, stderr=child_side
    )
    os.close(child_side)
    os.write(terminal, b"y\n" * 5)
    screen = b""
    while True:
        try:
            chunk = os.read(terminal, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    assert process.wait(timeout=120) == 2, screen.decode(errors="replace")
    assert b"auto_map" in screen and b"trust_remote_code" not in screen.replace(b"trust_remote_code=False", b"")
    assert not marker.exists()


def test_the_untouched_folder_still_loads(model_folder):
    assert read_meta(model_folder)["finetune"] == "lora"


def test_train_model_path_is_checked_before_ray(tmp_path):
    with pytest.raises(ModelLoadError, match=r"--model /no/such/folder: no such folder"):
        prepare_base("/no/such/folder")
    (tmp_path / "not-a-model").mkdir()
    with pytest.raises(ModelLoadError, match=r"no config.json"):
        prepare_base(str(tmp_path / "not-a-model"))
    _hf_config(model_type="evil", auto_map={"AutoModel": "evil.Evil"})(tmp_path / "not-a-model")
    with pytest.raises(ModelFolderError, match=r"auto_map"):
        prepare_base(str(tmp_path / "not-a-model"))
