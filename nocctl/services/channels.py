"""The notification channels (DESIGN §3, Notifications): how a message of the outbox leaves
nocctl — a webhook POST of the JSON payload, a command run with the JSON on stdin, or a mail
over SMTP — and their `[notify.channels.NAME]` tables, parsed into one typed object each.

Every channel is a `Channel`: a name, a timeout, an optional severity filter (`accepts`) and
`send(Delivery) -> Attempt`. `deliver` sends through any channel and never raises: one
broken channel must not stop the pass. What a channel sends is its `template`'s rendering of
the payload (`services/notify_templates.py`; by default the payload as JSON). Secrets
(webhook URLs, header values, the SMTP password) are kept out of `repr`, and no error
repeats them: errors name the channel or the key, never the address or the value. The
outbox and the pass that calls the channels are in `services/notify.py`.

The network and mail modules are imported where a message is sent, not here: the
escalation pass reads the channels' configuration (`accepts`) but sends nothing."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, NamedTuple
from urllib.parse import urlsplit

from nocctl import clock
from nocctl.services.config_checks import ConfigReader
from nocctl.vocabulary import NOTIFICATION_CHANNEL_TYPES, SEVERITIES

if TYPE_CHECKING:
    import smtplib
    from email.message import EmailMessage

    from nocctl.services.notify_templates import Template

ERROR_CHARS = 200  # last_error is kept short: a reason, not a log
DEFAULT_SUBJECT = "nocctl notification"
COMMON_KEYS = ("type", "timeout", "severities", "template", "template_format")


# ---------------------------------------------------------------- the interface

class Common(NamedTuple):
    """What every channel's table says, checked before its own keys."""

    name: str
    timeout: int
    severities: frozenset[str] | None
    template: Template | None = None


@dataclass(frozen=True)
class Attempt:
    """The outcome of one delivery: ok, or a short error (and whether retrying is pointless)."""

    ok: bool
    error: str | None = None
    permanent: bool = False


SENT = Attempt(True)


class Rendered(NamedTuple):
    """A body and its media type (`application/json`, `text/plain; charset=utf-8`)."""

    text: str
    media_type: str


@dataclass(frozen=True)
class Delivery:
    """One outbox row as a channel sends it: its id (`test-…` for `notify test`), the JSON
    payload (an object, as queued; `subject` and `text` shape a mail), the recipient's email
    address (an smtp channel mails them) and the pass's clock."""

    notification_id: int | str
    payload: object
    email: str | None
    now: datetime


@dataclass(frozen=True, kw_only=True)
class Channel(ABC):
    """One configured channel. `kind` is its `type = "…"` in the config, `keys` the keys its
    table may hold besides the common ones."""

    kind: ClassVar[str]
    keys: ClassVar[tuple[str, ...]]
    default_timeout: ClassVar[str]

    name: str
    timeout: int  # seconds
    severities: frozenset[str] | None = None  # None: every message
    template: Template | None = None  # None: the payload as JSON (notify_templates.DEFAULT)

    def accepts(self, severity: str | None) -> bool:
        """The channel's `severities` filter lets a message of this severity through (a
        message without a severity passes only channels without a filter)."""
        return self.severities is None or (severity is not None and severity.upper() in self.severities)

    @property
    def template_label(self) -> str:
        return self.template.label if self.template is not None else "json"

    def render(self, message: Delivery) -> Rendered:
        """The body to send: the template's rendering of the payload, or the payload as JSON.
        RenderError (notify_templates) when the template fails or yields invalid JSON."""
        if self.template is None:
            return Rendered(json.dumps(message.payload, ensure_ascii=False), "application/json")
        return Rendered(self.template.render(message.payload, message.notification_id, self.name),
                        self.template.media_type)

    def rendered(self, message: Delivery) -> Rendered | Attempt:
        """`render`, with a failure turned into a failed attempt (retried: a fixed template
        file is read at the next run)."""
        if self.template is None:  # the payload as JSON: cannot fail, and needs no Jinja
            return self.render(message)
        from nocctl.services.notify_templates import RenderError

        try:
            return self.render(message)
        except RenderError as exc:
            return Attempt(False, short_error(str(exc)))

    @classmethod
    @abstractmethod
    def parse(cls, reader: ConfigReader, where: str, table: Mapping[str, object], common: Common) -> Channel:
        """The channel of a `[notify.channels.NAME]` table whose common keys are checked."""

    @abstractmethod
    def send(self, message: Delivery) -> Attempt:
        """Send one message; a failure is an Attempt, not an exception (see `deliver`)."""


