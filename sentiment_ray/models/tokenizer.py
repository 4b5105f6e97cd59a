"""Qwen2 / Qwen2.5's tokenizer, rebuilt offline from the BPE ranks that ship inside `dashscope`.

The Hugging Face Hub is unreachable on our machines, but `dashscope/resources/qwen.tiktoken` holds the
151,643 byte-level BPE ranks that Qwen2 and Qwen2.5 use (token id == rank). Turning them into a
`tokenizers` BPE model, with Qwen2's pre-tokenizer regex and NFC normalizer and Qwen2.5's added tokens
at their real ids, gives the same ids as the real `Qwen/Qwen2.5-*` tokenizer. The result is cached as
`tokenizer.json` + `tokenizer_config.json` so that workers load it instead of rebuilding it.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import os
from pathlib import Path
from typing import TYPE_CHECKING

from sentiment_ray.cache import cached_directory, sentiment_ray_cache_dir, short_hash
from sentiment_ray.errors import ModelLoadError

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

# Qwen2's pre-tokenizer split (transformers' `tokenization_qwen2.PRETOKENIZE_REGEX`, the Split in the
# Qwen2.5 tokenizer.json and dashscope's PAT_STR all agree). It differs from TikTokenConverter's default
# (GPT-4's cl100k pattern) in splitting digits one at a time: `\p{N}`, not `\p{N}{1,3}`.
QWEN_SPLIT_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
QWEN_RANK_COUNT = 151_643
ENDOFTEXT = "<|endoftext|>"
MODEL_MAX_LENGTH = 32_768

# Qwen2.5's added tokens in id order, as in its tokenizer_config.json `added_tokens_decoder`:
# (content, special). The tool-call / FIM / repo tokens are added but not "special" there, so
# `decode(..., skip_special_tokens=True)` keeps them; we copy that.
QWEN25_ADDED_TOKENS: tuple[tuple[str, bool], ...] = (
    (ENDOFTEXT, True),  # 151643
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),  # 151656
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),  # 151664
)
QWEN25_ADDED_TOKEN_IDS: dict[str, int] = {
    content: QWEN_RANK_COUNT + offset for offset, (content, _) in enumerate(QWEN25_ADDED_TOKENS)
}

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
"""What a reader of a tokenizer folder needs: a cache entry without them is incomplete and rebuilt."""

# Bump when the recipe below changes, so old cache entries are no longer picked up.
_RECIPE_VERSION = "1"


RANKS_ENV = "SENTIMENT_RAY_QWEN_RANKS"
"""A `qwen.tiktoken` file to build the tokenizer from instead of dashscope's (a machine without dashscope: the GPU
check's bundle ships the file, scripts/gpu_check.sh)."""


def dashscope_ranks_file() -> Path:
    """Path of `qwen.tiktoken`: $SENTIMENT_RAY_QWEN_RANKS, else the one inside the installed `dashscope` package
    (found without importing it)."""
    if os.environ.get(RANKS_ENV):
        return Path(os.environ[RANKS_ENV])
    # find_spec locates the package without running dashscope's heavy __init__.
    spec = importlib.util.find_spec("dashscope")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "The offline Qwen tokenizer needs the `dashscope` package (it ships qwen.tiktoken): "
            "pip install 'sentiment-ray[offline]' (or load the tokenizer from the Hub: --model Qwen/Qwen2.5-1.5B)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "resources" / "qwen.tiktoken"


def read_qwen_ranks(ranks_file: str | os.PathLike) -> dict[bytes, int]:
    """Parse a `.tiktoken` file (`<base64 token> <rank>` per line) and check it is Qwen's."""
    path = Path(ranks_file)
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise ModelLoadError(f"Cannot read Qwen's BPE ranks at {path}: {exc}. Reinstall `dashscope`.") from exc
    try:
        ranks = {
            base64.b64decode(token, validate=True): int(rank) for token, rank in (ln.split() for ln in lines if ln)
        }
    except (ValueError, binascii.Error) as exc:
        raise ModelLoadError(f"{path} is not a tiktoken BPE file: {exc}") from exc
    # Special token ids start right after the ranks, so anything but exactly 0..151642 would shift them.
    if len(ranks) != QWEN_RANK_COUNT or sorted(ranks.values()) != list(range(QWEN_RANK_COUNT)):
        raise ModelLoadError(f"{path} has {len(ranks)} ranks, expected Qwen's 0..{QWEN_RANK_COUNT - 1}.")
    return ranks


