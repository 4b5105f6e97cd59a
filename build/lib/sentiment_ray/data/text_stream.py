"""Bytes → text for review files: encoding detection, streaming decode, physical lines, RFC 4180 record counts.

Encodings (`--encoding auto`): a byte-order mark first (UTF-8, UTF-16, UTF-32), then UTF-8 (when at most
1 character in 100 of the first MiB is a stray byte; a GBK file read as UTF-8 has far more), then
charset-normalizer on the first MiB. The product reads Chinese reviews, so when the detector names any
East-Asian multi-byte codec and GB18030 decodes the sample, GB18030 is used: it is a superset of GBK and
GB2312, which Windows Excel writes for Chinese text, and short Chinese samples are often guessed as
Korean cp949. Bytes that do not decode are kept as lone surrogates (`surrogateescape`), so that one bad
record gets an error of its own instead of failing the file.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterator

from sentiment_ray.errors import DataError

SAMPLE_BYTES = 1 << 20
_BOMS = (  # UTF-32 before UTF-16: the UTF-32-LE mark starts with the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_EAST_ASIAN = {
    "gb2312", "gbk", "gb18030", "hz", "big5", "big5hkscs", "cp950", "cp949", "euc_kr", "johab",
    "euc_jp", "shift_jis", "cp932", "iso2022_jp", "iso2022_kr",
}  # fmt: skip


class _Prefixed(io.RawIOBase):
    """`head` followed by the rest of `stream`: detection reads a sample without losing it."""

    def __init__(self, head: bytes, stream):
        self.head, self.stream = head, stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.head[: len(buffer)] if self.head else self.stream.read(len(buffer))
        self.head = self.head[len(data) :] if self.head else b""
        buffer[: len(data)] = data
        return len(data)


def decoded_text(stream, name: str, encoding: str = "auto") -> tuple[io.TextIOBase, str]:
    """(text stream, codec name) for the binary `stream` of file `name`."""
    head = stream.read(SAMPLE_BYTES) or b""
    chosen = detect_encoding(head, name, complete=len(head) < SAMPLE_BYTES) if encoding == "auto" else encoding
    chosen = _checked_codec(chosen, head, name)
    raw = io.BufferedReader(_Prefixed(head, stream), buffer_size=SAMPLE_BYTES)
    return io.TextIOWrapper(raw, encoding=chosen, errors="surrogateescape", newline=""), chosen


def _checked_codec(encoding: str, head: bytes, name: str) -> str:
    try:
        canonical = codecs.lookup(encoding).name
    except LookupError:
        raise DataError(f"{name}: unknown encoding {encoding!r} (--encoding); e.g. utf-8, gb18030, utf-16") from None
    if canonical == "utf-8" and head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"  # the BOM is not part of the first column's name
    return canonical


def detect_encoding(head: bytes, name: str, complete: bool) -> str:
    """The codec of a file whose first bytes are `head` (`complete`: `head` is the whole file)."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec
    if _mostly_utf8(head, complete):
        return "utf-8"
    import charset_normalizer

    best = charset_normalizer.from_bytes(head).best()
    if best is None:
        raise DataError(f"{name}: cannot tell its text encoding; name it with --encoding (e.g. gb18030, utf-16)")
    if best.encoding in _EAST_ASIAN and _decodes(head, "gb18030", complete):
        return "gb18030"
    return best.encoding


def _mostly_utf8(head: bytes, complete: bool) -> bool:
    """UTF-8 but for a few stray bytes (at most 1 in 100 characters): those records get errors of their own."""
    text = codecs.getincrementaldecoder("utf-8")("surrogateescape").decode(head, final=complete)
    stray = sum(1 for ch in text if "\udc80" <= ch <= "\udcff")
    return stray <= len(text) / 100


def _decodes(data: bytes, codec: str, complete: bool) -> bool:
    try:
        codecs.getincrementaldecoder(codec)().decode(data, final=complete)
    except UnicodeDecodeError:
        return False
    return True


def physical_lines(text: io.TextIOBase, chunk_chars: int = 1 << 20) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) split at "\\n" only, with a trailing "\\r" removed (CRLF files).

    A lone "\\r" or U+2028 inside a text is part of the line, not a break: `str.splitlines` would break there.
    """
    pending, number = "", 0
    while chunk := text.read(chunk_chars):
        *lines, pending = (pending + chunk).split("\n")
        for line in lines:
            number += 1
            yield number, line[:-1] if line.endswith("\r") else line
    if pending:
        yield number + 1, pending[:-1] if pending.endswith("\r") else pending


def rfc4180_record_count(text: io.TextIOBase, delimiter: str, chunk_chars: int = 1 << 20) -> int:
    """Non-blank RFC 4180 records in `text` (the header included), by a state machine apart from the csv module.

    A quote opens a quoted field only at a field's start; inside, a doubled quote is a quote, and line breaks
    and delimiters are text. A record whose fields are all empty or white space is blank, as the parser says.
    """
    special = re.compile(f'["\\n{re.escape(delimiter)}]')
    counter = _RecordCounter(delimiter)
    while chunk := text.read(chunk_chars):
        counter.feed(chunk, special)
    return counter.finish()


class _RecordCounter:
    FIELD_START, UNQUOTED, QUOTED, QUOTE_IN_QUOTED = range(4)

    def __init__(self, delimiter: str):
        self.delimiter, self.state, self.content, self.records = delimiter, self.FIELD_START, False, 0

    def feed(self, chunk: str, special: re.Pattern) -> None:
        position = 0
        for match in special.finditer(chunk):
            self._plain(chunk[position : match.start()])
            self._special(match.group())
            position = match.end()
        self._plain(chunk[position:])

    def _plain(self, run: str) -> None:
        if not run:
            return
        self.content = self.content or bool(run.strip())
        if self.state in (self.FIELD_START, self.QUOTE_IN_QUOTED):
            self.state = self.UNQUOTED  # csv (not strict) keeps a character after a closing quote as text

    def _special(self, char: str) -> None:
        if self.state == self.QUOTED:
            self.state = self.QUOTE_IN_QUOTED if char == '"' else self.QUOTED
            self.content = self.content or char == self.delimiter  # a quoted delimiter is text
            return
        if char == '"':
            self.content = self.content or self.state == self.QUOTE_IN_QUOTED  # "" inside quotes is a quote
            self.state = self.QUOTED if self.state in (self.FIELD_START, self.QUOTE_IN_QUOTED) else self.UNQUOTED
        elif char == self.delimiter:
            self.state = self.FIELD_START
        else:  # a line break outside quotes ends the record
            self._end_record()

    def _end_record(self) -> None:
        self.records += self.content
        self.state, self.content = self.FIELD_START, False

    def finish(self) -> int:
        self._end_record()
        return self.records
