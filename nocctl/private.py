"""The one rule for files nocctl makes (DESIGN §3a): private, whatever the umask.

Every file nocctl creates — the SQLite database, `-o` exports and reports, `--rejects`
files, retention archives, pass lock files — is created mode 0600, and every directory it
creates (the data directory, a missing archive directory) 0700. The mode is set with
`fchmod`/`chmod` after creating, so a umask of 022 (or an odd one such as 0277) changes
nothing. A file or directory that already exists keeps its mode: its owner chose it (a
report replaced each week for a web server stays readable by it). SQLite gives its
`-wal`, `-shm` and `-journal` files the mode of the database file, so they follow.

Only the standard library: `db`, `output` and the services import it."""
from __future__ import annotations

import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
#: The permission bits that let someone other than the owner in.
OTHERS = 0o077


def make_dirs(path: str | os.PathLike[str]) -> None:
    """Create directory `path` and its missing parents, each exactly 0700; directories that
    exist are left as they are. Raises OSError as the file system does."""
    missing: list[Path] = []
    current = Path(path)
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, DIR_MODE)
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue  # made meanwhile by another process: not ours to change
        os.chmod(directory, DIR_MODE)  # the umask may have taken bits off


def open_file(path: str | os.PathLike[str], flags: int = os.O_WRONLY, *, exclusive: bool = False) -> int:
    """A descriptor of `path` opened with `flags` (O_WRONLY, O_RDWR, O_APPEND, O_TRUNC…).
    A file created here is exactly 0600; an existing one is opened as it is (`exclusive`:
    FileExistsError instead). Writing through a symlink creates its target, 0600 too."""
    flags &= ~(os.O_CREAT | os.O_EXCL)
    for _ in range(3):  # a file removed between the two opens: try to create it again
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            if exclusive:
                raise
            try:
                return os.open(path, flags)
            except FileNotFoundError:
                if os.path.islink(path):  # a dangling symlink: O_EXCL never follows one
                    return open_file(os.path.realpath(path), flags, exclusive=True)
                continue
        try:
            os.fchmod(fd, FILE_MODE)
        except OSError:
            os.close(fd)
            raise
        return fd
    return os.open(path, flags)  # it keeps disappearing: say so with the OS's own error


def create_empty(path: str | os.PathLike[str]) -> bool:
    """Create `path` as an empty 0600 file unless it exists; True when it was created."""
    try:
        os.close(open_file(path, os.O_WRONLY, exclusive=True))
    except FileExistsError:
        return False
    return True


def exposed_mode(path: str | os.PathLike[str]) -> int | None:
    """The permission bits of `path` when someone other than its owner may read or write
    it (group or world bits set), else None (private, or missing)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
    return mode if mode & OTHERS else None
