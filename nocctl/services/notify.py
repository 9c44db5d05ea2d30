"""The notification outbox (DESIGN §3, Notifications): messages are queued inside the
transaction that decides them (`queue`, called by the escalation pass) and delivered later by
`nocctl notify run` through the configured channels — a webhook POST of the JSON payload, a
command run with the JSON on stdin, or a mail over SMTP.

Delivery is at least once: a message is marked SENT in a short transaction after its channel
took it, so a crash in between sends it again on the next run. A failed attempt backs off
exponentially (`backoff`·2^(attempts−1), capped at `max_backoff`) until `max_attempts`, then
the message is FAILED; nothing is deleted, and `notify retry` puts FAILED messages back.
Channel secrets (webhook URLs, header values, the SMTP password) never reach `last_error`,
logs or output: errors name the channel, not its address."""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, aliased

from nocctl import clock
from nocctl.errors import BadInput, NocError, NotFound, PermissionDenied
from nocctl.models import BusinessUnit, Notification, Person, Tenant
from nocctl.rawsql import RawSQL
from nocctl.services import passlock
from nocctl.services.rbac import Caller, authenticate, grant_remedy, visible
from nocctl.services.workflow import Move, Outcome, apply, failed, has_capability
from nocctl.vocabulary import NOTIFICATION_CHANNEL_TYPES, NOTIFICATION_STATUSES, SEVERITIES

LIST_COLUMNS = ("id", "created_at", "kind", "channel", "status", "attempts", "next_attempt_at", "sent_at",
                "alert_id", "client", "site", "recipient", "last_error")
TABLE_COLUMNS = ("id", "created_at", "kind", "channel", "status", "attempts", "next_attempt_at", "recipient",
                 "last_error")
RETRY_CAPABILITY = "noc:escalate"
RETRY = Move("retry", ("FAILED",), "PENDING", RETRY_CAPABILITY, "")

DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_BACKOFF = "1m"
DEFAULT_MAX_BACKOFF = "1h"
DEFAULT_TIMEOUT = {"webhook": "10s", "command": "30s", "smtp": "10s"}
BATCH = 200  # due messages read per query
ERROR_CHARS = 200  # last_error is kept short: a reason, not a log
DEFAULT_SUBJECT = "nocctl notification"

_NOTIFY_KEYS = ("max_attempts", "backoff", "max_backoff", "channels")
_COMMON_KEYS = ("type", "timeout", "severities")
_TYPE_KEYS = {
    "webhook": ("url", "headers"),
    "command": ("command",),
    "smtp": ("host", "port", "starttls", "ssl", "username", "password", "from"),
}


# ---------------------------------------------------------------- configuration

@dataclass(frozen=True)
class Channel:
    """One configured channel. Secrets are kept out of `repr` so a stray log of the object
    cannot leak them."""

    name: str
    type: str
    timeout: int  # seconds
    severities: frozenset[str] | None = None  # None: every message
    url: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    command: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str | None = None

    def accepts(self, severity: str | None) -> bool:
        """The channel's `severities` filter lets a message of this severity through (a
        message without a severity passes only channels without a filter)."""
        return self.severities is None or (severity is not None and severity.upper() in self.severities)


@dataclass(frozen=True)
class NotifyConfig:
    channels: dict[str, Channel]
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff: int = 60  # seconds
    max_backoff: int = 3600

    def delay(self, attempts: int) -> int:
        """Seconds to wait after the `attempts`-th failed attempt: backoff·2^(attempts−1),
        at most max_backoff."""
        exponent = max(attempts - 1, 0)
        if exponent >= 62 or self.backoff << exponent >= self.max_backoff:
            return self.max_backoff
        return self.backoff << exponent


def _bad(settings: Any, where: str, problem: str) -> BadInput:
    path = getattr(settings, "config_path", None)
    return BadInput(f"{where}: {problem}", f"fix the [notify] section of {path}" if path else
                    "fix the [notify] section of the config file")


