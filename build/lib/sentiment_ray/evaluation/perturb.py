"""Seeded, reproducible text perturbations of Chinese reviews, for robustness evaluation.

Each perturbation is a function `(text, rng) -> text` registered in `PERTURBATIONS`. `perturb_all` gives
every row its own `random.Random` derived from (seed, name, row index), so a row's perturbed text does not
depend on batch order, on the other rows or on the process (string seeds are hashed with SHA-512 by
`random.Random`, independent of PYTHONHASHSEED). Every function returns "" for "" and changes every text
that contains something it can change (with rare exceptions noted per function).

- synonym: swaps words from `SYNONYM_PAIRS`, our own small table of sentiment-preserving pairs, used in both
  directions. We wrote it because no maintained Chinese synonym library works offline here: `synonyms`
  (chatopera, 3.25) installs from PyPI but downloads its word vectors on first import, behind a purchased
  licence key; the other candidates are unmaintained or need a model download as well.
- typo: character noise (duplicate / delete / swap adjacent), about 5% of characters, at least one edit.
- punctuation: full-width <-> ASCII punctuation, or drop / add a trailing ！ or 。.
- traditional: simplified -> traditional Chinese with OpenCC's `s2t` (opencc-python-reimplemented).
  Deterministic; texts with no convertible character (or already traditional) are left as they are.
- width: full-width <-> half-width for ASCII letters, digits, punctuation and space (U+FF01–U+FF5E,
  U+3000). Deterministic; every convertible character flips width.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence

# Word pairs whose swap keeps the review's polarity: mostly neutral nouns, verbs and connectives from
# product / hotel / book reviews, plus a few degree adverbs. Each word appears in one pair only; both
# directions are used, so the table is ~80 one-way substitutions.
SYNONYM_PAIRS: tuple[tuple[str, str], ...] = (
    ("很", "非常"),
    ("东西", "物品"),
    ("买", "购买"),
    ("快递", "物流"),
    ("酒店", "宾馆"),
    ("房间", "客房"),
    ("价格", "价钱"),
    ("服务员", "服务生"),
    ("质量", "品质"),
    ("电脑", "计算机"),
    ("笔记本", "手提电脑"),
    ("屏幕", "显示屏"),
    ("早餐", "早饭"),
    ("晚上", "夜里"),
    ("朋友", "友人"),
    ("觉得", "感觉"),
    ("比较", "相对"),
    ("真的", "确实"),
    ("特别", "格外"),
    ("马上", "立刻"),
    ("现在", "目前"),
    ("以后", "之后"),
    ("所以", "因此"),
    ("但是", "不过"),
    ("而且", "并且"),
    ("因为", "由于"),
    ("如果", "假如"),
    ("可能", "也许"),
    ("附近", "周边"),
    ("商家", "卖家"),
    ("收到", "拿到"),
    ("发货", "出货"),
    ("小时", "钟头"),
    ("孩子", "小孩"),
    ("宝贝", "商品"),
    ("作者", "著者"),
    ("味道", "口味"),
    ("总体", "整体"),
    ("前台", "接待处"),
    ("电视", "电视机"),
    ("肯定", "一定"),
    ("位置", "地段"),
)
SYNONYMS: dict[str, str] = {**dict(SYNONYM_PAIRS), **{b: a for a, b in SYNONYM_PAIRS}}
_SYNONYM_LENGTHS = sorted({len(w) for w in SYNONYMS}, reverse=True)  # longest match first

# Full-width punctuation common in Chinese text and its ASCII counterpart.
_FULL_TO_ASCII_PUNCT = {"，": ",", "。": ".", "！": "!", "？": "?", "：": ":", "；": ";", "（": "(", "）": ")"}
_ASCII_TO_FULL_PUNCT = {v: k for k, v in _FULL_TO_ASCII_PUNCT.items()}
_TRAILING = ("！", "。", "!", ".", "？", "?")
TYPO_RATE = 0.05
"""Share of characters edited by `typo` (rounded, at least one edit)."""


def _find_synonyms(text: str) -> list[tuple[int, str]]:
    """Non-overlapping (start, word) matches of table words, scanning left to right, longest word first."""
    matches, i = [], 0
    while i < len(text):
        word = next((text[i : i + n] for n in _SYNONYM_LENGTHS if text[i : i + n] in SYNONYMS), None)
        if word is None:
            i += 1
        else:
            matches.append((i, word))
            i += len(word)
    return matches


def synonym(text: str, rng: random.Random) -> str:
    """Replace each table word with its partner with probability 1/2, and at least one when any is present."""
    matches = _find_synonyms(text)
    if not matches:
        return text
    chosen = [m for m in matches if rng.random() < 0.5] or [rng.choice(matches)]
    out, last = [], 0
    for start, word in chosen:  # `chosen` keeps the left-to-right order of `matches`
        out += [text[last:start], SYNONYMS[word]]
        last = start + len(word)
    return "".join(out) + text[last:]


def typo(text: str, rng: random.Random) -> str:
    """Duplicate, delete or swap adjacent characters at ~TYPO_RATE of positions (at least one edit).

    Deletion needs two or more characters (a review never becomes empty); a swap needs two different
    neighbours; otherwise the edit is a duplication, so every non-empty text changes.
    """
    if not text:
        return text
    chars = list(text)
    for _ in range(max(1, round(TYPO_RATE * len(chars)))):
        i = rng.randrange(len(chars))
        op = rng.choice(("duplicate", "delete", "swap"))
        if op == "delete" and len(chars) > 1:
            del chars[i]
        elif op == "swap" and i + 1 < len(chars) and chars[i] != chars[i + 1]:
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        else:
            chars.insert(i, chars[i])
    result = "".join(chars)
    return result if result != text else text[0] + text  # edits that cancelled out: fall back to a duplicate


def _swappable_punct(text: str) -> list[int]:
    """Positions of punctuation we can flip; an ASCII '.' between digits (3.5) is a decimal point, not flipped."""
    positions = []
    for i, ch in enumerate(text):
        if ch in _FULL_TO_ASCII_PUNCT:
            positions.append(i)
        elif ch in _ASCII_TO_FULL_PUNCT:
            decimal = ch == "." and 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit()
            if not decimal:
                positions.append(i)
    return positions


def punctuation(text: str, rng: random.Random) -> str:
    """Either flip full-width <-> ASCII punctuation (each mark with probability 1/2, at least one) or change
    the ending: drop a trailing ！/。/?… or add ！ / 。. A text without punctuation always gets an ending."""
    if not text:
        return text
    positions = _swappable_punct(text)
    if positions and rng.random() < 0.5:
        chosen = {p for p in positions if rng.random() < 0.5} or {rng.choice(positions)}
        flip = {**_FULL_TO_ASCII_PUNCT, **_ASCII_TO_FULL_PUNCT}
        return "".join(flip[ch] if i in chosen else ch for i, ch in enumerate(text))
    if text[-1] in _TRAILING and len(text) > 1:
        return text[:-1]
    return text + rng.choice(("！", "。"))


@functools.lru_cache(maxsize=1)
def _s2t_converter():
    """OpenCC loads its dictionaries on construction (~0.1 s), so we build it once, on first use."""
    from opencc import OpenCC

    return OpenCC("s2t")


def traditional(text: str, rng: random.Random) -> str:
    """Simplified → traditional characters (OpenCC s2t), e.g. 东西很好 → 東西很好. Deterministic: `rng` is unused."""
    return _s2t_converter().convert(text) if text else text


_FULLWIDTH_OFFSET = 0xFEE0  # U+FF01..U+FF5E are U+0021..U+007E shifted by this
_IDEOGRAPHIC_SPACE = "\u3000"


def _flip_width(ch: str) -> str:
    code = ord(ch)
    if 0x21 <= code <= 0x7E:
        return chr(code + _FULLWIDTH_OFFSET)
    if 0xFF01 <= code <= 0xFF5E:
        return chr(code - _FULLWIDTH_OFFSET)
    if ch == " ":
        return _IDEOGRAPHIC_SPACE
    if ch == _IDEOGRAPHIC_SPACE:
        return " "
    return ch


def width(text: str, rng: random.Random) -> str:
    """Flip every ASCII letter / digit / punctuation / space to full width and vice versa (ABC123 ↔ ＡＢＣ１２３).

    Deterministic: `rng` is unused. Chinese full-width ，！？：；（） lie in U+FF01–U+FF5E and so become ASCII
    too; 。、 do not.
    """
    return "".join(_flip_width(ch) for ch in text)


Perturbation = Callable[[str, random.Random], str]
PERTURBATIONS: dict[str, Perturbation] = {
    "synonym": synonym,
    "typo": typo,
    "punctuation": punctuation,
    "traditional": traditional,
    "width": width,
}


def perturb_all(texts: Sequence, name: str, seed: int, start_index: int = 0) -> list:
    """Apply perturbation `name` to every text; row i uses Random(f"{seed}:{name}:{start_index + i}").

    A row's result depends only on (seed, name, its global index, its text), so scoring a dataset in
    chunks (pass each chunk's first global row index as `start_index`) gives the same texts as one pass.
    Non-string entries (None, numbers) are passed through unchanged, so the predictor can report them as
    errors in the same row as it would for the clean text.
    """
    if name not in PERTURBATIONS:
        raise KeyError(f"unknown perturbation {name!r}; known: {', '.join(PERTURBATIONS)}")
    fn = PERTURBATIONS[name]
    return [
        fn(text, random.Random(f"{seed}:{name}:{start_index + i}")) if isinstance(text, str) else text
        for i, text in enumerate(texts)
    ]
