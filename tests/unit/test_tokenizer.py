"""The offline Qwen tokenizer gives the real Qwen2.5 ids.

tiktoken serves as an independent reference: it reads the same BPE ranks but has its own BPE
implementation, and the split pattern comes from transformers' Qwen2 tokenizer, not from our module.
"""

from __future__ import annotations

import importlib.util
import random
import unicodedata

import pytest
import tiktoken
from tiktoken.load import load_tiktoken_bpe
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

from sentiment_ray.cache import atomic_directory, sentiment_ray_cache_dir
from sentiment_ray.errors import ModelLoadError
from sentiment_ray.models.tokenizer import (
    QWEN_SPLIT_PATTERN,
    build_qwen_tokenizer,
    dashscope_ranks_file,
    qwen_tokenizer_dir,
)

# Qwen2.5's added tokens as listed in its tokenizer_config.json, typed out here rather than imported.
QWEN25_SPECIAL_IDS = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
    "<|object_ref_start|>": 151646,
    "<|object_ref_end|>": 151647,
    "<|box_start|>": 151648,
    "<|box_end|>": 151649,
    "<|quad_start|>": 151650,
    "<|quad_end|>": 151651,
    "<|vision_start|>": 151652,
    "<|vision_end|>": 151653,
    "<|vision_pad|>": 151654,
    "<|image_pad|>": 151655,
    "<|video_pad|>": 151656,
    "<tool_call>": 151657,
    "</tool_call>": 151658,
    "<|fim_prefix|>": 151659,
    "<|fim_middle|>": 151660,
    "<|fim_suffix|>": 151661,
    "<|fim_pad|>": 151662,
    "<|repo_name|>": 151663,
    "<|file_sep|>": 151664,
}

PROMPT = "评论：{text}\n情感倾向："
REVIEWS = [
    "这家酒店的服务态度非常好，房间也很干净！下次还会再来。",
    "质量太差了，用了两天就坏了。。。差评",
    "Great product, 5/5 stars 👍 物流也快",
]
VARIED = [
    "",
    "I'm sure they'll say it's fine; we've seen worse. DON'T WORRY, YOU'LL SEE",
    "价格：￥1299.00元，2024年11月29日购买，12345678901234567890",
    "emoji 😀👍🏻❤️ 🇨🇳 👨‍👩‍👧 好评",
    "line one\nline two\r\n\r\nline three\n\n\n",
    "tabs\tand  double  spaces   and trailing   ",
    "  leading spaces and\u3000全角空格\u3000",
    "全角标点：，。！？【】（）《》“引号”‘单引号’、；……——",
    "ＡＢＣ１２３ full-width letters",
    "mixed中文English混合123数字abc",
    "\u00a0non-breaking\u200bzero-width\ufeffBOM",
    "Ünïcödé café naïve Ångström",
    "cafe\u0301 A\u030angstro\u0308m (decomposed)",
    "   \n  \t\n",
    "def f(x):\n    return x**2  # comment\n",
    "日本語のテキスト、한국어 텍스트, русский текст, ελληνικά",
    "!!!???...,,,~~~ @#$%^&*()",
]


@pytest.fixture(scope="module")
def qwen_cache(tmp_path_factory):
    """A private cache for this module; tiktoken's own file cache is switched off ('' disables it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SENTIMENT_RAY_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("TIKTOKEN_CACHE_DIR", "")
        yield sentiment_ray_cache_dir()


@pytest.fixture(scope="module")
def tok(qwen_cache):
    return build_qwen_tokenizer()


@pytest.fixture(scope="module")
def raw_backend(tok):
    """tokenizer.json read as-is: what loaders other than Qwen2Tokenizer (which rebuilds its pipeline) see."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(qwen_tokenizer_dir() / "tokenizer.json"))


@pytest.fixture(scope="module")
def reference(qwen_cache):
    ranks = load_tiktoken_bpe(str(dashscope_ranks_file()))
    return tiktoken.Encoding(
        name="qwen", pat_str=PRETOKENIZE_REGEX, mergeable_ranks=ranks, special_tokens=QWEN25_SPECIAL_IDS
    )


def reference_ids(reference, text: str) -> list[int]:
    # Qwen NFC-normalizes before BPE (as dashscope's tiktoken wrapper does); raw tiktoken does not.
    return reference.encode(unicodedata.normalize("NFC", text), allowed_special="all")


def test_split_pattern_is_qwen2s():
    from dashscope.tokenizers.qwen_tokenizer import PAT_STR

    assert QWEN_SPLIT_PATTERN == PRETOKENIZE_REGEX == PAT_STR


def test_label_words_and_prompt_suffix_have_qwen_ids(tok):
    assert tok("正面").input_ids == [106557]
    assert tok("负面").input_ids == [103276]
    assert tok("情感倾向：").input_ids == [104934, 103345, 5122]


@pytest.mark.parametrize("review", REVIEWS)
def test_prompt_matches_tiktoken(tok, reference, review):
    prompt = PROMPT.format(text=review)
    # Default add_special_tokens=True: also shows that no BOS/EOS is added.
    assert tok(prompt).input_ids == reference_ids(reference, prompt)


