"""Rendering of listings and single objects: table, json, ndjson, csv (DESIGN §4).

Data goes to stdout (or `-o FILE`, written atomically by `AtomicFile`, a new file 0600);
nothing here writes logs.

Output hygiene (DESIGN §3a): text meant for eyes — table cells, `show` output, error
lines, notes, console log lines — passes through `printable`, so no control character of
the data (an ESC sequence clearing the screen, an OSC 52 clipboard write, a C1 CSI)
reaches a terminal. JSON and NDJSON keep the data exact (json escapes what it must, and
DEL and C1 are written as \\u escapes too). CSV keeps it exact too, but a string cell that
a spreadsheet would run as a formula is neutralised (`csv_cell`, OWASP)."""
from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import re
import stat
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import IO, Any

from nocctl import private
from nocctl.clock import isoformat
from nocctl.errors import NocError, TemporaryFailure, UsageError

LIST_FORMATS = ("table", "json", "ndjson", "csv")
SHOW_FORMATS = ("table", "json")


def plain(value: Any) -> Any:
    """A JSON-ready value: instants as ISO UTC, enums by value, sets sorted."""
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "value") and not isinstance(value, (str, int, float)):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in (sorted(value) if isinstance(value, (set, frozenset)) else value)]
    return value


# ---------------------------------------------------------------- what may reach a terminal

# What is escaped: C0 but tab and newline (or all of C0: one line), DEL and C1 (ESC is C0).
_CONTROLS = r"\x00-\x08\x0b-\x1f\x7f-\x9f"
_CONTROLS_ONE_LINE = r"\x00-\x1f\x7f-\x9f"
# ...and, in data, a backslash that would otherwise read as the start of an escape: one
# before another backslash, before x, n, t or r, or before an escaped control character.
_PATTERNS = {(one_line, backslash): re.compile(f"[{controls}]" + (rf"|\\(?=[\\xntr{controls}])" if backslash else ""))
             for one_line, controls in ((False, _CONTROLS), (True, _CONTROLS_ONE_LINE))
             for backslash in (False, True)}
_NAMED = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED.get(char) or f"\\x{ord(char):02x}"


def printable(text: str, one_line: bool = False, backslash: bool = True) -> str:
    r"""`text` safe to show on a terminal: every C0 control but tab and newline, DEL and every
    C1 control (0x80-0x9f) written as `\xHH` (ESC as `\x1b`, CR as `\r`); with `one_line`
    (a table cell, an error line, a note) newline and tab too, as `\n` and `\t`.

    Data (`backslash`, for table cells and `show` values) stays unambiguous and readable: a
    backslash is doubled only where it would otherwise start an escape (`\\x1b` on the
    screen is the four characters, `\x1b` was an ESC), so `C:\Program Files` is shown as
    it is. Messages (errors, notes, log lines: `line`, no `backslash`) leave backslashes
    alone: they quote values Python-style (`'X\x1b'`), which escaped backslashes already."""
    pattern = _PATTERNS[one_line, backslash]
    return pattern.sub(_escape, text) if pattern.search(text) else text


def line(text: str) -> str:
    """A message for a terminal — an error, a note, a log line, a result line naming data —
    on one line with its control characters escaped (`printable`; backslashes as they are)."""
    return printable(text, one_line=True, backslash=False)


# DEL and C1 are not escaped by json.dumps (ensure_ascii=False): they are, as \u escapes,
# so the JSON text decodes to the exact data and still cannot drive a terminal.
_JSON_RAW_CONTROLS = re.compile(r"[\x7f-\x9f]")


def to_json(value: Any, indent: int | None = 2) -> str:
    text = json.dumps(plain(value), indent=indent, ensure_ascii=False)
    return _JSON_RAW_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