def _table(settings: Any, value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(settings, where, "must be a table")
    return value


def _unknown(settings: Any, table: Mapping[str, Any], allowed: Iterable[str], where: str, what: str) -> None:
    extra = sorted(set(table) - set(allowed))
    if extra:
        raise _bad(settings, where, f"unknown key \"{extra[0]}\" {what} (one of: {', '.join(sorted(allowed))})")


def _text(settings: Any, table: Mapping[str, Any], key: str, where: str, required_by: str | None = None
          ) -> str | None:
    """A non-empty string setting. Errors never repeat the value (it may be a secret)."""
    value = table.get(key)
    if value is None:
        if required_by:
            raise _bad(settings, where, f"{required_by} needs \"{key}\"")
        return None
    if not isinstance(value, str) or not value.strip():
        raise _bad(settings, where, f"\"{key}\" must be a non-empty string")
    return value


def _flag(settings: Any, table: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise _bad(settings, where, f"\"{key}\" must be true or false")
    return value


def _duration(settings: Any, value: Any, where: str) -> int:
    if not isinstance(value, bool) and isinstance(value, (str, int)):
        try:
            return clock.parse_duration(value, where)
        except BadInput:
            pass
    raise _bad(settings, where, "must be a duration longer than zero, such as \"30s\", \"1m\" or \"1h\"")


def _channel(settings: Any, name: str, raw: Any) -> Channel:
    where = f"notify.channels.{name}"
    table = _table(settings, raw, where)
    kind = table.get("type")
    if kind not in NOTIFICATION_CHANNEL_TYPES:
        kinds = ", ".join(NOTIFICATION_CHANNEL_TYPES)
        raise _bad(settings, where, f"needs \"type\" ({kinds})" if kind is None else f"\"type\" must be one of {kinds}")
    _unknown(settings, table, _COMMON_KEYS + _TYPE_KEYS[kind], where, f"for a {kind} channel")
    if len(name) > 100 or not name.strip():
        raise _bad(settings, where, "a channel name must have 1 to 100 characters")
    timeout = _duration(settings, table.get("timeout", DEFAULT_TIMEOUT[kind]), f"{where}.timeout")
    severities = None
    if "severities" in table:
        listed = table["severities"]
        if not isinstance(listed, list) or not listed or not all(isinstance(s, str) for s in listed):
            raise _bad(settings, where, "\"severities\" must be a non-empty list such as [\"CRITICAL\", \"HIGH\"]")
        for severity in listed:
            if severity.upper() not in SEVERITIES:
                raise _bad(settings, where, f"\"severities\" lists {severity!r}, which is not one of "
                                            f"{', '.join(SEVERITIES)}")
        severities = frozenset(s.upper() for s in listed)
    common = {"name": name, "type": kind, "timeout": timeout, "severities": severities}

    if kind == "webhook":
        url = _text(settings, table, "url", where, "webhook")
        parts = urlsplit(url.strip())
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise _bad(settings, where, "\"url\" must be an http:// or https:// URL")
        if "@" in parts.netloc:
            raise _bad(settings, where, "\"url\" must not carry user:password@; put credentials in \"headers\"")
        headers = _table(settings, table.get("headers", {}), f"{where}.headers")
        for header, value in headers.items():
            if not header or any(c in header for c in " :\t\r\n") or not header.isascii():
                raise _bad(settings, f"{where}.headers", f"{header!r} is not a valid header name")
            if not isinstance(value, str) or "\r" in value or "\n" in value:
                raise _bad(settings, f"{where}.headers", f"the value of {header!r} must be one line of text")
        return Channel(**common, url=url.strip(), headers=dict(headers))

    if kind == "command":
        return Channel(**common, command=_text(settings, table, "command", where, "command"))

    host = _text(settings, table, "host", where, "smtp")
    use_ssl = _flag(settings, table, "ssl", where, False)
    starttls = _flag(settings, table, "starttls", where, not use_ssl)
    if use_ssl and starttls:
        raise _bad(settings, where, "\"ssl\" and \"starttls\" exclude each other (ssl: port 465, starttls: 587)")
    port = table.get("port", 465 if use_ssl else 587 if starttls else 25)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise _bad(settings, where, "\"port\" must be a port number (1-65535)")
    username = _text(settings, table, "username", where)
    password = table.get("password")
    if password is not None and not isinstance(password, str):
        raise _bad(settings, where, "\"password\" must be a string")
    if username and password is None:
        raise _bad(settings, where, "smtp \"username\" needs \"password\"")
    sender = _text(settings, table, "from", where, "smtp")
    if "@" not in sender or any(c in sender for c in "\r\n"):
        raise _bad(settings, where, "\"from\" must be an email address")
    return Channel(**common, host=host.strip(), port=port, starttls=starttls, ssl=use_ssl, username=username,
                   password=password, sender=sender.strip())


def load_config(settings: Any) -> NotifyConfig:
    """The validated `[notify]` section (absent: defaults and no channels). Bad values:
    BadInput (exit 65) naming the exact key, never repeating a secret."""
    raw = settings.get("notify")
    if raw is None:
        raw = {}
    section = _table(settings, raw, "notify")
    _unknown(settings, section, _NOTIFY_KEYS, "notify", "")
    max_attempts = section.get("max_attempts", DEFAULT_MAX_ATTEMPTS)
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise _bad(settings, "notify.max_attempts", "must be a whole number of at least 1")
    backoff = _duration(settings, section.get("backoff", DEFAULT_BACKOFF), "notify.backoff")
    max_backoff = _duration(settings, section.get("max_backoff", DEFAULT_MAX_BACKOFF), "notify.max_backoff")
    if max_backoff < backoff:
        raise _bad(settings, "notify.max_backoff", "must not be shorter than notify.backoff")
    channels_raw = _table(settings, section.get("channels", {}), "notify.channels")
    channels = {str(name): _channel(settings, str(name), spec) for name, spec in channels_raw.items()}
    return NotifyConfig(channels, max_attempts, backoff, max_backoff)


def load_channels(settings: Any) -> dict[str, Channel]:
    """The configured channels by name, validated (see `load_config`)."""
    return load_config(settings).channels


# ---------------------------------------------------------------- queueing

@dataclass
class Message:
    """What to send. `payload` is what every channel receives (JSON; `subject` and `text`
    shape the mail of an smtp channel); the ids place the message for visibility, and
    `recipient_id` names the person an smtp channel mails."""

    kind: str
    payload: dict[str, Any]
    alert_id: int | None = None
    client_id: int | None = None
    site_id: int | None = None
    recipient_id: int | None = None
    severity: str | None = None


def queue(session: Session, tenant_id: int, messages: Iterable[Message], channels: Mapping[str, Channel],
          now: datetime) -> int:
    """Put one PENDING row per (message, channel whose severity filter accepts it) in the
    outbox, inside the caller's transaction, with one executemany. Returns the rows queued."""
    sql = RawSQL(session)
    stamp = sql.ts(now)
    rows = []
    for m in messages:
        payload = sql.json(m.payload)  # once, whatever the number of channels
        rows += [(tenant_id, stamp, m.kind, channel.name, m.alert_id, m.client_id, m.site_id, m.recipient_id, payload,
                  stamp) for channel in channels.values() if channel.accepts(m.severity)]
    # Driver-form values on the raw connection: an escalation pass queues thousands at once.
    sql.many("INSERT INTO notification (tenant_id, created_at, kind, channel, alert_id, client_id, site_id,"
             " recipient_id, payload, status, attempts, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?,"
             " 'PENDING', 0, ?)", rows)
    return len(rows)


# ---------------------------------------------------------------- delivery

@dataclass(frozen=True)
class Attempt:
    """The outcome of one delivery: ok, or a short error (and whether retrying is pointless)."""

    ok: bool
    error: str | None = None
    permanent: bool = False


SENT = Attempt(True)


def _short(text: str) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= ERROR_CHARS else line[:ERROR_CHARS - 1] + "…"


def _network_error(exc: BaseException, timeout: int) -> str:
    """A short reason for a network failure that never repeats an address or a URL."""
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return f"timed out after {clock.format_duration(timeout)}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.RemoteDisconnected):  # (a ConnectionResetError too)
        return "connection closed by the server without a response"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(exc, socket.gaierror):
        return "cannot resolve the host name"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted ({exc.verify_message or 'verification failed'})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or type(exc).__name__})"
    if isinstance(exc, http.client.HTTPException):
        return f"bad HTTP response ({type(exc).__name__})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return f"network error ({type(exc).__name__})"


