"""Checkpoints of the audit chain (DESIGN §3a "Audit anchoring"), as Certificate
Transparency's signed tree heads anchor an append-only log.

The hash chain of `services/audit.py` finds any row edited or removed *inside* the chain,
but someone who can write the table can also cut its end off, or rewrite a stretch and
recompute every hash after it with the same public function: the shorter or rewritten
chain verifies. A checkpoint is the head of a tenant's chain at one moment — the last row's
id and hash and the number of rows — signed with HMAC-SHA256 under a key kept outside the
database, printed as one JSON line for the operator to append to a file kept elsewhere.
`verify` then checks every checkpoint of the tenant against the log as it is now: the row
it names must still be there, with the same hash (which covers every row before it) and the
same number of rows up to it. What was written after the last checkpoint is not covered.

The key is a file of mode 600 (`audit_key_file` in the config, or `--key`); `generate_key`
makes one. Nothing here writes to the database."""
from __future__ import annotations

import errno
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nocctl import clock, private
from nocctl.errors import UsageError
from nocctl.models import AuditLog
from nocctl.services import access
from nocctl.services import audit as chain
from nocctl.services.rbac import Caller

VERSION: Final = 1
KEY_BYTES: Final = 32  # what `generate_key` draws; a key file must hold at least this many bytes
MAX_KEY_FILE: Final = 4096
STREAM_BATCH: Final = 5000
MAX_DETAILS: Final = 20  # failures listed on stderr besides the error line itself
KEYGEN_HINT: Final = "make a key with `nocctl audit keygen FILE`"
_HASH = re.compile(r"^[0-9a-f]{64}$")
_FIELDS: Final = frozenset({"v", "tenant", "row_id", "rows", "hash", "at", "mac"})


# ---------------------------------------------------------------- the key

def generate_key(path: Path) -> None:
    """Create `path` holding a new random key (32 bytes, as 64 hex digits and a newline),
    mode 600 whatever the umask. An existing file is never overwritten: checkpoints signed
    with the key it holds could no longer be verified."""
    # Exclusive (O_EXCL): never over an existing file, nor through a symlink planted there;
    # exactly 0600 whatever the umask (`nocctl.private`, the rule of every file nocctl makes).
    try:
        fd = private.open_file(path, os.O_WRONLY, exclusive=True)
    except FileExistsError:
        raise UsageError(f"{path} already exists: `audit keygen` never replaces a key (the checkpoints"
                         " signed with it could no longer be verified)",
                         "choose another file, or remove this one first if it never signed a checkpoint") from None
    except OSError as exc:
        raise UsageError(f"cannot create {path}: {exc.strerror}", _path_remedy(exc, path)) from None
    try:
        os.write(fd, (secrets.token_hex(KEY_BYTES) + "\n").encode())
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        os.unlink(path)
        raise UsageError(f"cannot write {path}: {exc.strerror}", "nothing was kept; fix the device and retry") \
            from None
    os.close(fd)


def _path_remedy(exc: OSError, path: Path) -> str:
    if exc.errno == errno.ENOENT:
        return f"create {path.parent} first (mode 700, owned by the account that runs nocctl)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "choose a file in a directory you may write to"
    return "choose another file"


def load_key(path: Path | None) -> bytes:
    """The key in `path`: the file's bytes without surrounding whitespace. Exit 2 when no
    key is configured, the file is missing or unreadable, readable by group or others
    (`chmod 600` it), or too short."""
    if path is None:
        raise UsageError("no audit key: give --key FILE, or set audit_key_file in the config",
                         "make a key with `nocctl audit keygen FILE` (mode 600, readable by this account only)")
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise UsageError(f"audit key file {path} does not exist",
                         f"create it with `nocctl audit keygen {path}` (or fix audit_key_file / --key)") from None
    except OSError as exc:
        raise UsageError(f"cannot read audit key file {path}: {exc.strerror}",
                         "run as the account that owns it (the key must be readable by that account only)") \
            from None
    try:
        info = os.fstat(fd)  # of the file opened, not of a path that may have changed since
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"audit key file {path} is not a regular file", KEYGEN_HINT)
        if info.st_mode & private.OTHERS:
            raise UsageError(f"audit key file {path} is mode {stat.S_IMODE(info.st_mode):o}: open to other users,"
                             " who could forge checkpoints", f"chmod 600 {path}")
        key = os.read(fd, MAX_KEY_FILE + 1).strip()
    finally:
        os.close(fd)
    if len(key) < KEY_BYTES:
        raise UsageError(f"audit key file {path} holds {len(key)} bytes; a key needs at least {KEY_BYTES}",
                         "create a new one with `nocctl audit keygen FILE`")
    return key


# ---------------------------------------------------------------- making a checkpoint

