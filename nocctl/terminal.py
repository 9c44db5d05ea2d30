"""What a terminal on stdout can take, and how wide text is on it (issue 16).

Colour and width fitting are for a terminal only (httpie's manners): a pipe, a file or a
`--format` other than table gets the data exact and complete. `NO_COLOR` (set at all, as
`nocctl.log` reads it) and `TERM=dumb` turn colour off; the width is the terminal's
(`COLUMNS` first, as `shutil.get_terminal_size` reads it).

Widths are display columns, not characters: an East Asian wide or full-width character
takes two, a combining mark none, and an SGR colour sequence (the only escape nocctl
itself writes: `printable` has escaped every one in the data) none."""
from __future__ import annotations

import os
import re
import shutil
import sys
import unicodedata

ELLIPSIS = "…"
RESET = "\x1b[0m"
#: An SGR sequence (colour, bold, dim, reset): invisible, no width.
SGR = re.compile(r"\x1b\[[0-9;]*m")


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def colour_allowed(environ: os._Environ[str] | dict[str, str] | None = None) -> bool:
    """Whether colour may be used on a terminal: not when NO_COLOR is set (no-color.org; any
    value, as the log renderer reads it) nor on a dumb terminal."""
    env = os.environ if environ is None else environ
    return "NO_COLOR" not in env and env.get("TERM") != "dumb"


def width() -> int:
    """The terminal's width in columns (COLUMNS when set; 80 when nothing says)."""
    return max(shutil.get_terminal_size((80, 24)).columns, 20)


def char_width(char: str) -> int:
    if unicodedata.combining(char) or char in "\u200b\u200c\u200d\ufeff":
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Columns `text` takes on a terminal: colour sequences none, wide characters two."""
    if "\x1b" in text:
        text = SGR.sub("", text)
    if text.isascii():
        return len(text)
    return sum(char_width(char) for char in text)


def truncate(text: str, columns: int) -> str:
    """`text` cut to at most `columns` display columns, ending in `…` when cut (plain text:
    no colour sequences in it)."""
    if display_width(text) <= columns:
        return text
    if columns <= 0:
        return ""
    kept: list[str] = []
    used = 0
    for char in text:
        step = char_width(char)
        if used + step > columns - 1:
            break
        kept.append(char)
        used += step
    return "".join(kept) + ELLIPSIS


def clip(line: str, columns: int) -> str:
    """A rendered line (colour sequences allowed) cut to `columns` display columns with `…`;
    a colour open at the cut is reset. The last resort when no column can give more."""
    if display_width(line) <= columns:
        return line
    out: list[str] = []
    used = 0
    position = 0
    coloured = False
    while position < len(line):
        match = SGR.match(line, position)
        if match:
            out.append(match.group())
            coloured = match.group() != RESET
            position = match.end()
            continue
        step = char_width(line[position])
        if used + step > columns - 1:
            break
        out.append(line[position])
        used += step
        position += 1
    return "".join(out) + ELLIPSIS + (RESET if coloured else "")


def paint(text: str, sgr: str) -> str:
    """`text` in the SGR style `sgr` ("1;31": bold red), reset after; unchanged when no style."""
    return f"\x1b[{sgr}m{text}{RESET}" if sgr and text else text
