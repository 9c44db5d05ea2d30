"""Streaming reader of JSON input: NDJSON, a JSON array, or one (or several concatenated)
JSON documents, from a binary stream read in bounded pieces. Memory stays flat whatever
the input: no line, element or document is held beyond the record size limit. Each
document is yielded with its source and starting line, so a bad one is reported and kept
(its raw text) without stopping the good ones.

JSON is RFC 8259 and a little stricter: NaN and Infinity, duplicate keys in one object,
integers beyond 64 bits, numbers that overflow a double, unpaired UTF-16 surrogates and
nesting deeper than `MAX_DEPTH` are each a reject of that record, never a crash: they are
what a broken exporter sends, and the database (or the next reader of the data) would
refuse them later, far from their line number.
"""
from __future__ import annotations

import codecs
import io
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

MAX_RECORD_BYTES = 1024 * 1024  # default of the `[ingest] max_record_size` setting
MAX_DEPTH = 100  # arrays and objects inside one another
PIECE_BYTES = 64 * 1024  # what one read of the input returns at most
_INT64 = 2**63

NUL_REASON = "contains a NUL character, which the database cannot store"
DEPTH_REASON = f"invalid JSON: nested deeper than {MAX_DEPTH} levels"
_WHITESPACE = " \t\r\n"


@dataclass(slots=True)
class Document:
    source: str
    line: int
    text: bytes | str | None  # the raw text, kept for a reject
    value: Any = None
    error: str | None = None


class _Refused(ValueError):
    """Valid JSON syntax that nocctl does not take (the message is the reason)."""


def _constant(name: str) -> Any:
    raise _Refused(f"invalid JSON: {name} is not a number in JSON (RFC 8259)")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Refused(f"number {text[:40]} is too large")
    return value


def _int(text: str) -> int:
    if len(text) < 19:  # the common case: fits in 64 bits for certain
        return int(text)
    if len(text) > 20 or not -_INT64 <= (value := int(text)) < _INT64:
        raise _Refused(f"integer {text[:40]}{'…' if len(text) > 40 else ''} does not fit in 64 bits")
    return value


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _Refused(f"invalid JSON: duplicate key {twice!r} in one object")
    return value


_decoder = json.JSONDecoder(parse_float=_float, parse_int=_int, parse_constant=_constant, object_pairs_hook=_object)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_NUL_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")  # \u0000 itself, not an escaped backslash before u0000
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # what the surrogateescape error handler makes of bad bytes


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > deepest:
            deepest = depth
        children = item.values() if type(item) is dict else item
        stack.extend((child, depth + 1) for child in children if type(child) in (dict, list))
    return deepest


def _check(text: str, value: Any) -> str | None:
    """Why a parsed value cannot be taken, or None. Cheap unless the text could be bad."""
    if "\x00" in text or ("\\u0000" in text and _NUL_ESCAPE.search(text)):
        return NUL_REASON  # PostgreSQL text and jsonb refuse it, raw or escaped
    if type(value) in (dict, list) and text.count("{") + text.count("[") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        return DEPTH_REASON
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return "invalid JSON: an unpaired UTF-16 surrogate escape (\\uD800–\\uDFFF) is not text"
    return None


def _reason(exc: Exception, start: int | None = None) -> str:
    """The one-line reason of a parse error; `start`: where the record began in the text
    parsed (an array element or document), so the position is the record's own."""
    if isinstance(exc, RecursionError):
        return DEPTH_REASON
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, json.JSONDecodeError):
        if start is None:
            return f"invalid JSON: {exc.msg} (column {exc.colno})"
        return f"invalid JSON: {exc.msg} (character {exc.pos - start + 1} of the record)"
    if isinstance(exc, _Refused):
        return str(exc)
    return f"invalid JSON: {exc}"


def _raw(data: bytes | str) -> str:
    """Text to keep for a reject: undecodable bytes and NULs written as escapes."""
    if isinstance(data, str):
        if _UNDECODABLE.search(data):  # bytes the buffers carried along as surrogateescape
            data = data.encode("utf-8", "surrogateescape")
        else:
            return data.replace("\x00", "\\x00")
    return data.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")


def raw_text(raw: Any) -> str:
    """A record's raw form as text for the dead letters: input bytes decoded (undecodable
    ones escaped), a JSON item serialised."""
    if raw is None:
        return ""
    if isinstance(raw, (bytes, str)):
        return _raw(raw).rstrip("\r\n")
    if isinstance(raw, tuple) and hasattr(raw, "_asdict"):  # a ready-made record (the snapshot pass's): its fields
        raw = {k: v for k, v in raw._asdict().items() if v is not None and k not in ("keys", "suppressed")}
    return json.dumps(raw, ensure_ascii=False, default=str)


