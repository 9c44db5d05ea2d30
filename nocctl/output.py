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
from dataclasses import dataclass
from datetime import UTC, date, datetime
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


# ---------------------------------------------------------------- tables (issue 16)

#: Colours on a terminal, by column name, so that every listing with such a column gets them:
#: SGR parameters for a value (its first word, upper case). Severity: the worst stands out.
SEVERITY_STYLES = {"CRITICAL": "1;31", "HIGH": "31", "MEDIUM": "33", "LOW": "", "INFO": "2"}
#: States: what needs someone bold, what is done or held dim (alerts, incidents, windows,
#: notifications, integrations, dead letters).
STATE_STYLES = {"NEW": "1", "ESCALATED": "1;35", "FAILED": "31", "DEAD": "31", "ACTIVE": "36",
                "RESOLVED": "2", "CLOSED": "2", "SUPPRESSED": "2", "SNOOZED": "2", "EXPIRED": "2",
                "REVOKED": "2", "SENT": "2", "RETRIED": "2", "DELETED": "2"}
COLOURED_COLUMNS = {"severity": SEVERITY_STYLES, "status": STATE_STYLES, "state": STATE_STYLES}
#: Free-text columns that give up width, widest first, when a table is wider than the
#: terminal: their cells are cut with `…` (the whole text is in `show`, json and csv).
TRUNCATABLE = frozenset({"message", "title", "reason", "name", "details", "description", "summary", "note",
                         "client_name", "site_name", "recipient", "last_error", "error", "members",
                         "recurrence", "next_occurrence", "types", "runbook_link"})
#: A truncated column keeps at least this many columns (or its header's width, if wider).
MIN_TRUNCATED = 16
#: Columns a terminal too narrow for every column leaves out, first to last, before free
#: text goes below MIN_TRUNCATED: first any column empty in every row, then these, detail
#: that `show` has (the site code names the client).
DROPPABLE = ("entity_type", "correlation_id", "dedup_key", "runbook_link", "ticket_ref", "work_order_ref",
             "duplicate_count", "os_user", "host", "client", "entity_id", "attempts")
#: Shorter headers on a terminal, where columns are dear (pipes keep the field names).
HEADERS = {"duplicate_count": "dups", "first_seen_at": "age", "last_seen_at": "last_seen", "created_at": "created",
           "sla_target": "sla"}
#: Instants shown relative to now on a terminal: when something happened, where the question
#: is "how long ago" (`12m ago`), and the deadlines of the queue ("in 3h50m"; past due: "5m
#: ago"). Others (windows, audit entries, snapshots) stay absolute, in the preferred zone.
AGE_COLUMNS = frozenset({"first_seen_at", "last_seen_at", "created_at", "received_at", "last_used_at",
                         "sla_target", "next_attempt_at"})
SEPARATOR = "  "


@dataclass(frozen=True)
class TableStyle:
    """How a table is drawn. The default is the plain table of a pipe or file: times to the
    second in UTC. On a terminal (`nocctl.cli.common.table_style`) rows are fitted to
    `width` display columns, `colour`ed by severity and state, and AGE_COLUMNS shown as ages
    against `now`. `zone` (an IANA name; None: UTC) applies to every table."""

    zone: str | None = None
    width: int | None = None
    colour: bool = False
    now: datetime | None = None

    @property
    def terminal(self) -> bool:
        return self.width is not None or self.colour or self.now is not None


PLAIN_TABLE = TableStyle()


