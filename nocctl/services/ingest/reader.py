"""Streaming reader of JSON input: NDJSON, a JSON array, or one (or several concatenated)
JSON documents, from a binary stream. Memory stays flat for NDJSON and arrays; each
document is yielded with its source and starting line so a bad one can be reported and
kept (its raw text) without stopping the good ones."""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

# A document still not parseable after this much text is given up on (kept as a reject).
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024

_decoder = json.JSONDecoder()
_WHITESPACE = " \t\r\n"


@dataclass(slots=True)
class Document:
    source: str
    line: int
    text: bytes | str | None  # the raw text, kept for a reject
    value: Any = None
    error: str | None = None


NUL_REASON = "contains a NUL character, which the database cannot store"


def _raw(data: bytes | str) -> str:
    """Text to keep for a reject: undecodable bytes and NULs written as escapes."""
    text = data if isinstance(data, str) else data.decode("utf-8", errors="backslashreplace")
    return text.replace("\x00", "\\x00")


def raw_text(raw: Any) -> str:
    """A record's raw form as text for the dead letters: input bytes decoded (undecodable
    ones escaped), a JSON item serialised."""
    if raw is None:
        return ""
    if isinstance(raw, (bytes, str)):
        return _raw(raw).rstrip("\r\n")
    return json.dumps(raw, ensure_ascii=False, default=str)


def _has_nul(text: bytes | str) -> bool:
    """A NUL, raw or as the JSON escape \\u0000: PostgreSQL text and jsonb refuse both."""
    if isinstance(text, bytes):
        return b"\x00" in text or b"\\u0000" in text
    return "\x00" in text or "\\u0000" in text


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON: {exc.msg} (column {exc.colno})"
    return f"invalid JSON: {exc}"


def _may_continue(exc: ValueError) -> bool:
    """Whether a first line starting with { that does not parse may begin a longer document
    (pretty-printed, or several on one line) rather than be a broken NDJSON line: the parser
    ran out of text, or read a whole document with more after it."""
    return isinstance(exc, json.JSONDecodeError) and (exc.msg == "Extra data" or exc.pos >= len(exc.doc.rstrip()))


def read_documents(lines: Iterable[bytes], source: str) -> Iterator[Document]:
    """Yield the JSON documents of a stream of lines (a binary file iterates as lines)."""
    numbered = enumerate(lines, start=1)
    for number, line in numbered:
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]  # a UTF-8 byte-order mark (Windows editors, PowerShell)
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(b"["):
            yield from _array(number, line, numbered, source)
            return
        try:
            value = json.loads(line)
        except ValueError as exc:
            if stripped.startswith(b"{") and _may_continue(exc):
                yield from _documents(number, line, numbered, source)
                return
            yield Document(source, number, _raw(line).rstrip("\r\n"), error=_reason(exc))
            yield from _ndjson(numbered, source)
            return
        yield _checked(source, number, line, value)
        yield from _ndjson(numbered, source)
        return


def _checked(source: str, number: int, text: bytes | str, value: Any) -> Document:
    if _has_nul(text):
        return Document(source, number, _raw(text).rstrip("\r\n"), error=NUL_REASON)
    return Document(source, number, text, value)


def _ndjson(numbered: Iterator[tuple[int, bytes]], source: str) -> Iterator[Document]:
    for number, line in numbered:
        if not line.strip():
            continue
        try:
            yield _checked(source, number, line, json.loads(line))
        except ValueError as exc:
            yield Document(source, number, _raw(line).rstrip("\r\n"), error=_reason(exc))


def _documents(first_number: int, first: bytes, numbered: Iterator[tuple[int, bytes]],
               source: str) -> Iterator[Document]:
    """Pretty-printed documents, one after another: accumulate lines until one parses."""
    buffer, start = _raw(first), first_number
    for number, line in numbered:
        text = _raw(line)
        if not buffer.strip():
            buffer, start = "", number
        buffer += text
        if text.rstrip().endswith(("}", "]")):
            buffer, start, done = yield from _drain(buffer, start, source)
            if done:
                return
        if len(buffer) > MAX_DOCUMENT_BYTES:
            break
    if buffer.strip():
        yield from _drain(buffer, start, source, final=True)
    yield from _ndjson(numbered, source)  # after an oversized document: the rest, line by line


def _drain(buffer: str, start: int, source: str, final: bool = False):
    """Yield every complete document at the head of `buffer`; return what is left."""
    pos = 0
    while True:
        while pos < len(buffer) and buffer[pos] in _WHITESPACE:
            pos += 1
        if pos >= len(buffer):
            return "", start + buffer.count("\n", 0, pos), False
        try:
            value, end = _decoder.raw_decode(buffer, pos)
        except json.JSONDecodeError as exc:
            rest_line = start + buffer.count("\n", 0, pos)
            if final:
                yield Document(source, rest_line, buffer[pos:].rstrip("\r\n"), error=_reason(exc))
                return "", rest_line, True
            return buffer[pos:], rest_line, False
        yield _checked(source, start + buffer.count("\n", 0, pos), buffer[pos:end], value)
        pos = end


def _array(first_number: int, first: bytes, numbered: Iterator[tuple[int, bytes]],
           source: str) -> Iterator[Document]:
    """The elements of a top-level JSON array, one at a time."""
    buffer = _raw(first)
    pos = buffer.index("[") + 1
    line_at_pos = first_number  # line number of buffer[pos]
    exhausted = False

    def more() -> bool:
        nonlocal buffer, pos, exhausted
        try:
            _, line = next(numbered)
        except StopIteration:
            exhausted = True
            return False
        buffer = buffer[pos:] + _raw(line)
        pos = 0
        return True

    while True:
        # Skip separators between elements.
        while True:
            while pos < len(buffer) and buffer[pos] in _WHITESPACE + ",":
                if buffer[pos] == "\n":
                    line_at_pos += 1
                pos += 1
            if pos < len(buffer) or not more():
                break
        if pos >= len(buffer):
            if not exhausted:
                continue
            yield Document(source, line_at_pos, "", error="invalid JSON: the array is not closed with ]")
            return
        if buffer[pos] == "]":
            rest = buffer[pos + 1:] + "".join(_raw(line) for _, line in numbered)
            trailing = rest.strip()
            if trailing:
                line_at = line_at_pos + rest.count("\n", 0, len(rest) - len(rest.lstrip()))
                yield Document(source, line_at, trailing, error="unexpected text after the closing ]")
            return
        while True:
            try:
                value, end = _decoder.raw_decode(buffer, pos)
                break
            except json.JSONDecodeError as exc:
                if len(buffer) - pos > MAX_DOCUMENT_BYTES or not more():
                    # What follows cannot be told apart from the broken element: keep it all.
                    rest = buffer[pos:] + "".join(_raw(line) for _, line in numbered)
                    yield Document(source, line_at_pos, rest.rstrip("\r\n"), error=_reason(exc))
                    return
        yield _checked(source, line_at_pos, buffer[pos:end], value)
        line_at_pos += buffer.count("\n", pos, end)
        pos = end