def _deliver_webhook(channel: Channel, notification_id: int, payload: dict[str, Any]) -> Attempt:
    import urllib.error
    import urllib.request

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        """A redirect is a failure: following it would turn the POST into a GET without the
        payload and count a message as sent that nobody received."""

        def redirect_request(self, *args, **kwargs):
            return None

    body = json.dumps(payload, ensure_ascii=False).encode()
    request = urllib.request.Request(channel.url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "nocctl", "X-Noc-Notification-Id": str(notification_id),
        **channel.headers})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=channel.timeout) as response:
            response.read(65536)
            status = response.status
    except urllib.error.HTTPError as exc:
        exc.close()
        return Attempt(False, f"HTTP {exc.code}")
    except urllib.error.URLError as exc:
        reason = exc.reason
        return Attempt(False, _network_error(reason, channel.timeout) if isinstance(reason, BaseException)
                       else "network error")
    except (OSError, http.client.HTTPException) as exc:
        return Attempt(False, _network_error(exc, channel.timeout))
    return SENT if 200 <= status < 300 else Attempt(False, f"HTTP {status}")


def _deliver_command(channel: Channel, notification_id: int, payload: dict[str, Any]) -> Attempt:
    env = {**os.environ, "NOC_NOTIFICATION_ID": str(notification_id), "NOC_CHANNEL": channel.name}
    try:
        # Its own process group, so a timeout kills what the shell started too (a grandchild
        # holding the pipes open would otherwise keep the pass waiting).
        process = subprocess.Popen(["sh", "-c", channel.command], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=env, start_new_session=True)
    except OSError as exc:
        return Attempt(False, f"cannot run the command: {exc.strerror or type(exc).__name__}")
    try:
        _, stderr = process.communicate(json.dumps(payload, ensure_ascii=False).encode(), timeout=channel.timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.communicate()
        return Attempt(False, f"timed out after {clock.format_duration(channel.timeout)}")
    if process.returncode == 0:
        return SENT
    if process.returncode < 0:
        try:
            name = signal.Signals(-process.returncode).name
        except ValueError:
            name = str(-process.returncode)
        return Attempt(False, f"killed by signal {name}")
    first = next((line for line in stderr.decode(errors="replace").splitlines() if line.strip()), "")
    return Attempt(False, _short(f"exit status {process.returncode}" + (f": {first.strip()}" if first else "")))


def _mail(channel: Channel, notification_id: int, payload: dict[str, Any], to: str, now: datetime):
    from email.message import EmailMessage
    from email.utils import format_datetime, make_msgid

    message = EmailMessage()
    subject = payload.get("subject") if isinstance(payload, dict) else None
    message["Subject"] = " ".join(str(subject).split()) if subject else DEFAULT_SUBJECT
    message["From"] = channel.sender
    message["To"] = to
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(f"nocctl.{notification_id}", domain=channel.sender.rpartition("@")[2])
    text = payload.get("text") if isinstance(payload, dict) else None
    message.set_content(str(text) if text else json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=True))
    return message