@pytest.mark.parametrize("text", VARIED)
def test_varied_text_matches_tiktoken(tok, raw_backend, reference, text):
    assert tok(text).input_ids == reference_ids(reference, text)
    assert raw_backend.encode(text).ids == reference_ids(reference, text)


def test_random_mixtures_match_tiktoken(tok, raw_backend, reference):
    rng = random.Random(0)
    pieces = [ch for text in VARIED + REVIEWS for ch in text] + [" ", "\n", "'s", "'LL", "2024", "<|im_end|>"]
    texts = ["".join(rng.choices(pieces, k=rng.randint(1, 60))) for _ in range(300)]
    expected = [reference_ids(reference, text) for text in texts]
    assert tok(texts).input_ids == expected
    assert [enc.ids for enc in raw_backend.encode_batch(texts)] == expected


def test_text_is_nfc_normalized(tok):
    composed = "café Ångström"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert tok(decomposed).input_ids == tok(composed).input_ids


def test_added_tokens_have_qwen25_ids(tok, reference):
    assert len(tok) == 151_665
    for content, token_id in QWEN25_SPECIAL_IDS.items():
        assert tok.convert_tokens_to_ids(content) == token_id
        assert tok(content).input_ids == [token_id]
    chat = "<|im_start|>user\n这个好吗？<|im_end|>\n<|im_start|>assistant\n<tool_call>{}</tool_call><|endoftext|>"
    assert tok(chat).input_ids == reference_ids(reference, chat)


def test_skip_special_tokens_matches_qwen25(tok):
    ids = tok("<|im_start|>好评<tool_call><|im_end|><|endoftext|>").input_ids
    # Qwen2.5 marks the tool-call / FIM tokens as added but not special, so they survive skipping.
    assert tok.decode(ids, skip_special_tokens=True) == "好评<tool_call>"


@pytest.mark.parametrize("text", REVIEWS + VARIED)
def test_decode_round_trips(tok, text):
    assert tok.decode(tok(text).input_ids) == unicodedata.normalize("NFC", text)


def test_pad_eos_bos_and_left_padding(tok):
    assert tok.pad_token == tok.eos_token == "<|endoftext|>"
    assert tok.pad_token_id == tok.eos_token_id == 151643
    assert tok.bos_token is None
    assert tok.padding_side == "left"
    assert tok.model_max_length >= 32_768
    batch = tok(["正面", "情感倾向："], padding=True)
    assert batch.input_ids[0] == [151643, 151643, 106557]
    assert batch.attention_mask[0] == [0, 0, 1]


def test_every_rank_is_reachable_through_merges(tok):
    # Loading drops the converter's `ignore_merges` shortcut; that only matters if some token cannot
    # be produced by merging, so check that none exists.
    model = tok.backend_tokenizer.model
    vocab = tok.backend_tokenizer.get_vocab(with_added_tokens=False)
    assert len(vocab) == 151_643
    assert [t for t in vocab if len(model.tokenize(t)) != 1] == []


def test_second_call_reuses_the_cache(tok, qwen_cache):
    folder = qwen_tokenizer_dir()
    stamp = (folder / "tokenizer.json").stat().st_mtime_ns
    again = build_qwen_tokenizer()
    assert qwen_tokenizer_dir() == folder
    assert (folder / "tokenizer.json").stat().st_mtime_ns == stamp
    entries = sorted(p.name for p in (qwen_cache / "tokenizers").iterdir() if not p.name.endswith(".lock"))
    assert entries == [folder.name]  # no temp leftovers
    assert again("负面").input_ids == [103276]


def test_missing_rank_file_is_a_clear_error(tmp_path):
    missing = tmp_path / "qwen.tiktoken"
    with pytest.raises(ModelLoadError, match="qwen.tiktoken"):
        build_qwen_tokenizer(missing)


def test_wrong_rank_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SENTIMENT_RAY_CACHE", str(tmp_path / "cache"))
    short = tmp_path / "short.tiktoken"
    short.write_bytes(b"IQ== 0\nIg== 1\n")
    with pytest.raises(ModelLoadError, match="expected Qwen's"):
        build_qwen_tokenizer(short)
    tokenizers = tmp_path / "cache" / "tokenizers"
    assert not tokenizers.exists() or [p.name for p in tokenizers.iterdir() if not p.name.endswith(".lock")] == []


def test_missing_dashscope_is_a_clear_error(monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "dashscope" else real_find_spec(name, *a)
    )
    with pytest.raises(ModelLoadError, match=r"pip install 'sentiment-ray\[offline\]'"):
        build_qwen_tokenizer()


def test_atomic_directory_keeps_the_first_writer(tmp_path):
    target = tmp_path / "entry"
    with atomic_directory(target) as tmp:
        (tmp / "who").write_text("loser")
        # Another process publishes the same entry while we are still writing ours.
        target.mkdir()
        (target / "who").write_text("winner")
    assert (target / "who").read_text() == "winner"
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]


def test_atomic_directory_publishes_nothing_on_error(tmp_path):
    target = tmp_path / "entry"
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "half").write_text("x")
        raise RuntimeError("build failed")
    assert list(tmp_path.iterdir()) == []
