"""The notification outbox (DESIGN §3 "Notifications", §5, §6): `notify.queue`, and
`nocctl notify run/list/retry` delivering to real local endpoints — an HTTP server, shell
commands and a small SMTP server written here — with backoff, giving up, the pass lock,
config validation, secrets kept out of every output, and visibility. Time is stepped with
`--now`, never slept through."""
from __future__ import annotations

import base64
import email
import email.policy
import http.server
import json
import socket
import socketserver
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from ingest_helpers import ORG, alert, ndjson, rows
from nocctl import config
from nocctl.db import make_engine, make_sessionmaker
from nocctl.models import Notification, Tenant
from nocctl.services import notify, passlock

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
PAYLOAD = {"subject": "CRITICAL DEVICE_OFFLINE at ACME-BLR-WF", "text": "cam-01 is offline since 10:00Z",
           "alert_id": 1, "severity": "CRITICAL"}


def iso(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def later(**delta) -> str:
    return iso(T0 + timedelta(**delta))


# ---------------------------------------------------------------- local endpoints

class Hook:
    """An HTTP server on 127.0.0.1 answering POSTs with the given statuses in turn (then
    `then`), recording every request."""

    def __init__(self, statuses=(), then=200):
        self.statuses = list(statuses)
        self.then = then
        self.requests: list[dict] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = hook.statuses.pop(0) if hook.statuses else hook.then
                hook.requests.append({"path": self.path, "headers": self.headers, "body": body,
                                      "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path="/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def successes(self) -> int:
        return sum(200 <= r["status"] < 300 for r in self.requests)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class FakeSmtp:
    """Enough of an SMTP server for smtplib: EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT.
    Keeps the messages received and the logins tried."""

    def __init__(self, password: str):
        self.password = password
        self.messages: list[dict] = []
        self.logins: list[tuple[str, bool]] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, text: str):
                self.wfile.write(text.encode() + b"\r\n")

            def handle(self):
                self.reply("220 fake.local ESMTP")
                envelope = {"from": None, "to": []}
                while line := self.rfile.readline():
                    command = line.decode().strip()
                    verb = command.split(" ", 1)[0].upper()
                    if verb == "EHLO":
                        self.reply("250-fake.local\r\n250-AUTH PLAIN\r\n250 8BITMIME")
                    elif verb == "HELO":
                        self.reply("250 fake.local")
                    elif verb == "AUTH":
                        parts = command.split()
                        ok = False
                        if len(parts) == 3 and parts[1].upper() == "PLAIN":
                            _, user, password = base64.b64decode(parts[2]).decode().split("\0")
                            ok = password == outer.password
                            outer.logins.append((user, ok))
                        self.reply("235 ok" if ok else "535 5.7.8 authentication failed")
                    elif verb == "MAIL":
                        envelope = {"from": command.split(":", 1)[1].strip().split()[0].strip("<>"), "to": []}
                        self.reply("250 ok")
                    elif verb == "RCPT":
                        envelope["to"].append(command.split(":", 1)[1].strip().strip("<>"))
                        self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 go ahead")
                        data = []
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            data.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                        outer.messages.append({**envelope, "message": email.message_from_bytes(
                            b"".join(data), policy=email.policy.default)})
                        self.reply("250 queued")
                    elif verb in ("RSET", "NOOP"):
                        self.reply("250 ok")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 not implemented")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def dead_port() -> int:
    """A port on 127.0.0.1 with nothing listening."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def endpoints():
    """Start Hook/FakeSmtp servers and a silent listener; all closed afterwards."""
    started = []

    class Factory:
        def hook(self, statuses=(), then=200) -> Hook:
            started.append(Hook(statuses, then))
            return started[-1]

        def smtp(self, password="pw") -> FakeSmtp:
            started.append(FakeSmtp(password))
            return started[-1]

        def silent(self) -> int:
            """Accepts connections (the kernel does) and never answers."""
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(16)
            started.append(listener)
            return listener.getsockname()[1]

    yield Factory()
    for thing in started:
        thing.close()


# ---------------------------------------------------------------- helpers

@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    """Webhooks honour the proxy variables (an ops host may need one); these tests talk to
    127.0.0.1 directly whatever the machine running them has set."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def noc(admin_cli, monkeypatch):
    """An initialised database with the example organisation; the clock at T0."""
    monkeypatch.setenv("NOC_NOW", iso(T0))
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


@pytest.fixture
def configure(tmp_path, monkeypatch):
    """Write the config file (TOML text) that every later command reads."""

    def write(text: str) -> Path:
        path = tmp_path / "nocctl.toml"
        path.write_text(text)
        monkeypatch.setenv("NOC_CONFIG", str(path))
        return path

    return write


def webhook(name: str, url: str, **extra) -> str:
    lines = [f"[notify.channels.{name}]", 'type = "webhook"', f'url = "{url}"', 'timeout = "2s"']
    lines += [f"{key} = {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def smtp(name: str, port: int, password: str = "pw", **extra) -> str:
    lines = [f"[notify.channels.{name}]", 'type = "smtp"', 'host = "127.0.0.1"', f"port = {port}",
             "starttls = false", 'username = "noc"', f'password = "{password}"', 'from = "noc@example.com"',
             'timeout = "2s"']
    lines += [f"{key} = {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def unit(db_url: str, code: str) -> int:
    return rows(db_url, "SELECT id FROM business_unit WHERE code = :code", code=code)[0][0]


def person(db_url: str, username: str) -> int:
    return rows(db_url, "SELECT id FROM person WHERE username = :u", u=username)[0][0]


def message(db_url: str, site: str | None = "ACME-BLR-WF", client: str | None = "ACME", **fields) -> notify.Message:
    values = {"kind": "escalation", "payload": PAYLOAD, "severity": "CRITICAL",
              "client_id": unit(db_url, client) if client else None, "site_id": unit(db_url, site) if site else None}
    values.update(fields)
    return notify.Message(**values)


def put(db_url: str, *messages: notify.Message, tenant: str = "default", now: datetime = T0) -> int:
    """Queue messages through the configured channels, the way the escalation pass does."""
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session, session.begin():
            tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == tenant))
            return notify.queue(session, tenant_id, messages, notify.load_channels(config.resolve()), now)
    finally:
        engine.dispose()


def outbox(db_url: str) -> list[Notification]:
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            return list(session.scalars(select(Notification).order_by(Notification.id)))
    finally:
        engine.dispose()


def by_channel(db_url: str) -> dict[str, Notification]:
    return {n.channel: n for n in outbox(db_url)}


def run(noc, *args: str, code: int = 0) -> dict:
    """`notify run --json …`; returns the summary without its duration."""
    result = noc("notify", "run", "--json", *args)
    assert result.exit_code == code, result.stderr
    summary = json.loads(result.stdout)
    assert isinstance(summary.pop("duration_ms"), int)
    return summary


def counts(due=0, sent=0, retrying=0, failed=0) -> dict:
    return {"due": due, "sent": sent, "retrying": retrying, "failed": failed}


def log_lines(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines()]


# ---------------------------------------------------------------- queue

def test_queue_writes_one_pending_row_per_message_and_accepting_channel(noc, db_url, configure):
    configure("[notify]\n" + webhook("all", "http://127.0.0.1:9/a")
              + webhook("crit", "http://127.0.0.1:9/c", severities='["CRITICAL"]')
              + webhook("high", "http://127.0.0.1:9/h", severities='["high", "Medium"]'))
    asha = person(db_url, "asha.rao")
    queued = put(db_url, message(db_url, severity="CRITICAL", recipient_id=asha),
                 message(db_url, severity="HIGH", kind="reminder"),
                 message(db_url, severity=None, site=None, client=None, kind="digest"))
    assert queued == 5
    found = outbox(db_url)
    assert [(n.kind, n.channel) for n in found] == [("escalation", "all"), ("escalation", "crit"),
                                                   ("reminder", "all"), ("reminder", "high"), ("digest", "all")]
    first = found[0]
    assert (first.status, first.attempts, first.next_attempt_at, first.created_at, first.sent_at, first.last_error) \
        == ("PENDING", 0, T0, T0, None, None)
    assert (first.payload, first.recipient_id, first.client_id, first.site_id) == (
        PAYLOAD, asha, unit(db_url, "ACME"), unit(db_url, "ACME-BLR-WF"))
    assert found[-1].client_id is None and found[-1].recipient_id is None
    assert put(db_url) == 0  # nothing to queue: no statement, no rows


def test_without_a_notify_section_there_are_no_channels_and_nothing_is_due(noc, db_url):
    assert notify.load_channels(config.resolve()) == {}
    assert put(db_url, message(db_url)) == 0
    result = noc("notify", "run")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""  # nothing on stdout without --json
    (line,) = log_lines(result.stderr)  # one structured summary line
    assert line["event"] == "notify.run" and line["level"] == "info"
    assert {k: line[k] for k in ("due", "sent", "retrying", "failed")} == counts()
    assert isinstance(line["duration_ms"], int)


# ---------------------------------------------------------------- 1. webhook with backoff

def test_webhook_failures_back_off_and_the_message_is_delivered_once(noc, db_url, configure, endpoints):
    hook = endpoints.hook(statuses=[500, 500], then=200)
    configure(webhook("ops-hook", hook.url("/hooks/ops"), headers='{ "X-Team" = "noc" }'))
    assert noc("ingest", input=ndjson(alert(severity="CRITICAL", at=iso(T0)))).exit_code == 0
    alert_id = rows(db_url, "SELECT id FROM alert")[0][0]
    payload = {**PAYLOAD, "alert_id": alert_id}
    assert put(db_url, message(db_url, payload=payload, alert_id=alert_id)) == 1

    assert run(noc, "--now", iso(T0)) == counts(due=1, retrying=1)
    (row,) = outbox(db_url)
    assert (row.status, row.attempts, row.last_error, row.next_attempt_at) == ("PENDING", 1, "HTTP 500",
                                                                              T0 + timedelta(minutes=1))
    assert run(noc, "--now", later(seconds=30)) == counts()  # before the backoff: not attempted
    assert len(hook.requests) == 1
    assert run(noc, "--now", later(minutes=1)) == counts(due=1, retrying=1)
    (row,) = outbox(db_url)
    assert (row.attempts, row.next_attempt_at) == (2, T0 + timedelta(minutes=3))  # 1m + 2m
    assert run(noc, "--now", later(minutes=2, seconds=59)) == counts()
    assert run(noc, "--now", later(minutes=3)) == counts(due=1, sent=1)

    assert [r["status"] for r in hook.requests] == [500, 500, 200] and hook.successes == 1
    for request in hook.requests:
        assert json.loads(request["body"]) == payload
        assert request["path"] == "/hooks/ops"
        assert request["headers"]["Content-Type"] == "application/json"
        assert request["headers"]["X-Team"] == "noc"
        assert request["headers"]["X-Noc-Notification-Id"] == str(row.id)
    for step in (later(minutes=4), later(hours=2)):  # a re-run changes nothing that was done
        assert run(noc, "--now", step) == counts()
    assert len(hook.requests) == 3

    listed = noc("notify", "list", "--status", "sent", "--format", "json")
    assert listed.exit_code == 0, listed.stderr
    (entry,) = json.loads(listed.stdout)
    assert entry == {"id": row.id, "created_at": iso(T0), "kind": "escalation", "channel": "ops-hook",
                     "status": "SENT", "attempts": 3, "next_attempt_at": None, "sent_at": later(minutes=3),
                     "alert_id": alert_id, "client": "ACME", "site": "ACME-BLR-WF", "recipient": None,
                     "last_error": "HTTP 500"}
    assert json.loads(noc("notify", "list", "--status", "pending", "--format", "json").stdout) == []


def test_a_redirect_is_a_failure_not_a_delivery(noc, db_url, configure, endpoints):
    hook = endpoints.hook(then=302)
    configure(webhook("ops-hook", hook.url()))
    put(db_url, message(db_url))
    assert run(noc, "--now", iso(T0)) == counts(due=1, retrying=1)
    assert outbox(db_url)[0].last_error == "HTTP 302" and len(hook.requests) == 1


# ---------------------------------------------------------------- 2. a channel down for good

def test_a_channel_down_for_good_gives_up_after_max_attempts_and_loses_nothing(noc, db_url, configure, endpoints):
    up = endpoints.hook()
    configure('[notify]\nmax_attempts = 4\nbackoff = "1m"\nmax_backoff = "2m"\n'
              + webhook("down", f"http://127.0.0.1:{dead_port()}/hook") + webhook("up", up.url()))
    assert put(db_url, message(db_url)) == 2

    assert run(noc, "--now", iso(T0)) == counts(due=2, sent=1, retrying=1)
    assert run(noc, "--now", later(minutes=1)) == counts(due=1, retrying=1)
    assert run(noc, "--now", later(minutes=3)) == counts(due=1, retrying=1)
    down = by_channel(db_url)["down"]
    assert (down.attempts, down.next_attempt_at) == (3, T0 + timedelta(minutes=5))  # 4m capped at 2m
    assert run(noc, "--now", later(minutes=4)) == counts()

    gave_up = noc("notify", "run", "--now", later(minutes=5))
    assert gave_up.exit_code == 65, gave_up.stderr  # cron hears about a message given up
    warning, summary = log_lines(gave_up.stderr)
    assert (warning["event"], warning["level"], warning["channel"], warning["id"], warning["attempts"],
            warning["error"]) == ("notify.failed", "warning", "down", down.id, 4, "connection refused")
    assert (summary["event"], summary["failed"], summary["due"]) == ("notify.run", 1, 1)

    found = by_channel(db_url)
    assert len(found) == 2  # nothing deleted
    assert (found["down"].status, found["down"].attempts, found["down"].last_error, found["down"].sent_at) == (
        "FAILED", 4, "connection refused", None)
    assert (found["up"].status, found["up"].attempts, found["up"].sent_at) == ("SENT", 1, T0)
    assert len(up.requests) == 1
    assert run(noc, "--now", later(hours=1)) == counts()  # FAILED is not picked up again

    failed = json.loads(noc("notify", "list", "--status", "failed", "--format", "json").stdout)
    assert [(f["id"], f["channel"], f["last_error"]) for f in failed] == [(down.id, "down", "connection refused")]
    retried = noc("notify", "retry", str(down.id), env={"NOC_NOW": later(hours=2)})
    assert retried.exit_code == 0, retried.stderr
    assert retried.stdout == f"notification {down.id}: PENDING\n"
    again = by_channel(db_url)["down"]
    assert (again.status, again.attempts, again.next_attempt_at, again.last_error) == (
        "PENDING", 0, T0 + timedelta(hours=2), "connection refused")
    twice = noc("notify", "retry", str(down.id))
    assert twice.exit_code == 4
    assert f"notification {down.id} is PENDING: cannot retry it; retry applies to FAILED" in twice.stderr
    assert run(noc, "--now", later(hours=2)) == counts(due=1, retrying=1)  # tried again (still down)


def test_a_channel_no_longer_configured_is_a_failure_that_waits_for_the_config(noc, db_url, configure, endpoints):
    hook = endpoints.hook()
    configure(webhook("old-hook", hook.url()))
    put(db_url, message(db_url))
    configure(webhook("new-hook", hook.url()))
    assert run(noc, "--now", iso(T0)) == counts(due=1, retrying=1)
    assert outbox(db_url)[0].last_error == "channel old-hook is not configured"
    configure(webhook("old-hook", hook.url()))  # put back: the message goes out
    assert run(noc, "--now", later(minutes=1)) == counts(due=1, sent=1)
    assert len(hook.requests) == 1


# ---------------------------------------------------------------- 3. command channels

def test_command_channel_gets_the_payload_on_stdin(noc, db_url, configure, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    configure(f"""
[notify.channels.pager]
type = "command"
command = 'cat > "{out}/$NOC_NOTIFICATION_ID.json"; printf %s "$NOC_CHANNEL" > "{out}/channel.txt"'
timeout = "5s"
[notify.channels.broken]
type = "command"
command = "cat > /dev/null; echo 'disk full on /var/spool' >&2; echo 'more detail' >&2; exit 3"
[notify.channels.deaf]
type = "command"
command = "true"
""")
    put(db_url, message(db_url))
    assert run(noc, "--now", iso(T0)) == counts(due=3, sent=2, retrying=1)
    found = by_channel(db_url)
    assert json.loads((out / f"{found['pager'].id}.json").read_text()) == PAYLOAD
    assert (out / "channel.txt").read_text() == "pager"
    assert (found["broken"].status, found["broken"].last_error) == ("PENDING", "exit status 3: disk full on /var/spool")
    assert found["deaf"].status == "SENT"  # a command need not read its stdin


def test_a_command_that_hangs_is_killed_at_its_timeout(noc, db_url, configure):
    configure('[notify.channels.slow]\ntype = "command"\ncommand = "sleep 30 & sleep 30; wait"\ntimeout = "1s"\n')
    put(db_url, message(db_url))
    started = time.monotonic()
    assert run(noc, "--now", iso(T0)) == counts(due=1, retrying=1)
    assert time.monotonic() - started < 10  # the background sleep holding the pipes was killed too
    assert outbox(db_url)[0].last_error == "timed out after 1s"


# ---------------------------------------------------------------- 4. smtp

def test_smtp_mails_the_recipient_and_a_recipient_without_email_fails_at_once(noc, db_url, configure, endpoints):
    server = endpoints.smtp(password="pw")
    configure(smtp("mail", server.port, password="pw"))
    assert noc("user", "add", "no.mail", "--name", "No Mail").exit_code == 0
    asha, nomail = person(db_url, "asha.rao"), person(db_url, "no.mail")
    bare = {"alert_id": 7, "severity": "HIGH"}
    put(db_url, message(db_url, recipient_id=asha), message(db_url, recipient_id=nomail),
        message(db_url, recipient_id=asha, payload=bare, kind="reminder"))

    result = noc("notify", "run", "--json", "--now", iso(T0))
    assert result.exit_code == 65, result.stderr
    assert {k: v for k, v in json.loads(result.stdout).items() if k != "duration_ms"} == counts(
        due=3, sent=2, failed=1)
    first, second, third = outbox(db_url)
    assert (first.status, third.status) == ("SENT", "SENT")
    assert (second.status, second.attempts, second.last_error) == ("FAILED", 1, "recipient has no email address")

    assert server.logins == [("noc", True), ("noc", True)]
    mails = server.messages
    assert [(m["from"], m["to"]) for m in mails] == [("noc@example.com", ["asha.rao@example.com"])] * 2
    mail = mails[0]["message"]
    assert (mail["Subject"], mail["To"], mail["From"]) == (PAYLOAD["subject"], "asha.rao@example.com",
                                                            "noc@example.com")
    assert mail.get_content().strip() == PAYLOAD["text"]
    fallback = mails[1]["message"]
    assert fallback["Subject"] == "nocctl notification"
    assert json.loads(fallback.get_content()) == bare  # no text: the payload, pretty-printed


def test_smtp_server_down_is_retried(noc, db_url, configure):
    configure(smtp("mail", dead_port()))
    put(db_url, message(db_url, recipient_id=person(db_url, "asha.rao")))
    assert run(noc, "--now", iso(T0)) == counts(due=1, retrying=1)
    assert outbox(db_url)[0].last_error == "connection refused"


# ---------------------------------------------------------------- 5. secrets

SECRETS = ("PATHSECRET1", "QUERYSECRET2", "HEADERSECRET3", "SMTPSECRET4", "WRONGSECRET5")


def test_channel_secrets_never_reach_errors_logs_or_output(noc, db_url, configure, endpoints):
    ok, unavailable, mail = endpoints.hook(), endpoints.hook(then=503), endpoints.smtp(password="SMTPSECRET4")
    secret_path = "/hooks/PATHSECRET1?token=QUERYSECRET2"
    header = '{ Authorization = "Bearer HEADERSECRET3" }'
    configure("[notify]\nmax_attempts = 1\n"
              + webhook("hook-ok", ok.url(secret_path), headers=header)
              + webhook("hook-503", unavailable.url(secret_path), headers=header)
              + webhook("hook-dead", f"http://127.0.0.1:{dead_port()}{secret_path}", headers=header)
              + webhook("hook-silent", f"http://127.0.0.1:{endpoints.silent()}{secret_path}", headers=header)
              .replace('timeout = "2s"', 'timeout = "1s"')
              + smtp("mail-ok", mail.port, password="SMTPSECRET4")
              + smtp("mail-bad", mail.port, password="WRONGSECRET5"))
    put(db_url, message(db_url, recipient_id=person(db_url, "asha.rao")))

    result = noc("-v", "notify", "run", "--json", "--now", iso(T0))
    assert result.exit_code == 65, result.stderr
    errors = {n.channel: (n.status, n.last_error) for n in outbox(db_url)}
    assert errors == {"hook-ok": ("SENT", None), "hook-503": ("FAILED", "HTTP 503"),
                      "hook-dead": ("FAILED", "connection refused"),
                      "hook-silent": ("FAILED", "timed out after 1s"), "mail-ok": ("SENT", None),
                      "mail-bad": ("FAILED", "SMTP authentication failed (535)")}
    # the secrets were used …
    assert ok.requests[0]["path"] == secret_path
    assert ok.requests[0]["headers"]["Authorization"] == "Bearer HEADERSECRET3"
    assert ("noc", True) in mail.logins and ("noc", False) in mail.logins
    # … and appear nowhere a person or a log collector could read them
    outputs = [result.stdout, result.stderr]
    for fmt in ("table", "json", "ndjson", "csv"):
        listed = noc("notify", "list", "--format", fmt)
        assert listed.exit_code == 0, listed.stderr
        outputs += [listed.stdout, listed.stderr]
    outputs += [str(row) for row in rows(db_url, "SELECT * FROM notification")]
    outputs.append(repr(notify.load_channels(config.resolve())))
    for text in outputs:
        for secret in SECRETS:
            assert secret not in text


# ---------------------------------------------------------------- 6. the lock

def test_a_second_runner_exits_75_with_one_line(noc, db_url, configure, endpoints, engine):
    hook = endpoints.hook()
    configure(webhook("ops-hook", hook.url()))
    put(db_url, message(db_url))
    with passlock.hold(engine, "notify"):
        busy = noc("notify", "run", "--now", iso(T0))
        assert busy.exit_code == 75
        assert busy.stdout == ""
        assert busy.stderr == ("nocctl: error: another `notify` pass is running; it will finish on its own; "
                               "the next run picks up the rest\n")
        assert run(noc, "--dry-run", "--now", iso(T0)) == counts(due=1)  # a dry run takes no lock
    assert hook.requests == [] and outbox(db_url)[0].status == "PENDING"
    assert run(noc, "--now", iso(T0)) == counts(due=1, sent=1)  # released: the next run delivers


# ---------------------------------------------------------------- 7. config and visibility

@pytest.mark.parametrize("text, message_", [
    ('[notify.channels.mail]\ntype = "smtp"\nusername = "noc"\npassword = "TOPSECRET"\nfrom = "a@example.com"\n',
     'notify.channels.mail: smtp needs "host"'),
    ('[notify.channels.mail]\ntype = "smtp"\nhost = "h"\nusername = "noc"\nfrom = "a@example.com"\n',
     'notify.channels.mail: smtp "username" needs "password"'),
    ('[notify.channels.mail]\ntype = "smtp"\nhost = "h"\nport = "TOPSECRET"\nfrom = "a@example.com"\n',
     'notify.channels.mail: "port" must be a port number'),
    ('[notify.channels.mail]\ntype = "smtp"\nhost = "h"\nssl = true\nstarttls = true\nfrom = "a@example.com"\n',
     'notify.channels.mail: "ssl" and "starttls" exclude each other'),
    ('[notify.channels.hook]\ntype = "webhook"\nurl = "ftp://example.com/TOPSECRET"\n',
     'notify.channels.hook: "url" must be an http:// or https:// URL'),
    ('[notify.channels.hook]\ntype = "webhook"\nurl = "https://me:TOPSECRET@example.com/"\n',
     'notify.channels.hook: "url" must not carry user:password@'),
    ('[notify.channels.hook]\ntype = "webhook"\n', 'notify.channels.hook: webhook needs "url"'),
    ('[notify.channels.hook]\ntype = "webhook"\nurl = "https://example.com/"\nheaders = { X = 1 }\n',
     "notify.channels.hook.headers: the value of 'X' must be one line of text"),
    ('[notify.channels.hook]\ntype = "webhook"\nurl = "https://example.com/TOPSECRET"\nurll = "x"\n',
     'notify.channels.hook: unknown key "urll" for a webhook channel'),
    ('[notify.channels.hook]\ntype = "webhook"\nurl = "https://example.com/"\nseverities = ["URGENT"]\n',
     "notify.channels.hook: \"severities\" lists 'URGENT', which is not one of CRITICAL"),
    ('[notify.channels.page]\ntype = "pager"\n', 'notify.channels.page: "type" must be one of webhook, command, smtp'),
    ('[notify.channels.page]\ncommand = "true"\n', 'notify.channels.page: needs "type" (webhook, command, smtp)'),
    ('[notify.channels.page]\ntype = "command"\ncommand = "true"\ntimeout = "5x"\n',
     "notify.channels.page.timeout: must be a duration longer than zero"),
    ('[notify.channels.page]\ntype = "command"\n', 'notify.channels.page: command needs "command"'),
    ("[notify]\nmax_attempts = 0\n", "notify.max_attempts: must be a whole number of at least 1"),
    ('[notify]\nbackoff = "soon"\n', "notify.backoff: must be a duration longer than zero"),
    ('[notify]\nbackoff = "2h"\n', "notify.max_backoff: must not be shorter than notify.backoff"),
    ('[notify]\nretries = 3\n', 'notify: unknown key "retries"'),
    ('notify = "yes"\n', "notify: must be a table"),
])
def test_bad_config_exits_65_naming_the_key(noc, configure, text, message_):
    path = configure(text)
    result = noc("notify", "run")
    assert result.exit_code == 65
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("nocctl: error: ")
    assert message_ in result.stderr
    assert f"fix the [notify] section of {path}" in result.stderr
    assert "TOPSECRET" not in result.stderr


def test_list_shows_only_what_the_person_can_see(noc, db_url, configure):
    configure('[notify]\nmax_attempts = 1\n' + webhook("ops-hook", f"http://127.0.0.1:{dead_port()}/x"))
    put(db_url, message(db_url, site="ACME-BLR-WF", client="ACME"),
        message(db_url, site="GLOBEX-PNQ", client="GLOBEX"),
        message(db_url, site=None, client="INITECH"),
        message(db_url, site=None, client=None, kind="digest"))
    acme, globex, initech, tenant_level = (n.id for n in outbox(db_url))
    grants = {"globex.viewer": [("noc:view_client", "--client", "GLOBEX")],
              "site.viewer": [("noc:view_assigned_sites", "--site", "ACME-BLR-WF")],
              "all.viewer": [("noc:view_all_clients",)],
              "globex.escalator": [("noc:view_client", "--client", "GLOBEX"), ("noc:escalate", "--client", "GLOBEX")]}
    for username, granted in grants.items():
        assert noc("user", "add", username).exit_code == 0
        for grant in granted:
            assert noc("user", "grant", username, *grant).exit_code == 0

    def seen(username: str | None) -> list[int]:
        result = noc(*(("--as", username) if username else ()), "notify", "list", "--format", "json")
        assert result.exit_code == 0, result.stderr
        return [r["id"] for r in json.loads(result.stdout)]

    assert sorted(seen(None)) == [acme, globex, initech, tenant_level]  # the admin
    assert seen("globex.viewer") == [globex]  # none of ACME's rows, nor the tenant-level one
    assert seen("site.viewer") == [acme]
    assert sorted(seen("all.viewer")) == [acme, globex, initech, tenant_level]
    assert noc("--as", "nobody", "notify", "list").exit_code == 77
    assert seen(None)[0] == max(acme, globex, initech, tenant_level)  # newest (same time: highest id) first

    # retry: every row FAILED after one attempt; the per-id codes of DESIGN §5
    assert run(noc, "--now", iso(T0), code=65) == counts(due=4, failed=4)
    refused = noc("--as", "globex.viewer", "notify", "retry", str(globex))
    assert refused.exit_code == 77
    assert f"'globex.viewer' lacks noc:escalate for notification {globex}" in refused.stderr
    unseen = noc("--as", "globex.escalator", "notify", "retry", str(acme), str(globex), "999999")
    assert unseen.exit_code == 3
    assert unseen.stdout == f"notification {globex}: PENDING\n"
    assert f"no notification {acme}; see `nocctl notify list`" in unseen.stderr
    assert "no notification 999999" in unseen.stderr
    assert noc("--as", "globex.escalator", "notify", "retry", str(tenant_level)).exit_code == 3  # tenant-level
    report = noc("notify", "retry", str(acme), str(tenant_level), "--format", "json")
    assert report.exit_code == 0, report.stderr
    assert [(o["id"], o["ok"], o["status"]) for o in json.loads(report.stdout)] == [
        (acme, True, "PENDING"), (tenant_level, True, "PENDING")]
    assert {n.id: n.status for n in outbox(db_url)} == {acme: "PENDING", globex: "PENDING", initech: "FAILED",
                                                        tenant_level: "PENDING"}
    assert rows(db_url, "SELECT count(*) FROM audit_log WHERE target_type = 'notification'")[0][0] == 0


def test_list_formats_and_status_filter(noc, db_url, configure, endpoints):
    hook = endpoints.hook()
    configure(webhook("ops-hook", hook.url()))
    assert noc("notify", "list").stdout == "(none)\n"
    put(db_url, message(db_url), message(db_url, recipient_id=person(db_url, "asha.rao")))
    run(noc, "--now", iso(T0))
    put(db_url, message(db_url, kind="reminder"), now=T0 + timedelta(minutes=1))
    table = noc("notify", "list").stdout.splitlines()
    assert table[0].split() == ["id", "created_at", "kind", "channel", "status", "attempts", "next_attempt_at",
                                "recipient", "last_error"]
    assert "reminder" in table[2] and "PENDING" in table[2] and "asha.rao" in table[3]
    csv_lines = noc("notify", "list", "--format", "csv", "--status", "SENT").stdout.splitlines()
    assert csv_lines[0] == ",".join(notify.LIST_COLUMNS) and len(csv_lines) == 3
    pending = [json.loads(line) for line in noc("notify", "list", "--format", "ndjson", "--status", "pending")
               .stdout.splitlines()]
    assert [(p["kind"], p["next_attempt_at"]) for p in pending] == [("reminder", later(minutes=1))]
    assert len(json.loads(noc("notify", "list", "--limit", "1", "--format", "json").stdout)) == 1
    assert noc("notify", "list", "--status", "lost").exit_code == 2


def test_every_tenant_is_served(noc, db_url, configure, endpoints):
    hook = endpoints.hook()
    configure(webhook("ops-hook", hook.url()))
    assert noc("--tenant", "other", "init").exit_code == 0
    put(db_url, message(db_url, payload={"n": 1}))
    put(db_url, message(db_url, site=None, client=None, payload={"n": 2}), tenant="other")
    assert run(noc, "--now", iso(T0)) == counts(due=2, sent=2)
    assert [json.loads(r["body"]) for r in hook.requests] == [{"n": 1}, {"n": 2}]


# ---------------------------------------------------------------- 8. dry run

def test_dry_run_reports_what_is_due_and_changes_nothing(noc, db_url, configure, endpoints):
    hook = endpoints.hook()
    configure(webhook("ops-hook", hook.url()) + '[notify.channels.pager]\ntype = "command"\ncommand = "exit 1"\n')
    put(db_url, message(db_url))
    put(db_url, message(db_url), now=T0 + timedelta(minutes=5))
    before = rows(db_url, "SELECT * FROM notification ORDER BY id")
    assert run(noc, "--dry-run", "--now", iso(T0)) == counts(due=2)
    assert run(noc, "--dry-run", "--now", later(minutes=5)) == counts(due=4)
    assert run(noc, "--dry-run", "--now", later(seconds=-1)) == counts()
    quiet = noc("notify", "run", "--dry-run", "--now", iso(T0))
    assert quiet.exit_code == 0 and quiet.stdout == ""
    assert log_lines(quiet.stderr)[0]["dry_run"] is True
    assert rows(db_url, "SELECT * FROM notification ORDER BY id") == before
    assert hook.requests == []


def test_now_must_carry_an_offset(noc):
    result = noc("notify", "run", "--now", "2026-03-01T10:00:00")
    assert result.exit_code == 2 and "--now '2026-03-01T10:00:00' has no UTC offset" in result.stderr


def test_backoff_doubles_up_to_the_cap():
    cfg = notify.NotifyConfig({}, max_attempts=50, backoff=60, max_backoff=3600)
    assert [cfg.delay(n) for n in range(1, 9)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert cfg.delay(500) == 3600