def short_error(text: str) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= ERROR_CHARS else line[:ERROR_CHARS - 1] + "…"


def network_error(exc: BaseException, timeout: int) -> str:
    """A short reason for a network failure that never repeats an address or a URL."""
    import http.client
    import ssl

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


def deliver(channel: Channel, message: Delivery) -> Attempt:
    """Send one message through its channel. Never raises: a channel that misbehaves in an
    unforeseen way is a failed attempt named by the exception's type only (its text could
    carry an address or a secret)."""
    try:
        return channel.send(message)
    except Exception as exc:  # noqa: BLE001 - one broken channel must not stop the pass
        return Attempt(False, f"unexpected error ({type(exc).__name__})")


# ---------------------------------------------------------------- webhook

@dataclass(frozen=True, kw_only=True)
class WebhookChannel(Channel):
    """A POST of the body (the JSON payload, or its template's rendering, sent with the
    template's media type); any answer but 2xx (redirects included) is a failure."""

    kind: ClassVar[str] = "webhook"
    keys: ClassVar[tuple[str, ...]] = ("url", "headers")
    default_timeout: ClassVar[str] = "10s"

    url: str = field(repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def parse(cls, reader: ConfigReader, where: str, table: Mapping[str, object], common: Common) -> Channel:
        url = reader.text(table, "url", where, "webhook").strip()
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise reader.error(where, "\"url\" must be an http:// or https:// URL")
        if "@" in parts.netloc:
            raise reader.error(where, "\"url\" must not carry user:password@; put credentials in \"headers\"")
        headers = reader.table(table.get("headers", {}), f"{where}.headers")
        checked: dict[str, str] = {}
        for header, value in headers.items():
            if not header or any(c in header for c in " :\t\r\n") or not header.isascii():
                raise reader.error(f"{where}.headers", f"{header!r} is not a valid header name")
            if not isinstance(value, str) or "\r" in value or "\n" in value:
                raise reader.error(f"{where}.headers", f"the value of {header!r} must be one line of text")
            checked[header] = value
        return cls(name=common.name, timeout=common.timeout, severities=common.severities,
                   template=common.template, url=url, headers=checked)

    def send(self, message: Delivery) -> Attempt:
        import http.client
        import urllib.error
        import urllib.request

        class _NoRedirect(urllib.request.HTTPRedirectHandler):
            """A redirect is a failure: following it would turn the POST into a GET without the
            payload and count a message as sent that nobody received."""

            def redirect_request(self, *args: object, **kwargs: object) -> None:
                return None

        rendered = self.rendered(message)
        if isinstance(rendered, Attempt):
            return rendered
        request = urllib.request.Request(self.url, data=rendered.text.encode(), method="POST", headers={
            "Content-Type": rendered.media_type, "User-Agent": "nocctl",
            "X-Noc-Notification-Id": str(message.notification_id), **self.headers})
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=self.timeout) as response:
                response.read(65536)
                status: int = response.status
        except urllib.error.HTTPError as exc:
            exc.close()
            return Attempt(False, f"HTTP {exc.code}")
        except urllib.error.URLError as exc:
            reason = exc.reason
            return Attempt(False, network_error(reason, self.timeout) if isinstance(reason, BaseException)
                           else "network error")
        except (OSError, http.client.HTTPException) as exc:
            return Attempt(False, network_error(exc, self.timeout))
        return SENT if 200 <= status < 300 else Attempt(False, f"HTTP {status}")


# ---------------------------------------------------------------- command