def size_text(size: int) -> str:
    """1048576 -> '1 MiB', 65536 -> '64 KiB', else bytes."""
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size:,} bytes"


def oversize_reason(size: int, limit: int, complete: bool = True) -> str:
    what = f"{size:,} bytes" if complete else f"more than {size:,} bytes"
    return (f"record of {what} is larger than the {size_text(limit)} limit (setting ingest.max_record_size);"
            f" its first {size_text(limit)} is kept")


def parse_line(line: bytes) -> Any:
    """One NDJSON line (UTF-8): the value, or ValueError/RecursionError."""
    return _decoder.decode(line.decode("utf-8"))


def pieces(stream: io.BufferedIOBase | Any, size: int = PIECE_BYTES) -> Iterator[bytes]:
    """A binary stream as pieces of at most `size` bytes that end at a line break when one
    comes sooner, so neither a long line nor a file without line breaks is read whole."""
    return iter(lambda: stream.readline(size), b"")


def read_documents(chunks: Iterable[bytes], source: str, max_record: int = MAX_RECORD_BYTES) -> Iterator[Document]:
    """Yield the JSON documents of a byte stream given as lines or as pieces of lines
    (`pieces(stream)`; a binary file iterates as lines)."""
    reading = _Input(iter(chunks), max_record)
    first = reading.first_content()
    if first is None:
        return
    if first.lstrip().startswith(b"["):
        reading.push(first)
        yield from _Values(reading, source, array=True).documents()
        return
    reading.push(first)
    if first.lstrip().startswith(b"{"):
        number = reading.line + 1
        line, size = reading.next_line()
        if size > max_record:  # cut to the limit: it cannot be read again
            yield Document(source, number, _raw(line).rstrip("\r\n"), error=oversize_reason(size, max_record))
        else:
            reading.push(line)
            if _begins_documents(line):
                yield from _Values(reading, source, array=False).documents()
                return
    yield from _ndjson(reading, source)


def _begins_documents(line: bytes) -> bool:
    """Whether a first line starting with { begins pretty-printed documents (or several on one
    line) rather than NDJSON: it does not parse because the parser ran out of text, or read a
    whole document with more after it."""
    try:
        parse_line(line)
    except json.JSONDecodeError as exc:
        return exc.msg == "Extra data" or exc.pos >= len(exc.doc.rstrip())
    except (ValueError, RecursionError):
        return False
    return False


def _checked(source: str, number: int, raw: bytes | str, value: Any, text: str) -> Document:
    """The document of a parsed value; `raw` is kept for a reject, `text` is it decoded."""
    reason = _check(text, value)
    if reason is not None:
        return Document(source, number, _raw(raw).rstrip("\r\n"), error=reason)
    return Document(source, number, raw, value)


class _Input:
    """The input's pieces, with one piece of look-back and the count of line breaks read."""

    def __init__(self, chunks: Iterator[bytes], limit: int):
        self.chunks, self.limit = chunks, limit
        self.pushed: list[bytes] = []
        self.line = 0  # line breaks handed out so far
        self.started = False

    def piece(self) -> bytes | None:
        piece: bytes | None
        if self.pushed:
            piece = self.pushed.pop()
        else:
            piece = next(self.chunks, None)
            if piece is None:
                return None
            if not self.started:
                self.started = True
                if piece.startswith(b"\xef\xbb\xbf"):
                    piece = piece[3:]  # a UTF-8 byte-order mark (Windows editors, PowerShell)
        self.line += piece.count(b"\n")
        return piece

    def push(self, piece: bytes) -> None:
        self.line -= piece.count(b"\n")
        self.pushed.append(piece)

    def first_content(self) -> bytes | None:
        """The first piece that is not blank (blank lines before it are skipped)."""
        while (piece := self.piece()) is not None:
            if piece.strip():
                return piece
        return None

    def next_line(self) -> tuple[bytes, int]:
        """(the line, its size); a line over the limit comes back cut to the limit, its
        size the whole line's."""
        keep = self.limit + 1  # the record and its line break
        parts, size, ended = [], 0, False
        while (piece := self.piece()) is not None:
            if size < keep:
                parts.append(piece[:keep - size])
            size += len(piece)
            if piece.endswith(b"\n"):
                ended = True
                break
        # The size is the record's, without its line break: a record of exactly the limit is
        # taken. A cut line loses its break; the newline count stays right (the piece counted it).
        size -= ended
        line = b"".join(parts)
        return (line[:self.limit] if size > self.limit else line), size