def _signed_text(fields: dict[str, Any]) -> bytes:
    """What the MAC covers: every field but the MAC, as canonical JSON."""
    body = {k: v for k, v in fields.items() if k != "mac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def mac(key: bytes, fields: dict[str, Any]) -> str:
    return hmac.new(key, _signed_text(fields), hashlib.sha256).hexdigest()


def checkpoint(session: Session, caller: Caller, key: bytes) -> dict[str, Any]:
    """The head of the caller's tenant's chain — last row id, its hash, the number of rows —
    and the time, signed. Needs a tenant-wide noc:audit_view (as `audit verify`)."""
    with session.begin():
        scope = access.for_caller(session, caller)
        scope.require(chain.AUDIT_VIEW)
        tid = scope.actor.tenant_id
        head = session.execute(select(AuditLog.id, AuditLog.hash).where(AuditLog.tenant_id == tid)
                               .order_by(AuditLog.id.desc()).limit(1)).first()
        rows = 0
        if head is not None:
            # Up to the head, so a row appended meanwhile cannot make the count disagree
            # (a tenant's writers are serialised: its ids grow in commit order).
            rows = session.scalar(select(func.count()).select_from(AuditLog)
                                  .where(AuditLog.tenant_id == tid, AuditLog.id <= head.id)) or 0
    fields: dict[str, Any] = {
        "v": VERSION,
        "tenant": caller.tenant,
        "row_id": None if head is None else head.id,
        "rows": rows,
        "hash": None if head is None else head.hash,
        "at": clock.isoformat(clock.now()),
    }
    fields["mac"] = mac(key, fields)
    return fields


def to_line(fields: dict[str, Any]) -> str:
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=True)


# ---------------------------------------------------------------- reading checkpoints

@dataclass(frozen=True)
class Checkpoint:
    line: int
    row_id: int | None
    rows: int
    hash: str | None
    at: str


@dataclass
class Failure:
    line: int
    row_id: int | None
    reason: str

    def text(self, source: str) -> str:
        if self.row_id is None:
            return f"{source} line {self.line}: {self.reason}"
        return f"row {self.row_id}: {self.reason}"


@dataclass
class Parsed:
    checkpoints: list[Checkpoint] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)  # lines that are not good checkpoints
    other_tenants: int = 0


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shape_error(fields: dict[str, Any]) -> str | None:
    """What is wrong with a parsed line, or None."""
    missing = sorted(_FIELDS - set(fields))
    if missing:
        return "not a checkpoint (no " + ", ".join(missing) + ")"
    if fields["v"] != VERSION:
        return f"checkpoint version {fields['v']!r} is not known to this nocctl (it reads {VERSION})"
    if not isinstance(fields["mac"], str) or not _HASH.match(fields["mac"]):
        return "not a checkpoint (its mac is not 64 hex digits)"
    if not isinstance(fields["tenant"], str):
        return "not a checkpoint (its tenant is not a string)"
    return None


def _value_error(fields: dict[str, Any]) -> str | None:
    """The fields of a line whose MAC holds, checked (a key that signed nonsense)."""
    row_id, rows, digest, at = fields["row_id"], fields["rows"], fields["hash"], fields["at"]
    if not _is_int(rows) or rows < 0:
        return "not a checkpoint (rows is not a count)"
    if row_id is None:
        if rows != 0 or digest is not None:
            return "not a checkpoint (no row id, yet rows or a hash)"
    elif not _is_int(row_id) or not isinstance(digest, str) or not _HASH.match(digest) or rows < 1:
        return "not a checkpoint (row_id, rows and hash do not fit together)"
    try:
        instant = datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        return "not a checkpoint (at is not an ISO 8601 time with an offset)"
    return None


def parse(lines: Iterable[bytes], key: bytes, tenant: str) -> Parsed:
    """The checkpoints of `tenant` in `lines` (numbered from 1; blank lines skipped), each
    MAC checked before anything in it is believed. Lines of other tenants are counted and
    left alone (their own `verify` checks them)."""
    parsed = Parsed()
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            fields = json.loads(raw)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
            parsed.failures.append(Failure(number, None, "not a checkpoint (not a JSON object)"))
            continue
        if not isinstance(fields, dict):
            parsed.failures.append(Failure(number, None, "not a checkpoint (not a JSON object)"))
            continue
        problem = _shape_error(fields)
        if problem is None and fields["tenant"] != tenant:
            parsed.other_tenants += 1
            continue
        if problem is None and not hmac.compare_digest(mac(key, fields), fields["mac"]):
            problem = "its MAC does not match (the line was altered or forged, or signed with another key)"
        if problem is None:
            problem = _value_error(fields)
        if problem is not None:
            parsed.failures.append(Failure(number, None, problem))
            continue
        parsed.checkpoints.append(Checkpoint(number, fields["row_id"], fields["rows"], fields["hash"], fields["at"]))
    return parsed


# ---------------------------------------------------------------- checking them against the log