def table_time(value: datetime, zone: str | None = None) -> str:
    """An instant for a table: ISO 8601 to the second (no microseconds), in `zone` with its
    offset, else UTC with `Z`."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    if zone:
        from zoneinfo import ZoneInfo

        return aware.astimezone(ZoneInfo(zone)).replace(microsecond=0).isoformat()
    return aware.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def age(value: datetime, now: datetime) -> str:
    """How long ago `value` was, as a person says it: `45s ago`, `12m ago`, `3h05m ago`,
    `2d04h ago`, `40d ago`; a future instant is `in 12m`."""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    seconds = int((now - aware).total_seconds())
    span = abs(seconds)
    if span < 60:
        text = f"{span}s"
    elif span < 3600:
        text = f"{span // 60}m"
    elif span < 86400:
        hours, minutes = divmod(span // 60, 60)
        text = f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    elif span < 7 * 86400:
        days, hours = divmod(span // 3600, 24)
        text = f"{days}d{hours:02d}h" if hours else f"{days}d"
    else:
        text = f"{span // 86400}d"
    return f"{text} ago" if seconds >= 0 else f"in {text}"


def _table_cell(column: str, value: Any, style: TableStyle) -> str:
    if isinstance(value, datetime):
        if style.now is not None and column in AGE_COLUMNS:
            return age(value, style.now)
        return table_time(value, style.zone)
    return _cell(value)


def _numeric(values: Iterable[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)


def _fit(widths: list[int], truncatable: Sequence[bool], floors: Sequence[int], width: int) -> list[int]:
    """Column widths that fit `width`: the widest truncatable column gives up columns first
    (down to the next widest, then both, in turn), none below its floor."""
    fitted = list(widths)
    overflow = sum(fitted) + len(SEPARATOR) * (len(fitted) - 1) - width
    while overflow > 0:
        open_ = [i for i, cut in enumerate(truncatable) if cut and fitted[i] > floors[i]]
        if not open_:
            break
        widest = max(open_, key=lambda i: fitted[i])
        second = max((fitted[i] for i in open_ if i != widest), default=0)
        target = max(floors[widest], second, fitted[widest] - overflow)
        if target >= fitted[widest]:
            target = fitted[widest] - 1  # a tie: shrink one column at a time, in turn
        overflow -= fitted[widest] - target
        fitted[widest] = target
    return fitted


def _layout(columns: Sequence[str], headers: Sequence[str], widths: list[int], empty: Sequence[bool], width: int,
            ) -> tuple[list[int], list[int]]:
    """Which columns a terminal of `width` shows, and how wide: free text (TRUNCATABLE) is
    cut first, down to MIN_TRUNCATED; when that is not enough, empty columns and then
    DROPPABLE ones are left out in their order (the data stays in `show` and the other formats); then free text
    may shrink to its header. A row still too wide is clipped (never wrapped)."""
    from nocctl.terminal import display_width

    shown = list(range(len(columns)))
    cut = [columns[i] in TRUNCATABLE for i in shown]
    heads = [display_width(h) for h in headers]
    floors = [max(heads[i], min(MIN_TRUNCATED, widths[i])) if cut[i] else widths[i] for i in shown]

    def needed(kept: list[int]) -> int:
        return sum(floors[i] for i in kept) + len(SEPARATOR) * (len(kept) - 1)

    if needed(shown) > width:
        shown = [i for i in shown if not empty[i]]
    for name in DROPPABLE:
        if needed(shown) <= width:
            break
        shown = [i for i in shown if columns[i] != name]
    fitted = _fit([widths[i] for i in shown], [cut[i] for i in shown], [floors[i] for i in shown], width)
    fitted = _fit(fitted, [cut[i] for i in shown], [heads[i] for i in shown], width)
    return shown, fitted


def _terminal_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], style: TableStyle) -> str:
    """The table of a terminal: the layout of the plain one (headers, a dashed rule, two
    spaces between columns, numbers right-aligned; a few long headers shortened, HEADERS),
    measured in display columns, fitted to the width (never wrapping a row: `_layout`) and
    coloured by severity and state."""
    from nocctl.terminal import clip, display_width, paint, truncate

    headers = [printable(HEADERS.get(c, c), one_line=True) for c in columns]
    cells = [[_table_cell(c, row.get(c), style) for c in columns] for row in rows]
    right = [_numeric(row.get(c) for row in rows) for c in columns]
    widths = [max([display_width(headers[i])] + [display_width(row[i]) for row in cells]) for i in range(len(columns))]
    shown = list(range(len(columns)))
    if style.width is not None:
        empty = [not any(row[i] for row in cells) for i in range(len(columns))]
        shown, kept = _layout(columns, headers, widths, empty, style.width)
        for i, fitted in zip(shown, kept, strict=True):
            widths[i] = fitted

    def pad(text: str, i: int, sgr: str = "") -> str:
        text = truncate(text, widths[i])
        room = " " * (widths[i] - display_width(text))
        return room + paint(text, sgr) if right[i] else paint(text, sgr) + room

    def draw(parts: list[str]) -> str:
        text = SEPARATOR.join(parts).rstrip(" ")
        return clip(text, style.width) if style.width is not None else text

    lines = [draw([pad(headers[i], i) for i in shown]), draw(["-" * widths[i] for i in shown])]
    for row, texts in zip(rows, cells, strict=True):
        parts = []
        for i in shown:
            column, sgr = columns[i], ""
            value = plain(row.get(column)) if style.colour and column in COLOURED_COLUMNS else None
            if isinstance(value, str) and value.split():
                sgr = COLOURED_COLUMNS[column].get(value.split()[0].upper(), "")
            parts.append(pad(texts[i], i, sgr))
        lines.append(draw(parts))
    return "\n".join(lines) + "\n"


def render_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str,
                terminal: bool = False, style: TableStyle = PLAIN_TABLE) -> str:
    """Render a listing. JSON is one array (empty listing: `[]`), NDJSON one object a line.
    CSV `terminal` (going to a terminal, not a file or pipe) has its control characters
    escaped as in a table (`printable`), since it is read there, not parsed.

    A table shows instants to the second in `style.zone` (UTC by default); a terminal
    `style` also fits, colours and shows ages (`TableStyle`). JSON, NDJSON and CSV are the
    exact data whatever the style."""
    if fmt == "json":
        return to_json([{c: row.get(c) for c in columns} for row in rows]) + "\n"
    if fmt == "ndjson":
        return "".join(to_json({c: row.get(c) for c in columns}, indent=None) + "\n" for row in rows)
    if fmt == "csv":
        text = csv_text(columns, ([_csv(row.get(c)) for c in columns] for row in rows))
        return printable(text) if terminal else text
    if not rows:
        return "(none)\n"
    if style.terminal:
        return _terminal_table(rows, columns, style)
    from tabulate import tabulate

    table = [[_table_cell(c, row.get(c), style) for c in columns] for row in rows]
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