@dataclass(frozen=True, kw_only=True)
class CommandChannel(Channel):
    """`sh -c COMMAND` with the body (the JSON payload, or its template's text) on stdin,
    `NOC_NOTIFICATION_ID` and `NOC_CHANNEL` in its environment; exit 0 is success. At its
    timeout it is killed with all it started."""

    kind: ClassVar[str] = "command"
    keys: ClassVar[tuple[str, ...]] = ("command",)
    default_timeout: ClassVar[str] = "30s"

    command: str = field(repr=False)

    @classmethod
    def parse(cls, reader: ConfigReader, where: str, table: Mapping[str, object], common: Common) -> Channel:
        return cls(name=common.name, timeout=common.timeout, severities=common.severities,
                   template=common.template, command=reader.text(table, "command", where, "command"))

    def send(self, message: Delivery) -> Attempt:
        rendered = self.rendered(message)
        if isinstance(rendered, Attempt):
            return rendered
        env = {**os.environ, "NOC_NOTIFICATION_ID": str(message.notification_id), "NOC_CHANNEL": self.name}
        try:
            # Its own process group, so a timeout kills what the shell started too (a grandchild
            # holding the pipes open would otherwise keep the pass waiting).
            process = subprocess.Popen(["sh", "-c", self.command], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, env=env, start_new_session=True)
        except OSError as exc:
            return Attempt(False, f"cannot run the command: {exc.strerror or type(exc).__name__}")
        try:
            _, stderr = process.communicate(rendered.text.encode(), timeout=self.timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return Attempt(False, f"timed out after {clock.format_duration(self.timeout)}")
        if process.returncode == 0:
            return SENT
        if process.returncode < 0:
            try:
                name = signal.Signals(-process.returncode).name
            except ValueError:
                name = str(-process.returncode)
            return Attempt(False, f"killed by signal {name}")
        first = next((line for line in stderr.decode(errors="replace").splitlines() if line.strip()), "")
        said = f": {first.strip()}" if first else ""
        return Attempt(False, short_error(f"exit status {process.returncode}{said}"))


# ---------------------------------------------------------------- smtp

@dataclass(frozen=True, kw_only=True)
class SmtpChannel(Channel):
    """A mail to the message's recipient, with the payload's `subject` and, as its body, the
    channel's template's text when it names one, else the payload's `text` (else the payload
    as JSON); without `subject` the default one. A recipient without an address fails at once."""

    kind: ClassVar[str] = "smtp"
    keys: ClassVar[tuple[str, ...]] = ("host", "port", "starttls", "ssl", "username", "password", "from")
    default_timeout: ClassVar[str] = "10s"

    host: str
    port: int
    starttls: bool = False
    use_ssl: bool = False  # `ssl = true`: TLS from the first byte (port 465)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str

    @classmethod
    def parse(cls, reader: ConfigReader, where: str, table: Mapping[str, object], common: Common) -> Channel:
        host = reader.text(table, "host", where, "smtp")
        use_ssl = reader.flag(table, "ssl", where, False)
        starttls = reader.flag(table, "starttls", where, not use_ssl)
        if use_ssl and starttls:
            raise reader.error(where, "\"ssl\" and \"starttls\" exclude each other (ssl: port 465, starttls: 587)")
        port = table.get("port", 465 if use_ssl else 587 if starttls else 25)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise reader.error(where, "\"port\" must be a port number (1-65535)")
        username = reader.optional_text(table, "username", where)
        password = table.get("password")
        if password is not None and not isinstance(password, str):
            raise reader.error(where, "\"password\" must be a string")
        if username and password is None:
            raise reader.error(where, "smtp \"username\" needs \"password\"")
        sender = reader.text(table, "from", where, "smtp")
        if "@" not in sender or any(c in sender for c in "\r\n"):
            raise reader.error(where, "\"from\" must be an email address")
        return cls(name=common.name, timeout=common.timeout, severities=common.severities,
                   template=common.template, host=host.strip(), port=port, starttls=starttls, use_ssl=use_ssl,
                   username=username, password=password, sender=sender.strip())

    def mail(self, message: Delivery, to: str, body: str | None = None) -> EmailMessage:
        from email.message import EmailMessage
        from email.utils import format_datetime, make_msgid

        payload = message.payload
        mail = EmailMessage()
        subject = payload.get("subject") if isinstance(payload, dict) else None
        mail["Subject"] = " ".join(str(subject).split()) if subject else DEFAULT_SUBJECT
        mail["From"] = self.sender
        mail["To"] = to
        mail["Date"] = format_datetime(message.now)
        mail["Message-ID"] = make_msgid(f"nocctl.{message.notification_id}", domain=self.sender.rpartition("@")[2])
        text = payload.get("text") if isinstance(payload, dict) else None
        if body is None:  # no template: the payload's text, else the payload as JSON
            body = str(text) if text else json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=True)
        mail.set_content(body)
        return mail

    def send(self, message: Delivery) -> Attempt:
        import smtplib
        import ssl

        to = message.email
        if not to or not to.strip():
            return Attempt(False, "recipient has no email address", permanent=True)
        body = None
        if self.template is not None:
            rendered = self.rendered(message)
            if isinstance(rendered, Attempt):
                return rendered
            body = rendered.text
        try:
            mail = self.mail(message, to.strip(), body)
        except (ValueError, TypeError) as exc:
            return Attempt(False, f"cannot build the mail ({type(exc).__name__})", permanent=True)
        try:
            client: smtplib.SMTP
            if self.use_ssl:
                client = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                          context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            try:
                if self.starttls:
                    client.starttls(context=ssl.create_default_context())
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(mail)
            finally:
                _quit(client)
        except smtplib.SMTPAuthenticationError as exc:
            return Attempt(False, f"SMTP authentication failed ({exc.smtp_code})")
        except smtplib.SMTPRecipientsRefused as exc:
            code = next(iter(exc.recipients.values()), (None,))[0]
            return Attempt(False, f"SMTP recipient refused ({code})")
        except smtplib.SMTPResponseException as exc:
            said = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            return Attempt(False, short_error(f"SMTP {exc.smtp_code}: {said.splitlines()[0] if said else ''}"
                                              .rstrip(": ")))
        except smtplib.SMTPServerDisconnected:
            return Attempt(False, "connection closed by the server")
        except smtplib.SMTPNotSupportedError as exc:
            return Attempt(False, short_error(f"SMTP: {exc}"))
        except smtplib.SMTPException as exc:
            return Attempt(False, f"SMTP error ({type(exc).__name__})")
        except OSError as exc:
            return Attempt(False, network_error(exc, self.timeout))
        return SENT