def _quit(client) -> None:
    """Say goodbye; once the mail is taken, a server that fumbles QUIT changes nothing."""
    try:
        client.quit()
    except Exception:  # noqa: BLE001
        client.close()


def _deliver_smtp(channel: Channel, notification_id: int, payload: dict[str, Any], to: str | None,
                  now: datetime) -> Attempt:
    import smtplib

    if not to or not to.strip():
        return Attempt(False, "recipient has no email address", permanent=True)
    try:
        message = _mail(channel, notification_id, payload, to.strip(), now)
    except (ValueError, TypeError) as exc:
        return Attempt(False, f"cannot build the mail ({type(exc).__name__})", permanent=True)
    try:
        if channel.ssl:
            client = smtplib.SMTP_SSL(channel.host, channel.port, timeout=channel.timeout,
                                      context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout)
        try:
            if channel.starttls:
                client.starttls(context=ssl.create_default_context())
            if channel.username:
                client.login(channel.username, channel.password or "")
            client.send_message(message)
        finally:
            _quit(client)
    except smtplib.SMTPAuthenticationError as exc:
        return Attempt(False, f"SMTP authentication failed ({exc.smtp_code})")
    except smtplib.SMTPRecipientsRefused as exc:
        code = next(iter(exc.recipients.values()), (None,))[0]
        return Attempt(False, f"SMTP recipient refused ({code})")
    except smtplib.SMTPResponseException as exc:
        said = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return Attempt(False, _short(f"SMTP {exc.smtp_code}: {said.splitlines()[0] if said else ''}".rstrip(": ")))
    except smtplib.SMTPServerDisconnected:
        return Attempt(False, "connection closed by the server")
    except smtplib.SMTPNotSupportedError as exc:
        return Attempt(False, _short(f"SMTP: {exc}"))
    except smtplib.SMTPException as exc:
        return Attempt(False, f"SMTP error ({type(exc).__name__})")
    except OSError as exc:
        return Attempt(False, _network_error(exc, channel.timeout))
    return SENT


