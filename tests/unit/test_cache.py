"""Cache entries are complete or absent: a writer never publishes a partial folder, a reader never trusts one."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sentiment_ray.cache import CacheError, atomic_directory, cached_directory, missing_files
from sentiment_ray.models.tiny import MODEL_FILES

# Rank `RANK` of a 2-process gloo group (the setting of a Ray Train worker) materialises the tiny model.
# Rank 0 only joins the group, so rank 1 alone builds the entry: on transformers 5.x, save_pretrained
# writes nothing on a rank other than 0, which once published a folder without config.json or weights.
_RANK_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import torch.distributed as dist
    rank = int(os.environ["RANK"])
    dist.init_process_group("gloo", init_method="file://" + sys.argv[1], rank=rank, world_size=2)
    if rank == 1:
        from sentiment_ray.models.tiny import materialize_tiny
        print(materialize_tiny(seed=0))
    dist.barrier()
    dist.destroy_process_group()
    """
)


def test_rank_1_of_a_process_group_publishes_a_complete_tiny_model(tmp_path, shared_tokenizer_cache):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "tokenizers").symlink_to(shared_tokenizer_cache / "tokenizers", target_is_directory=True)
    env = {**os.environ, "SENTIMENT_RAY_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    store = tmp_path / "gloo-store"
    ranks = [
        subprocess.Popen(
            [sys.executable, "-c", _RANK_SCRIPT, str(store)],
            env={**env, "RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [proc.communicate(timeout=300) for proc in ranks]
    assert [proc.returncode for proc in ranks] == [0, 0], [err[-2000:] for _, err in outputs]
    folder = Path(outputs[1][0].strip().splitlines()[-1])
    assert folder.parent == cache / "models"
    assert missing_files(folder, MODEL_FILES) == []

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.config.model_type == "qwen2"


@pytest.fixture(scope="module")
def shared_tokenizer_cache(tmp_path_factory):
    """A cache holding only the Qwen tokenizer, built once for this module."""
    from sentiment_ray.models.tokenizer import qwen_tokenizer_dir

    root = tmp_path_factory.mktemp("tokenizer-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SENTIMENT_RAY_CACHE", str(root))
        qwen_tokenizer_dir()
    return root


def test_an_incomplete_entry_is_rebuilt_not_trusted(tmp_path):
    target = tmp_path / "entry"
    target.mkdir()
    (target / "tokenizer.json").write_text("{}")  # what rank 1 once left: no config, no weights
    calls = []

    def build(tmp: Path) -> None:
        calls.append(tmp)
        (tmp / "tokenizer.json").write_text("{}")
        (tmp / "config.json").write_text("{}")

    assert cached_directory(target, ("tokenizer.json", "config.json"), build) == target
    assert missing_files(target, ("tokenizer.json", "config.json")) == []
    assert len(calls) == 1
    cached_directory(target, ("tokenizer.json", "config.json"), build)
    assert len(calls) == 1  # a complete entry is reused
    assert sorted(p.name for p in tmp_path.iterdir()) == [".entry.lock", "entry"]  # no temp leftovers


def test_a_build_that_leaves_a_file_out_publishes_nothing(tmp_path):
    target = tmp_path / "entry"
    with pytest.raises(CacheError, match="config.json"):
        cached_directory(target, ("config.json",), lambda tmp: (tmp / "other").write_text("x"))
    assert not target.exists()


def test_an_empty_required_file_counts_as_missing(tmp_path):
    (tmp_path / "config.json").write_text("")
    assert missing_files(tmp_path, ("config.json",)) == ["config.json"]


def test_concurrent_writers_build_an_entry_once(tmp_path):
    target = tmp_path / "entry"
    builds = []

    def build(tmp: Path) -> None:
        builds.append(tmp)
        (tmp / "weights").write_text("w")

    with ThreadPoolExecutor(4) as pool:
        folders = list(pool.map(lambda _: cached_directory(target, ("weights",), build), range(4)))
    assert folders == [target] * 4
    assert len(builds) == 1  # the lock makes the others wait, then reuse the entry


def test_atomic_directory_replaces_an_incomplete_entry_in_its_way(tmp_path):
    target = tmp_path / "entry"
    with atomic_directory(target, ("config.json",)) as tmp:
        (tmp / "config.json").write_text("{}")
        target.mkdir()  # another writer published a folder without config.json meanwhile
        (target / "tokenizer.json").write_text("{}")
    assert (target / "config.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]