#: OWASP's CSV-injection list: a cell starting with one of these is a formula to a spreadsheet.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: a string starting with =, +, -, @, tab or CR
    gets a leading single quote (OWASP), even one that looks like a number ("-5": it was a
    string in the data, and `-5+cmd|…` looks the same to the first character); numbers
    (int, float) and other values are left as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV with "\\n" line ends. A row holding a carriage return in a cell is written with
    every cell quoted: the csv module quotes only what is in the line terminator, and an
    unquoted CR would start a new row (whose first cell a spreadsheet might run)."""
    buffer = io.StringIO()
    minimal = csv.writer(buffer, lineterminator="\n")
    quoted = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_ALL)
    minimal.writerow(header)
    for row in rows:
        (quoted if any(isinstance(cell, str) and "\r" in cell for cell in row) else minimal).writerow(row)
    return buffer.getvalue()


def _text(value: Any) -> str:
    """A value as the text of a cell: a structure as compact JSON (`to_json`: already
    unambiguous and free of control characters)."""
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return to_json(value, indent=None)
    return str(value)


def _cell(value: Any) -> str:
    """A table cell, on one line: its text escaped (`printable`); a structure is
    JSON, which has escaped everything already."""
    shown = plain(value)
    return _text(shown) if isinstance(shown, (dict, list)) else printable(_text(shown), one_line=True)


def _csv(value: Any) -> Any:
    shown = plain(value)
    return csv_cell(shown) if isinstance(shown, str) else _text(shown)


def render_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str,
                terminal: bool = False) -> str:
    """Render a listing. JSON is one array (empty listing: `[]`), NDJSON one object a line.
    CSV `terminal` (going to a terminal, not a file or pipe) has its control characters
    escaped as in a table (`printable`), since it is read there, not parsed."""
    if fmt == "json":
        return to_json([{c: row.get(c) for c in columns} for row in rows]) + "\n"
    if fmt == "ndjson":
        return "".join(to_json({c: row.get(c) for c in columns}, indent=None) + "\n" for row in rows)
    if fmt == "csv":
        text = csv_text(columns, ([_csv(row.get(c)) for c in columns] for row in rows))
        return printable(text) if terminal else text
    from tabulate import tabulate

    if not rows:
        return "(none)\n"
    table = [[_cell(row.get(c)) for c in columns] for row in rows]
    return tabulate(table, headers=[printable(c, one_line=True) for c in columns], tablefmt="simple") + "\n"


def render_object(obj: Mapping[str, Any], fmt: str) -> str:
    """Render one object (`show` commands): JSON, or a two-column key/value table."""
    if fmt == "json":
        return to_json(obj) + "\n"
    from tabulate import tabulate

    return tabulate([[printable(str(key), one_line=True), _shown(value)] for key, value in obj.items()],
                    tablefmt="plain") + "\n"


def _shown(value: Any) -> str:
    """A `show` value: escaped, but its own lines kept (a multi-line message stays readable)."""
    shown = plain(value)
    return _text(shown) if isinstance(shown, (dict, list)) else printable(_text(shown))


def write(text: str, path: str | None = None, stream: IO[str] | None = None) -> None:
    """Write rendered output to `path` ('-' or None: stdout). A file is replaced in one step
    (`AtomicFile`): it holds the whole text or keeps what it held before."""
    if path and path != "-":
        with AtomicFile(path) as handle:
            handle.write(text)
        return
    (stream or sys.stdout).write(text)


# ---------------------------------------------------------------- writing a file, or failing cleanly

#: No room: the disk (or the quota, or the file-size limit) is full. Free space and run
#: again: exit 75, like every temporary failure.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
#: The path can never be written as it is (permission, a read-only file system, a missing
#: directory, a directory or a file in the way): whoever named it must name another.
UNWRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR, errno.EISDIR,
                        errno.EEXIST, errno.ENAMETOOLONG, errno.ELOOP, errno.ETXTBSY})


def out_of_space(exc: OSError) -> bool:
    return exc.errno in NO_SPACE


def unwritable(exc: OSError) -> bool:
    return exc.errno in UNWRITABLE


def reason(exc: OSError) -> str:
    """The OS's words for an error (`No space left on device`), without the errno."""
    return exc.strerror or str(exc)


def path_remedy(exc: OSError, directory: str) -> str:
    """What to do about a path that cannot be written."""
    if exc.errno == errno.ENOENT:
        return f"create {directory} first or choose another file"
    if exc.errno == errno.EROFS:
        return "choose a file on a writable file system"
    if exc.errno == errno.EISDIR:
        return "name a file, not a directory"
    if exc.errno == errno.ENOTDIR:
        return "a part of the path is a file, not a directory; choose another file"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "choose a file in a directory you may write to"
    return "choose another file"


