"""Rendering of listings and single objects: table, json, ndjson, csv (DESIGN §4).

Data goes to stdout (or `-o FILE`, written atomically by `AtomicFile`); nothing here
writes logs."""
from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import stat
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import IO, Any

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


def to_json(value: Any, indent: int | None = 2) -> str:
    return json.dumps(plain(value), indent=indent, ensure_ascii=False)


def _cell(value: Any) -> str:
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def render_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: str) -> str:
    """Render a listing. JSON is one array (empty listing: `[]`), NDJSON one object a line."""
    if fmt == "json":
        return to_json([{c: row.get(c) for c in columns} for row in rows]) + "\n"
    if fmt == "ndjson":
        return "".join(to_json({c: row.get(c) for c in columns}, indent=None) + "\n" for row in rows)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_cell(row.get(c)) for c in columns] for row in rows)
        return buffer.getvalue()
    from tabulate import tabulate

    if not rows:
        return "(none)\n"
    table = [[_cell(row.get(c)) for c in columns] for row in rows]
    return tabulate(table, headers=list(columns), tablefmt="simple") + "\n"


def render_object(obj: Mapping[str, Any], fmt: str) -> str:
    """Render one object (`show` commands): JSON, or a two-column key/value table."""
    if fmt == "json":
        return to_json(obj) + "\n"
    from tabulate import tabulate

    return tabulate([[key, _cell(value)] for key, value in obj.items()], tablefmt="plain") + "\n"


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
    (else the umask's) and renamed over the target: a reader — a web server serving the
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
            if self.existed:
                mode = stat.S_IMODE(os.stat(self.target).st_mode)
            else:
                umask = os.umask(0)
                os.umask(umask)
                mode = 0o666 & ~umask
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
