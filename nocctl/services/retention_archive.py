"""The archive files of the retention pass (`services/retention.py`): NDJSON, gzip'ed by
default, written under a temporary name (0600 whatever the umask: `nocctl.private`),
fsync'ed and only then linked to their final name `KIND-TENANT-DATE.ndjson[.gz]` — never
replacing a file (`-2`, `-3`… when the name is taken). A crash leaves no half-written
archive under a final name, and `abandon()` leaves no file at all."""
from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from nocctl import private
from nocctl.output import plain


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def fsync_directory(path: Path) -> None:
    """Make the names in `path` durable (a new link, a removed temporary file)."""
    directory = os.open(path, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class ArchiveFile:
    """One archive being written (see the module's docstring). Raises OSError as the file
    system does: the caller decides what the error means and calls `abandon()`."""

    def __init__(self, directory: Path, kind: str, tenant: str, now: datetime, compress: bool):
        self.directory = directory
        self.stem = f"{kind}-{_safe(tenant)}-{now.strftime('%Y-%m-%d')}"
        self.suffix = ".ndjson.gz" if compress else ".ndjson"
        self.temp = directory / f".{self.stem}.{os.getpid()}.tmp"
        self.final: Path | None = None
        with contextlib.suppress(FileNotFoundError):  # left by a crashed run of the same pid
            self.temp.unlink()
        fd = private.open_file(self.temp, os.O_WRONLY, exclusive=True)  # 0600 whatever the umask
        self.raw = os.fdopen(fd, "wb")
        self.stream = gzip.GzipFile(filename=self.stem + ".ndjson", mode="wb", fileobj=self.raw) if compress \
            else self.raw
        self.rows = 0

    def write(self, record: dict[str, Any]) -> None:
        self.stream.write((json.dumps(plain(record), ensure_ascii=False, sort_keys=False) + "\n").encode())
        self.rows += 1

    def commit(self) -> Path:
        """Flush, fsync and link the file to its final name (returned); the temporary name goes."""
        if self.stream is not self.raw:
            self.stream.close()
        self.raw.flush()
        os.fsync(self.raw.fileno())
        self.raw.close()
        number = 1
        while True:
            final = self.directory / f"{self.stem}{'' if number == 1 else f'-{number}'}{self.suffix}"
            try:
                os.link(self.temp, final)
                break
            except FileExistsError:
                number += 1
        self.final = final
        os.unlink(self.temp)
        fsync_directory(self.directory)  # the new name is durable too
        return final

    def abandon(self) -> None:
        """Close and remove whatever was written; never raises (an error is on its way).
        Closing flushes what is buffered, which fails on a full disk: the descriptor is
        closed all the same."""
        for closing in (self.stream, self.raw):
            with contextlib.suppress(OSError, ValueError):
                closing.close()
        for path in (self.temp, self.final):
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