def deliver(channel: Channel, notification_id: int, payload: dict[str, Any], email: str | None,
            now: datetime) -> Attempt:
    """Send one message through its channel. Never raises: a channel that misbehaves in an
    unforeseen way is a failed attempt named by the exception's type only (its text could
    carry an address or a secret)."""
    try:
        if channel.type == "webhook":
            return _deliver_webhook(channel, notification_id, payload)
        if channel.type == "command":
            return _deliver_command(channel, notification_id, payload)
        return _deliver_smtp(channel, notification_id, payload, email, now)
    except Exception as exc:  # noqa: BLE001 - one broken channel must not stop the pass
        return Attempt(False, f"unexpected error ({type(exc).__name__})")


# ---------------------------------------------------------------- the pass

@dataclass(frozen=True)
class Failure:
    """A message that became FAILED in this run (for the caller to report)."""

    id: int
    tenant_id: int
    channel: str
    attempts: int
    error: str


def _due(tenant_id: int, now: datetime):
    return (Notification.tenant_id == tenant_id, Notification.status == "PENDING", Notification.next_attempt_at <= now)


def _record(session_factory, row, attempt: Attempt, config: NotifyConfig, now: datetime) -> str | None:
    """Write one outcome in a short transaction: 'sent', 'retrying' or 'failed' (None when
    the row changed meanwhile and nothing was written)."""
    attempts = row.attempts + 1
    if attempt.ok:
        values, outcome = {"status": "SENT", "sent_at": now, "attempts": attempts}, "sent"
    elif attempt.permanent or attempts >= config.max_attempts:
        values, outcome = {"status": "FAILED", "attempts": attempts, "last_error": attempt.error}, "failed"
    else:
        values = {"attempts": attempts, "last_error": attempt.error,
                  "next_attempt_at": now + timedelta(seconds=config.delay(attempts))}
        outcome = "retrying"
    table = Notification.__table__
    with session_factory() as session, session.begin():
        changed = session.execute(update(table).where(
            table.c.tenant_id == row.tenant_id, table.c.id == row.id, table.c.status == "PENDING",
            table.c.attempts == row.attempts).values(**values)).rowcount
    return outcome if changed else None


def run(engine: Engine, settings: Any, now: datetime, dry_run: bool = False,
        on_failed: Callable[[Failure], None] | None = None) -> dict[str, int]:
    """Deliver every due message of every tenant (PENDING, next_attempt_at <= now), in id
    order, holding the `notify` pass lock (another runner: TemporaryFailure, exit 75).
    Each delivery happens outside any database transaction; its outcome is written right
    after in a short one. `dry_run` counts what is due and touches nothing (no lock either:
    it changes nothing, so it cannot collide with a real run). Returns the summary
    {"due", "sent", "retrying", "failed", "duration_ms"}."""
    from nocctl.db import make_sessionmaker

    started = time.monotonic()
    config = load_config(settings)
    factory = make_sessionmaker(engine)
    summary = {"due": 0, "sent": 0, "retrying": 0, "failed": 0}
    if dry_run:
        with factory() as session, session.begin():
            for tenant_id in session.scalars(select(Tenant.id).order_by(Tenant.id)).all():
                summary["due"] += session.scalar(select(func.count()).select_from(Notification)
                                                 .where(*_due(tenant_id, now)))
        return {**summary, "duration_ms": _ms(started)}

    person = aliased(Person)
    with passlock.hold(engine, "notify"):
        with factory() as session, session.begin():
            tenant_ids = session.scalars(select(Tenant.id).order_by(Tenant.id)).all()
        for tenant_id in tenant_ids:
            after = 0
            while True:
                with factory() as session, session.begin():
                    batch = session.execute(
                        select(Notification.id, Notification.tenant_id, Notification.channel, Notification.payload,
                               Notification.attempts, Notification.recipient_id, person.email)
                        .outerjoin(person, person.id == Notification.recipient_id)
                        .where(*_due(tenant_id, now), Notification.id > after)
                        .order_by(Notification.id).limit(BATCH)).all()
                for row in batch:
                    after = row.id
                    summary["due"] += 1
                    channel = config.channels.get(row.channel)
                    if channel is None:
                        attempt = Attempt(False, _short(f"channel {row.channel} is not configured"))
                    else:
                        attempt = deliver(channel, row.id, row.payload, row.email, now)
                    outcome = _record(factory, row, attempt, config, now)
                    if outcome is None:
                        continue
                    summary[outcome] += 1
                    if outcome == "failed" and on_failed is not None:
                        on_failed(Failure(row.id, row.tenant_id, row.channel, row.attempts + 1, attempt.error or ""))
                if len(batch) < BATCH:
                    break
    return {**summary, "duration_ms": _ms(started)}