@dataclass
class CheckpointReport:
    source: str
    checked: int
    other_tenants: int
    failures: list[Failure]
    last_held: Checkpoint | None  # the checkpoint of the longest chain that still holds

    @property
    def ok(self) -> bool:
        return not self.failures and self.checked > 0

    def as_dict(self) -> dict[str, Any]:
        last = self.last_held
        return {
            "file": self.source,
            "ok": self.ok,
            "checked": self.checked,
            "held": self.checked - sum(1 for f in self.failures if f.row_id is not None),
            "other_tenants": self.other_tenants,
            "last_held": None if last is None else
            {"line": last.line, "row_id": last.row_id, "rows": last.rows, "at": last.at},
            "failures": [{"line": f.line, "row_id": f.row_id, "reason": f.reason} for f in self.failures],
        }


@dataclass
class Verification:
    """`audit verify --checkpoints`: the chain walk and the checkpoints."""

    chain: chain.VerifyResult
    checkpoints: CheckpointReport

    @property
    def intact(self) -> bool:
        return self.chain.intact and self.checkpoints.ok

    def as_dict(self) -> dict[str, Any]:
        return {**self.chain.as_dict(), "intact": self.intact, "checkpoints": self.checkpoints.as_dict()}

    def problems(self) -> list[str]:
        """One line per thing found wrong, the chain's break first, then the file's bad
        lines, then the checkpoints that no longer hold, lowest row first."""
        found = []
        if not self.chain.intact:
            found.append(f"audit log broken at row {self.chain.first_broken_id}: {self.chain.reason}")
        source = self.checkpoints.source
        found += [f.text(source) for f in self.checkpoints.failures]
        if self.checkpoints.checked == 0 and not self.checkpoints.failures:
            found.append(f"{source} holds no checkpoint of this tenant"
                         + (f" ({self.checkpoints.other_tenants} of other tenants)"
                            if self.checkpoints.other_tenants else ""))
        return found


def _missing(cp: Checkpoint, last_id: int | None, later_row: bool) -> str:
    if later_row:
        return f"missing (later rows remain: it was removed after checkpoint at {cp.at})"
    if last_id is None:
        return f"missing (the log is empty: truncated after checkpoint at {cp.at})"
    return f"missing (the log ends at row {last_id}: truncated after checkpoint at {cp.at})"


def check(session: Session, caller: Caller, checkpoints: list[Checkpoint]) -> tuple[list[Failure], Checkpoint | None]:
    """Each checkpoint against the log as it is: its row still there with its hash, and as
    many rows up to it as it counted. One pass over (id, hash) in id order, streamed."""
    failures: list[Failure] = []
    last_held: Checkpoint | None = None
    pending = sorted((cp for cp in checkpoints if cp.row_id is not None), key=lambda cp: cp.row_id or 0)
    for cp in checkpoints:
        if cp.row_id is None:  # the head of an empty log: any log is at least that long
            last_held = last_held or cp
    with session.begin():
        scope = access.for_caller(session, caller)
        scope.require(chain.AUDIT_VIEW)
        query = (select(AuditLog.id, AuditLog.hash).where(AuditLog.tenant_id == scope.actor.tenant_id)
                 .order_by(AuditLog.id).execution_options(yield_per=STREAM_BATCH))
        index, count, last_id = 0, 0, None
        result = session.execute(query)
        try:
            for row_id, digest in result:
                if index == len(pending):
                    break
                count += 1
                while index < len(pending) and (pending[index].row_id or 0) < row_id:
                    failures.append(Failure(pending[index].line, pending[index].row_id,
                                            _missing(pending[index], last_id, True)))
                    index += 1
                while index < len(pending) and pending[index].row_id == row_id:
                    cp = pending[index]
                    if digest != cp.hash:
                        failures.append(Failure(cp.line, row_id, f"hash differs from checkpoint at {cp.at} (the row,"
                                                                 " or one before it, was rewritten)"))
                    elif count != cp.rows:
                        failures.append(Failure(cp.line, row_id, f"{count} rows up to it, but checkpoint at {cp.at}"
                                                                 f" counted {cp.rows} (rows before it were removed)"))
                    elif last_held is None or cp.rows >= last_held.rows:
                        last_held = cp
                    index += 1
                last_id = row_id
        finally:
            result.close()
        for cp in pending[index:]:
            failures.append(Failure(cp.line, cp.row_id, _missing(cp, last_id, False)))
    return failures, last_held


def verify(session: Session, caller: Caller, lines: Iterable[bytes], key: bytes, source: str) -> Verification:
    """Recompute the chain (`audit.verify`), then check every checkpoint of the tenant in
    `lines` (from the file `source`). Needs a tenant-wide noc:audit_view."""
    result = chain.verify(session, caller)
    parsed = parse(lines, key, caller.tenant)
    failures, last_held = check(session, caller, parsed.checkpoints) if parsed.checkpoints else ([], None)
    failures.sort(key=lambda f: (f.row_id or 0, f.line))
    report = CheckpointReport(source, len(parsed.checkpoints), parsed.other_tenants, parsed.failures + failures,
                              last_held)
    return Verification(result, report)


def read_lines(path: Path) -> list[bytes]:
    """The lines of a checkpoint file (exit 2 when it cannot be read)."""
    try:
        with path.open("rb") as handle:
            return handle.read().splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read checkpoint file {path}: {exc.strerror}") from None