def _ndjson(reading: _Input, source: str) -> Iterator[Document]:
    limit = reading.limit
    while True:
        number = reading.line + 1
        line, size = reading.next_line()
        if not line:  # the end (a blank line still holds its break)
            return
        if size > limit:
            yield Document(source, number, _raw(line).rstrip("\r\n"), error=oversize_reason(size, limit))
            continue
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
            value = _decoder.decode(text)
        except (ValueError, RecursionError) as exc:
            yield Document(source, number, _raw(line).rstrip("\r\n"), error=_reason(exc))
            continue
        yield _checked(source, number, line, value, text)


# Outside strings: what opens or closes a value, or separates two; inside: what ends one.
_STRUCTURE = re.compile(r'["\[\]{},]')
_STRING_END = re.compile(r'["\\]')
_AFTER_SCALAR = (" ", "\t", "\r", "\n", ",", "]", "}")  # what can end a number or literal


class _Kept:
    """The raw text of a rejected value as it is consumed: its first `limit` characters, and
    its whole size in bytes."""

    def __init__(self, limit: int):
        self.limit, self.size = limit, 0
        self.parts: list[str] = []

    def add(self, taken: str) -> None:
        if self.size < self.limit:
            self.parts.append(taken[:self.limit - self.size])
        self.size += len(taken.encode("utf-8", "surrogateescape"))

    def text(self) -> str:
        return "".join(self.parts)


class _Scan:
    """Where an array element ends, by a structural scan fed the text as it comes: where
    its brackets (outside strings) balance, or at a comma or ] outside them."""

    def __init__(self) -> None:
        self.depth, self.in_string, self.escaped, self.done = 0, False, False, False

    def feed(self, buffer: str, i: int) -> int:
        """Scan `buffer` from `i`; where the scan stopped: the element's end once `done`."""
        if self.escaped and i < len(buffer):
            i, self.escaped = i + 1, False
        while i < len(buffer) and not self.done:
            found = (_STRING_END if self.in_string else _STRUCTURE).search(buffer, i)
            if found is None:
                return len(buffer)
            char, i = found.group(), found.end()
            if self.in_string:
                if char == "\\":
                    if i < len(buffer):
                        i += 1
                    else:
                        self.escaped = True
                else:
                    self.in_string = False
            elif char == '"':
                self.in_string = True
            elif char in "[{":
                self.depth += 1
            elif self.depth > 0 and char in "]}":
                self.depth -= 1
                self.done = self.depth == 0
            elif self.depth == 0 and char in ",]":
                i, self.done = found.start(), True  # a scalar, or a stray bracket, ends here
        return i