def _ms(started: float) -> int:
    return int(round((time.monotonic() - started) * 1000))


# ---------------------------------------------------------------- looking and retrying

def list_notifications(session: Session, caller: Caller, status: str | None = None, limit: int = 100
                       ) -> list[dict[str, Any]]:
    """The outbox rows the caller can see, newest first. A message of a client or site is
    seen with it; a tenant-level one (no client) only through a tenant-wide view grant.
    `next_attempt_at` is given only for PENDING messages."""
    if status is not None and status.upper() not in NOTIFICATION_STATUSES:
        raise BadInput(f"unknown status {status!r}", "one of " + ", ".join(s.lower() for s in NOTIFICATION_STATUSES))
    with session.begin():
        actor = authenticate(session, caller)
        client, site, person = aliased(BusinessUnit), aliased(BusinessUnit), aliased(Person)
        query = (
            select(Notification, client.code.label("client"), site.code.label("site"),
                   person.username.label("recipient"))
            .outerjoin(client, client.id == Notification.client_id)
            .outerjoin(site, site.id == Notification.site_id)
            .outerjoin(person, person.id == Notification.recipient_id)
            .where(Notification.tenant_id == actor.tenant_id,
                   visible(actor, Notification.client_id, Notification.site_id))
        )
        if status is not None:
            query = query.where(Notification.status == status.upper())
        query = query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)
        return [
            {"id": n.id, "created_at": n.created_at, "kind": n.kind, "channel": n.channel, "status": n.status,
             "attempts": n.attempts, "next_attempt_at": n.next_attempt_at if n.status == "PENDING" else None,
             "sent_at": n.sent_at, "alert_id": n.alert_id, "client": client_code, "site": site_code,
             "recipient": recipient, "last_error": n.last_error}
            for n, client_code, site_code, recipient in session.execute(query)
        ]


def retry(session: Session, caller: Caller, ids: Sequence[int]) -> list[Outcome]:
    """Put FAILED messages back in the queue: PENDING, attempts 0, due now (the clock's).
    Needs noc:escalate over the message's client (tenant-wide for a tenant-level one).
    Each id is reported: not seen or nonexistent 3, not permitted 77, not FAILED 4; the
    others are done. Not audited: it changes no alert and no configuration (see
    docs/decisions.md)."""
    now = clock.now()
    outcomes: list[Outcome] = []
    table = Notification.__table__
    with session.begin():
        actor = authenticate(session, caller)
        for notification_id in dict.fromkeys(ids):
            label = str(notification_id)
            row = session.execute(select(Notification.id, Notification.client_id, Notification.site_id,
                                         Notification.status).where(
                Notification.tenant_id == actor.tenant_id, Notification.id == notification_id,
                visible(actor, Notification.client_id, Notification.site_id))).first()
            try:
                if row is None:
                    raise NotFound(f"no notification {label}", "see `nocctl notify list`")
                if not has_capability(session, actor, RETRY_CAPABILITY, row.client_id, row.site_id):
                    raise PermissionDenied(f"{actor.username!r} lacks {RETRY_CAPABILITY} for notification {row.id}",
                                           grant_remedy(actor.username, RETRY_CAPABILITY))
                status = apply(session, table, row.id, RETRY,
                               {"status": "PENDING", "attempts": 0, "next_attempt_at": now})
            except NocError as exc:
                outcomes.append(failed(label, exc, row.id if row else None))
                continue
            outcomes.append(Outcome(label, row.id, True, status))
    return outcomes