def access_error(path: str) -> OSError:
    """The error `os.access` would not say: read-only file system, else permission denied."""
    try:
        readonly = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        readonly = False
    code = errno.EROFS if readonly else errno.EACCES
    return OSError(code, os.strerror(code), path)


class AtomicFile:
    """A file replaced in one step, or not at all.

    The text goes to a temporary file beside the target (mode 600 while it is written;
    through a symlink, not over it), is fsync'ed, given the mode of the file it replaces
    (else 0600 whatever the umask: `nocctl.private`) and renamed over the target: a reader — a web server serving the
    weekly report — never sees half a file, and a failure at any step removes the temporary
    file and leaves an existing target as it was. The failure is a NocError the CLI prints
    as one line: a path that cannot be written is a usage error (exit 2), a full disk,
    quota or file-size limit a temporary failure (exit 75: free space and run again).

    Opened before the data is gathered, it checks the path first (`report -o`); as a
    context manager it commits on a clean exit and discards on an exception."""

    def __init__(self, path: str, option: str = "'-o' / '--output'"):
        self.shown = path
        self.option = option
        self.target = os.path.realpath(path)
        self.directory = os.path.dirname(self.target)
        self.existed = os.path.exists(self.target)
        self.temp: str | None = None
        self._handle: IO[str] | None = None  # open until sync()
        self._synced = False
        try:
            if os.path.isdir(self.target):
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
            if self.existed and not os.access(self.target, os.W_OK):  # a rename would ignore its mode
                raise access_error(self.target)
            import tempfile  # here, not at import: `--help` stays instant
            fd, self.temp = tempfile.mkstemp(prefix=f".{os.path.basename(self.target)}.", suffix=".tmp",
                                             dir=self.directory)
            self._handle = os.fdopen(fd, "w", encoding="utf-8", newline="")
        except OSError as exc:
            raise self._fail(exc) from None

    def _opened(self) -> tuple[IO[str], str]:
        """The handle and temporary name __init__ made (it raises rather than return without
        them); they stay until commit() or discard()."""
        assert self._handle is not None and self.temp is not None, "AtomicFile used after commit() or discard()"
        return self._handle, self.temp

    def write(self, text: str) -> None:
        handle, _ = self._opened()
        try:
            handle.write(text)
        except OSError as exc:
            raise self._fail(exc) from None

    def sync(self) -> None:
        """Make the whole text durable under the temporary name (a full disk shows here at
        the latest); the target is still untouched."""
        if self._synced:
            return
        handle, temp = self._opened()
        try:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            mode = stat.S_IMODE(os.stat(self.target).st_mode) if self.existed else private.FILE_MODE
            os.chmod(temp, mode)
        except OSError as exc:
            raise self._fail(exc) from None
        self._synced = True

    def commit(self) -> None:
        self.sync()
        _, temp = self._opened()
        try:
            os.replace(temp, self.target)
        except OSError as exc:
            raise self._fail(exc) from None
        self.temp = None

    def discard(self) -> None:
        """Remove the temporary file; never raises (it runs while another error is on its way)."""
        if self._handle is not None:
            with contextlib.suppress(OSError, ValueError):
                self._handle.close()  # flushing a full disk fails; the descriptor is closed anyway
        if self.temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.temp)
            self.temp = None

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()

    def _fail(self, exc: OSError) -> NocError:
        self.discard()
        return write_error(self.shown, exc, self.option, existed=self.existed)


def write_error(path: str, exc: OSError, option: str = "'-o' / '--output'", existed: bool = False) -> NocError:
    """The one-line error of a file given by `option` that could not be written."""
    what = f"cannot write {path}: {reason(exc)}"
    directory = os.path.dirname(os.path.abspath(path)) or "."
    if unwritable(exc):
        return UsageError(f"Invalid value for {option}: {what}", path_remedy(exc, directory))
    kept = " (the existing file is unchanged)" if existed else ""
    if out_of_space(exc):
        return TemporaryFailure(what, f"nothing was written{kept}; free space in {directory} (or write elsewhere) "
                                      "and run again")
    return TemporaryFailure(what, f"nothing was written{kept}; run again once the device is fixed")