class _Values:
    """The values of a top-level array (`array`), or concatenated documents, parsed from a
    text buffer that holds what is not consumed yet and never much more than one record.
    A value that cannot be parsed is skipped to its end by a structural scan (brackets
    outside strings), so one broken or oversized element costs only itself."""

    def __init__(self, reading: _Input, source: str, array: bool):
        self.reading, self.source, self.array = reading, source, array
        self.limit = reading.limit
        # Bad bytes become lone surrogates, so a value holding them is told apart (and its raw
        # text written back as the bytes were) instead of failing to parse for a strange reason.
        self.decode = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape").decode
        self.buffer, self.pos = "", 0
        self.line = reading.line + 1  # line number of buffer[pos]
        self.exhausted = False

    def more(self) -> bool:
        """Append the next piece to the buffer (dropping what was consumed)."""
        piece = self.reading.piece()
        if piece is None:
            if not self.exhausted:
                self.exhausted = True
                self.buffer = self.buffer[self.pos:] + self.decode(b"", final=True)
                self.pos = 0
            return False
        self.buffer = self.buffer[self.pos:] + self.decode(piece)
        self.pos = 0
        return True

    def read_to_end_of_value(self) -> bool:
        """Read on until the buffer holds the whole value at pos (its brackets balance outside
        strings) or the record size limit; False if nothing more could be read. Each piece is
        scanned once, so a long pretty-printed document is parsed twice, not at every line."""
        scan, read = _Scan(), False
        i = scan.feed(self.buffer, self.pos) - self.pos
        while not scan.done and len(self.buffer) - self.pos <= self.limit and self.more():
            read = True
            i = scan.feed(self.buffer, i)
        return read

    def advance(self, end: int) -> None:
        self.line += self.buffer.count("\n", self.pos, end)
        self.pos = end

    def skip_blank(self, separators: str) -> bool:
        """Move past whitespace (and separators); False at the end of the input."""
        while True:
            buffer, pos = self.buffer, self.pos
            while pos < len(buffer) and buffer[pos] in separators:
                pos += 1
            self.advance(pos)
            if pos < len(buffer):
                return True
            if not self.more():
                return False

    def documents(self) -> Iterator[Document]:
        if self.array:
            self.skip_blank(_WHITESPACE)
            self.advance(self.pos + 1)  # the [
        separators = _WHITESPACE + "," if self.array else _WHITESPACE
        while True:
            if not self.skip_blank(separators):
                if self.array and not self.cut_off:
                    yield Document(self.source, self.line, "", error="invalid JSON: the array is not closed with ]")
                return
            if self.array and self.buffer[self.pos] == "]":
                yield from self.trailing()
                return
            yield self.value()

    cut_off = False  # the last value ran into the end of the input

    def value(self) -> Document:
        while True:
            try:
                value, end = _decoder.raw_decode(self.buffer, self.pos)
            except (ValueError, RecursionError) as exc:
                if self.read_to_end_of_value():
                    continue  # the value goes on in the next pieces
                reason = _reason(exc, self.pos)
                return self.skip_element(reason) if self.array else self.skip_document(reason)
            if (not isinstance(value, (dict, list, str)) and self.buffer[end:end + 1] not in _AFTER_SCALAR
                    and len(self.buffer) - self.pos <= self.limit and self.more()):
                continue  # a number (0 of 0.5) or literal may go on in the next piece
            if end - self.pos > self.limit:
                return self.skip_element(None) if self.array else self.skip_document(None)
            line, text = self.line, self.buffer[self.pos:end]
            self.advance(end)
            if _UNDECODABLE.search(text):
                return Document(self.source, line, _raw(text), error="not UTF-8 text")
            return _checked(self.source, line, text, value, text)

    def take(self, kept: _Kept, end: int) -> None:
        """Consume the buffer up to `end` into a rejected value."""
        kept.add(self.buffer[self.pos:end])
        self.advance(end)

    def skip_element(self, reason: str | None) -> Document:
        """Reject the array element at pos: consume it to its end (`_Scan`), keeping at most
        `limit` of it."""
        line, kept, scan = self.line, _Kept(self.limit), _Scan()
        while True:
            self.take(kept, scan.feed(self.buffer, self.pos))
            if scan.done or not self.more():
                break
        self.cut_off = not scan.done
        return self.rejected(line, kept, reason)

    def skip_document(self, reason: str | None) -> Document:
        """Reject the document at pos: it ends where a line starts with { or [ (pretty
        printers indent what is inside a document), or with the input."""
        line, kept = self.line, _Kept(self.limit)
        at_line_start = False
        while True:
            if self.pos >= len(self.buffer) and not self.more():
                break
            buffer = self.buffer
            if at_line_start and buffer[self.pos] in "[{":
                break
            newline = buffer.find("\n", self.pos)
            end = len(buffer) if newline < 0 else newline + 1
            self.take(kept, end)
            at_line_start = newline >= 0
        return self.rejected(line, kept, reason)

    def rejected(self, line: int, kept: _Kept, reason: str | None) -> Document:
        """The reject of a consumed value: `reason`, or None when it was too large."""
        joined = kept.text()
        text = _raw(joined).rstrip("\r\n")
        if kept.size > self.limit or reason is None:
            return Document(self.source, line, text, error=oversize_reason(kept.size, self.limit))
        if _UNDECODABLE.search(joined):
            return Document(self.source, line, text, error="not UTF-8 text")
        return Document(self.source, line, text, error=reason)

    def trailing(self) -> Iterator[Document]:
        """After the closing ]: anything but whitespace is kept as one reject (bounded)."""
        self.advance(self.pos + 1)
        if not self.skip_blank(_WHITESPACE):
            return
        line, kept = self.line, _Kept(self.limit)
        while True:
            self.take(kept, len(self.buffer))
            if not self.more():
                break
        text = _raw(kept.text()).rstrip()
        reason = "unexpected text after the closing ]" if kept.size <= self.limit else (
            "unexpected text after the closing ]; " + oversize_reason(kept.size, self.limit))
        yield Document(self.source, line, text, error=reason)