def _quit(client: smtplib.SMTP) -> None:
    """Say goodbye; once the mail is taken, a server that fumbles QUIT changes nothing."""
    try:
        client.quit()
    except Exception:  # noqa: BLE001 - the mail was taken: whatever QUIT does, close and carry on
        client.close()


# ---------------------------------------------------------------- the channels of the config

# By the `type` of the config (the names and their order: vocabulary.NOTIFICATION_CHANNEL_TYPES).
CHANNEL_TYPES: dict[str, type[Channel]] = {c.kind: c for c in (WebhookChannel, CommandChannel, SmtpChannel)}


def parse_channel(reader: ConfigReader, name: str, raw: object) -> Channel:
    """One `[notify.channels.NAME]` table: its type, then the keys every channel has
    (timeout, severities), then its type's own keys."""
    where = f"notify.channels.{name}"
    table = reader.table(raw, where)
    kind = table.get("type")
    if not isinstance(kind, str) or kind not in NOTIFICATION_CHANNEL_TYPES:
        from nocctl.tunables import did_you_mean

        kinds = ", ".join(NOTIFICATION_CHANNEL_TYPES)
        meant = did_you_mean(kind, tuple(NOTIFICATION_CHANNEL_TYPES)) if isinstance(kind, str) else None
        hint = f" (did you mean \"{meant}\"?)" if meant else ""
        raise reader.error(where, f"needs \"type\" ({kinds})" if kind is None
                           else f"\"type\" must be one of {kinds}{hint}")
    channel_type = CHANNEL_TYPES[kind]
    reader.no_unknown_keys(table, COMMON_KEYS + channel_type.keys, where, f"for a {kind} channel")
    if len(name) > 100 or not name.strip():
        raise reader.error(where, "a channel name must have 1 to 100 characters")
    timeout = reader.duration(table.get("timeout", channel_type.default_timeout), f"{where}.timeout")
    severities = None
    if "severities" in table:
        listed = table["severities"]
        if not isinstance(listed, list) or not listed or not all(isinstance(s, str) for s in listed):
            raise reader.error(where, "\"severities\" must be a non-empty list such as [\"CRITICAL\", \"HIGH\"]")
        for severity in listed:
            if severity.upper() not in SEVERITIES:
                raise reader.error(where, f"\"severities\" lists {severity!r}, which is not one of "
                                          f"{', '.join(SEVERITIES)}")
        severities = frozenset(s.upper() for s in listed)
    template = None
    if "template" in table or "template_format" in table:  # Jinja is imported only for a channel that needs it
        from nocctl.services import notify_templates

        template = notify_templates.from_config(reader, where, table)
    return channel_type.parse(reader, where, table, Common(name, timeout, severities, template))


def parse_channels(reader: ConfigReader, raw: object) -> dict[str, Channel]:
    """The `[notify.channels]` table: every channel by name, validated."""
    tables = reader.table(raw, "notify.channels")
    return {str(name): parse_channel(reader, str(name), spec) for name, spec in tables.items()}