def qwen_tokenizer_dir(ranks_file: str | os.PathLike | None = None) -> Path:
    """The cached tokenizer folder (tokenizer.json + tokenizer_config.json), built first if missing.

    The folder name hashes the rank file's bytes and the library versions, so upgrading `dashscope`,
    `tokenizers` or `transformers` builds a fresh entry instead of reusing a stale one.
    """
    path = Path(ranks_file) if ranks_file is not None else dashscope_ranks_file()
    if not path.is_file():
        raise ModelLoadError(
            f"Qwen's BPE rank file {path} is missing. Reinstall `dashscope` (pip install 'sentiment-ray[offline]')."
        )
    import tokenizers
    import transformers

    key = short_hash([_RECIPE_VERSION, path.read_bytes(), tokenizers.__version__, transformers.__version__])
    target = sentiment_ray_cache_dir() / "tokenizers" / f"qwen2.5-{key}"
    return cached_directory(
        target, TOKENIZER_FILES, lambda tmp: _qwen_fast_tokenizer(read_qwen_ranks(path)).save_pretrained(tmp)
    )


def build_qwen_tokenizer(ranks_file: str | os.PathLike | None = None) -> PreTrainedTokenizerFast:
    """Qwen2.5's tokenizer, offline: eos = pad = `<|endoftext|>` (151643), no BOS, left padding.

    It is a `transformers.Qwen2Tokenizer` (a `PreTrainedTokenizerFast`), the class `AutoTokenizer` gives
    for the real Qwen2.5 and for any folder whose config.json says qwen2, so code sees one class everywhere.
    `ranks_file` defaults to dashscope's `qwen.tiktoken`. Each call returns a new object (callers change
    settings such as `padding_side` on it), loaded from the on-disk cache.
    """
    from transformers import Qwen2Tokenizer

    folder = qwen_tokenizer_dir(ranks_file)
    try:
        return Qwen2Tokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as exc:  # a damaged cache entry: say which folder to delete
        raise ModelLoadError(
            f"Cannot load the cached Qwen tokenizer in {folder} ({exc}); delete it to rebuild."
        ) from exc


def _qwen_fast_tokenizer(ranks: dict[bytes, int]) -> PreTrainedTokenizerFast:
    from transformers import Qwen2Tokenizer

    # Loading rebuilds the BPE from tokenizer.json's vocab and merges without the converter's
    # `ignore_merges` shortcut; that is harmless because every Qwen token is reachable through merges.
    return Qwen2Tokenizer(
        tokenizer_object=_qwen_backend(ranks),
        bos_token=None,
        eos_token=ENDOFTEXT,
        pad_token=ENDOFTEXT,
        unk_token=None,  # byte-level BPE covers every byte, so nothing is ever unknown
        extra_special_tokens=[content for content, special in QWEN25_ADDED_TOKENS[1:] if special],
        padding_side="left",  # decoder-only models read the last position, so pad on the left
        model_max_length=MODEL_MAX_LENGTH,
        clean_up_tokenization_spaces=False,  # otherwise decode would drop spaces before punctuation
    )


def _qwen_backend(ranks: dict[bytes, int]) -> Tokenizer:
    """The `tokenizers` pipeline: NFC -> regex split -> byte-level BPE, plus the added tokens."""
    from tokenizers import AddedToken, normalizers
    from transformers.convert_slow_tokenizer import TikTokenConverter

    converter = TikTokenConverter(vocab_file="qwen.tiktoken", pattern=QWEN_SPLIT_PATTERN)
    # Hand over the ranks we already parsed and checked: the converter's own loader goes through
    # tiktoken's download cache, which is keyed by path and would serve a stale copy after an upgrade.
    converter.load_tiktoken_bpe = lambda _path: ranks
    backend = converter.converted()
    # Qwen2's tokenizer NFC-normalizes text first (Qwen2Tokenizer and dashscope's encoder both do).
    backend.normalizer = normalizers.NFC()
    for content, special in QWEN25_ADDED_TOKENS:
        backend.add_tokens([AddedToken(content, special=special, normalized=False)])
        if backend.token_to_id(content) != QWEN25_ADDED_TOKEN_IDS[content]:
            raise ModelLoadError(f"{content} got id {backend.token_to_id(content)}, not Qwen's.")
    return backend
