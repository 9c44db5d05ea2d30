"""Notifications people read (issue #17): `notify run` serving channels concurrently (a hanging
webhook delays only its own messages; the width is bounded), the bodies of the `template`
key (built-in slack, teams and text; user Jinja2 files; invalid output as a failed attempt;
a broken template as a config error), and `nocctl notify test CHANNEL`. Real local HTTP
servers in threads, no mocks."""
from __future__ import annotations

import http.server
import itertools
import json
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from ingest_helpers import ORG, alert, ndjson, rows
from test_notify import (
    T0,
    FakeSmtp,
    counts,
    dead_port,
    iso,
    message,
    outbox,
    person,
    put,
    run,
    webhook,
)

NASTY = 'cam-01 said "offline"\nline two \\ back\\slash <script>alert(1)</script> & <!channel> \t tab'


# ---------------------------------------------------------------- fixtures

@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def noc(admin_cli, monkeypatch):
    monkeypatch.setenv("NOC_NOW", iso(T0))
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


@pytest.fixture
def configure(tmp_path, monkeypatch):
    def write(text: str) -> Path:
        path = tmp_path / "nocctl.toml"
        path.write_text(text)
        monkeypatch.setenv("NOC_CONFIG", str(path))
        return path

    return write


class Server:
    """An HTTP server on 127.0.0.1 that records each POST with the monotonic time it arrived,
    waits `delay` seconds (a hanging endpoint when longer than the client's timeout), then
    answers `status`. Tracks how many requests it holds at once."""

    def __init__(self, delay: float = 0.0, status: int = 200):
        self.delay, self.status = delay, status
        self.requests: list[dict] = []
        self.active = self.most_active = 0
        self.lock = threading.Lock()
        self.closing = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server.lock:
                    server.requests.append({"at": time.monotonic(), "path": self.path, "headers": self.headers,
                                            "body": body})
                    server.active += 1
                    server.most_active = max(server.most_active, server.active)
                if server.delay:
                    server.closing.wait(server.delay)
                # No longer active once it answers: the client's next request may arrive
                # before this thread would get to count itself out after the answer.
                with server.lock:
                    server.active -= 1
                try:
                    self.send_response(server.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the client gave up (its timeout)
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, path: str | None = None) -> list[bytes]:
        return [r["body"] for r in self.requests if path is None or r["path"] == path]

    def close(self):
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers():
    started: list = []

    def start(cls=Server, *args, **kwargs):
        started.append(cls(*args, **kwargs))
        return started[-1]

    yield start
    for server in started:
        server.close()


def escalated(noc, db_url: str, message_text: str = NASTY) -> int:
    """A CRITICAL alert with `message_text`, escalated by the real pass (the built-in policy:
    15 minutes), so its notifications carry the payload the escalation pass builds."""
    result = noc("ingest", input=ndjson(alert(severity="CRITICAL", message=message_text, at=iso(T0))))
    assert result.exit_code == 0, result.stderr
    escalation = noc("escalate", "run", "--now", iso(T0 + timedelta(minutes=16)))
    assert escalation.exit_code == 0, escalation.stderr
    return rows(db_url, "SELECT id FROM alert")[0][0]


def later(minutes: int = 16) -> str:
    return iso(T0 + timedelta(minutes=minutes))


# ---------------------------------------------------------------- 1. concurrent delivery

def test_a_hanging_webhook_delays_only_its_own_messages(noc, db_url, configure, servers):
    slow, fast = servers(delay=5.0), servers()
    configure("[notify]\n" + webhook("slow", slow.url()).replace('timeout = "2s"', 'timeout = "1s"')
              + webhook("fast", fast.url()))
    for n in range(3):  # ids alternate slow, fast, slow, fast…: in id order the fast ones would wait
        assert put(db_url, message(db_url, payload={"n": n})) == 2

    started = time.monotonic()
    assert run(noc, "--now", iso(T0)) == counts(due=6, sent=3, retrying=3)
    elapsed = time.monotonic() - started

    assert [json.loads(b)["n"] for b in fast.bodies()] == [0, 1, 2]  # in order
    assert [json.loads(b)["n"] for b in slow.bodies()] == [0, 1, 2]
    slow_at = [r["at"] for r in slow.requests]
    fast_at = [r["at"] for r in fast.requests]
    # The fast channel was served while the slow one hung: all its messages arrived well
    # within the slow channel's first timeout (1 s), not after 1, 2 and 3 of them.
    assert max(fast_at) - slow_at[0] < 0.8, (fast_at, slow_at)
    # The slow channel's own messages went one after the other, each waiting out its timeout.
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(slow_at)), slow_at
    assert elapsed >= 3
    found = outbox(db_url)
    assert {(n.channel, n.status, n.attempts, n.last_error) for n in found} == {
        ("fast", "SENT", 1, None), ("slow", "PENDING", 1, "timed out after 1s")}
    assert run(noc, "--now", iso(T0)) == counts()  # a re-run changes nothing that was done


def test_parallel_channels_1_is_one_message_at_a_time(noc, db_url, configure, servers):
    slow, fast = servers(delay=5.0), servers()
    configure("[notify]\nparallel_channels = 1\n"
              + webhook("slow", slow.url()).replace('timeout = "2s"', 'timeout = "1s"') + webhook("fast", fast.url()))
    assert put(db_url, message(db_url)) == 2
    assert run(noc, "--now", iso(T0)) == counts(due=2, sent=1, retrying=1)
    assert fast.requests[0]["at"] - slow.requests[0]["at"] >= 0.9  # waited for the slow one's timeout


def test_at_most_parallel_channels_at_once_each_in_order_and_counts_exact(noc, db_url, configure, servers):
    hook = servers(delay=0.2)
    names = [f"ch{i}" for i in range(7)]
    configure("[notify]\nparallel_channels = 3\n" + "".join(webhook(n, hook.url(f"/{n}")) for n in names)
              + '[notify.channels.gone]\ntype = "webhook"\nurl = "http://127.0.0.1:9/x"\n')
    for n in range(3):
        assert put(db_url, message(db_url, payload={"n": n})) == 8
    configure("[notify]\nparallel_channels = 3\n" + "".join(webhook(n, hook.url(f"/{n}")) for n in names))
    assert run(noc, "--now", iso(T0)) == counts(due=24, sent=21, retrying=3)  # `gone`: not configured
    assert hook.most_active == 3  # bounded, and really concurrent
    for name in names:
        assert [json.loads(b)["n"] for b in hook.bodies(f"/{name}")] == [0, 1, 2]
    found = outbox(db_url)
    assert sum(n.status == "SENT" for n in found) == 21
    assert {n.last_error for n in found if n.channel == "gone"} == {"channel gone is not configured"}


def test_a_page_at_a_time_keeps_each_channels_order_across_pages_and_tenants(noc, db_url, configure, servers,
                                                                            monkeypatch):
    from nocctl.services import notify

    monkeypatch.setattr(notify, "BATCH", 2)  # several pages per channel and tenant
    hook = servers()
    configure(webhook("a", hook.url("/a")) + webhook("b", hook.url("/b")))
    assert noc("--tenant", "other", "init").exit_code == 0
    for n in range(5):
        put(db_url, message(db_url, payload={"n": n}))
    for n in range(5, 8):
        put(db_url, message(db_url, site=None, client=None, payload={"n": n}), tenant="other")
    assert run(noc, "--now", iso(T0)) == counts(due=16, sent=16)
    for path in ("/a", "/b"):
        assert [json.loads(b)["n"] for b in hook.bodies(path)] == list(range(8))


def test_only_the_main_thread_uses_the_database(noc, db_url, configure, servers):
    """Workers only send: every connection checkout of the pass happens on the calling thread
    (SQLite keeps one writer; the pool needs no connection per worker)."""
    from sqlalchemy import event

    from nocctl import config
    from nocctl.db import make_engine
    from nocctl.services import notify

    hook = servers(delay=0.05)
    configure("".join(webhook(f"ch{i}", hook.url(f"/{i}")) for i in range(4)))
    for _ in range(3):
        put(db_url, message(db_url))
    engine = make_engine(db_url)
    threads: set[str] = set()
    event.listen(engine, "checkout", lambda *args: threads.add(threading.current_thread().name))
    try:
        summary = notify.run(engine, config.resolve(), T0)
    finally:
        engine.dispose()
    assert {k: summary[k] for k in ("due", "sent", "retrying", "failed")} == counts(due=12, sent=12)
    assert hook.most_active > 1  # the sends were concurrent…
    assert threads == {threading.current_thread().name}  # … the database work was not


@pytest.mark.parametrize("value", ["0", "65", "true", '"8"'])
def test_parallel_channels_is_checked(noc, configure, value):
    configure(f"[notify]\nparallel_channels = {value}\n")
    result = noc("notify", "run")
    assert result.exit_code == 65
    assert "notify.parallel_channels: must be a whole number from 1 to 64" in result.stderr


# ---------------------------------------------------------------- 2. templates

def test_slack_and_teams_bodies_are_valid_json_showing_the_alert_as_written(noc, db_url, configure, servers):
    hook = servers()
    configure(webhook("slack", hook.url("/slack"), template='"slack"')
              + webhook("teams", hook.url("/teams"), template='"teams"')
              + webhook("raw", hook.url("/raw")))
    alert_id = escalated(noc, db_url)
    assert run(noc, "--now", later()) == counts(due=3, sent=3)

    (raw,) = hook.bodies("/raw")
    payload = json.loads(raw)  # the default: the payload as queued
    assert payload["alert"]["message"] == NASTY
    subject = payload["subject"]

    (slack_body,) = hook.bodies("/slack")
    assert b"<script>" not in slack_body and b"<!channel>" not in slack_body
    slack = json.loads(slack_body)
    slack_escaped = NASTY.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert slack["text"].startswith(f":rotating_light: {subject}\n{slack_escaped}\n")
    assert f"alert {alert_id} · CRITICAL DEVICE_OFFLINE · client ACME · site ACME-BLR-WF · level 1" in slack["text"]
    section, context = slack["blocks"]
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert section["text"]["text"] == f":rotating_light: *{subject}*\n{slack_escaped}"
    assert f"`acknowledge: nocctl alert ack {alert_id}`" in context["elements"][0]["text"]

    (teams_body,) = hook.bodies("/teams")
    assert b"<script>" not in teams_body
    teams = json.loads(teams_body)
    (attachment,) = teams["attachments"]
    assert teams["type"] == "message" and attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    title, text, details, action = card["body"]
    assert (title["text"], title["color"], title["weight"]) == (subject, "Attention", "Bolder")
    assert text == {"type": "TextBlock", "text": NASTY, "wrap": True}  # exactly as written
    assert details["text"].startswith(f"alert {alert_id} · CRITICAL DEVICE_OFFLINE")
    assert action["text"] == f"acknowledge: nocctl alert ack {alert_id}"
    for request in hook.requests:
        assert request["headers"]["Content-Type"] == "application/json"


def test_text_template_on_a_command_channel(noc, db_url, configure, tmp_path):
    out = tmp_path / "page.txt"
    configure(f"""
[notify.channels.pager]
type = "command"
command = 'cat > "{out}"'
template = "text"
""")
    escalated(noc, db_url)
    assert run(noc, "--now", later()) == counts(due=1, sent=1)
    (pager,) = outbox(db_url)
    assert out.read_text() == pager.payload["text"]  # the plain text, not JSON
    assert NASTY in out.read_text()


def test_a_user_template_file(noc, db_url, configure, servers, tmp_path):
    hook = servers()
    (tmp_path / "hooks").mkdir()
    (tmp_path / "hooks" / "ops.json.j2").write_text(
        '{"summary": "[{{ alert.severity }}] {{ alert.message }}", "alert_id": {{ alert.id | json }},\n'
        ' "site": {{ alert.site | json }}, "client": "{{ alert.client }}", "missing": "{{ alert.nothing.deeper }}",\n'
        ' "recipient": {{ recipient | json }}, "id": "{{ notification_id }}", "channel": "{{ channel }}",\n'
        ' "tags": [{% for k in ["a", "b"] %}"{{ k }}"{% if not loop.last %}, {% endif %}{% endfor %}]}\n')
    (tmp_path / "page.txt.j2").write_text("{{ alert.severity }} {{ alert.type }} at {{ alert.site }}: "
                                          "{{ alert.message }}\n")
    configure(webhook("ops", hook.url("/ops"), template='"hooks/ops.json.j2"')  # relative: from the config's dir
              + webhook("page", hook.url("/page"), template=f'"{tmp_path / "page.txt.j2"}"')
              + webhook("forced", hook.url("/forced"), template=f'"{tmp_path / "page.txt.j2"}"',
                        template_format='"text"'))
    alert_id = escalated(noc, db_url)
    assert run(noc, "--now", later()) == counts(due=3, sent=3)
    ops = json.loads(hook.bodies("/ops")[0])
    row = next(n for n in outbox(db_url) if n.channel == "ops")
    assert row.payload["recipient"]["username"]  # the site in-charge: a whole object through `| json`
    assert ops == {"summary": f"[CRITICAL] {NASTY}", "alert_id": alert_id, "site": "ACME-BLR-WF", "client": "ACME",
                   "missing": "", "recipient": row.payload["recipient"], "id": str(row.id), "channel": "ops",
                   "tags": ["a", "b"]}
    page = next(r for r in hook.requests if r["path"] == "/page")
    assert page["body"].decode() == f"CRITICAL DEVICE_OFFLINE at ACME-BLR-WF: {NASTY}\n"
    assert page["headers"]["Content-Type"] == "text/plain; charset=utf-8"


def test_a_template_that_yields_invalid_json_or_fails_is_a_failed_attempt(noc, db_url, configure, servers, tmp_path):
    hook = servers()
    (tmp_path / "unquoted.json.j2").write_text('{"text": {{ alert.message }}}\n')
    (tmp_path / "fails.json.j2").write_text('{\n"n": {{ 1 // (alert.id - alert.id) }}\n}\n')
    secret = hook.url("/SECRETPATH?token=SECRETTOKEN")
    configure("[notify]\nmax_attempts = 2\n"
              + webhook("unquoted", secret, template=f'"{tmp_path / "unquoted.json.j2"}"')
              + webhook("fails", secret, template=f'"{tmp_path / "fails.json.j2"}"'))
    escalated(noc, db_url)
    assert run(noc, "--now", later()) == counts(due=2, retrying=2)
    assert hook.requests == []  # nothing invalid was sent
    errors = {n.channel: n.last_error for n in outbox(db_url)}
    assert errors["unquoted"].startswith(f"channel unquoted: template {tmp_path / 'unquoted.json.j2'} did not "
                                         "render valid JSON (Expecting value at line 1 column 10 of the output)")
    assert errors["fails"] == (f"channel fails: template {tmp_path / 'fails.json.j2'} failed to render at line 2"
                               " (ZeroDivisionError: integer division or modulo by zero)")
    for error in errors.values():
        assert "SECRET" not in error and "127.0.0.1" not in error
    result = noc("notify", "run", "--now", later(20))
    assert result.exit_code == 65  # after max_attempts: FAILED, as any failure
    assert {n.status for n in outbox(db_url)} == {"FAILED"}


@pytest.mark.parametrize("key, problem", [
    ('template = "missing.json.j2"',
     "notify.channels.hook.template: cannot read {dir}/missing.json.j2 (No such file or directory)"),
    ('template = "broken.json.j2"',
     "notify.channels.hook.template: {dir}/broken.json.j2 does not compile: Encountered unknown tag 'endfor'"),
    ('template = "badfilter.j2"',
     "notify.channels.hook.template: {dir}/badfilter.j2 does not compile: No filter named 'nosuchfilter'. (line 1)"),
    ("template = 3", "notify.channels.hook.template: must be json, slack, teams, text or the path"),
    ('template = "slack"\ntemplate_format = "json"',
     "notify.channels.hook.template_format: applies to a template file, not the built-in 'slack'"),
    ('template = "broken.json.j2"\ntemplate_format = "xml"',
     'notify.channels.hook.template_format: must be "json" or "text"'),
])
@pytest.mark.parametrize("command", [("notify", "run"), ("notify", "test", "hook"), ("escalate", "run")])
def test_a_broken_template_is_a_config_error_naming_the_key(noc, configure, tmp_path, key, problem, command):
    (tmp_path / "broken.json.j2").write_text('{"a": "{{ x }}"}\n{% endfor %}\n')
    (tmp_path / "badfilter.j2").write_text("{{ x | nosuchfilter }}\n")
    path = configure(f'[notify.channels.hook]\ntype = "webhook"\nurl = "https://example.com/TOPSECRET"\n{key}\n')
    result = noc(*command)
    assert result.exit_code == 65, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("nocctl: error: ")
    assert problem.format(dir=tmp_path) in result.stderr
    assert f"fix the [notify] section of {path}" in result.stderr
    assert "TOPSECRET" not in result.stderr


# ---------------------------------------------------------------- 3. notify test

def test_notify_test_delivers_one_marked_message_now_and_writes_nothing(noc, db_url, configure, servers):
    hook = servers()
    configure(webhook("ops", hook.url("/ops"), severities='["CRITICAL"]')
              + webhook("chat", hook.url("/chat"), template='"slack"'))
    audited = rows(db_url, "SELECT count(*) FROM audit_log")[0][0]
    result = noc("notify", "test", "ops")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("channel ops: delivered (webhook, template json, ")
    (request,) = hook.requests
    body = json.loads(request["body"])
    assert (body["kind"], body["test"], body["alert"]["type"]) == ("test", True, "NOCCTL_TEST")
    assert body["subject"] == "[TEST] nocctl test message for channel ops"
    assert body["at"] == iso(T0)
    assert request["headers"]["X-Noc-Notification-Id"].startswith("test-")

    as_json = noc("notify", "test", "chat", "--format", "json")
    assert as_json.exit_code == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert {k: report[k] for k in ("channel", "type", "template", "delivered", "error")} == {
        "channel": "chat", "type": "webhook", "template": "slack", "delivered": True, "error": None}
    slack = json.loads(hook.bodies("/chat")[0])
    assert slack["text"].startswith("[TEST] nocctl test message for channel chat\nTest message from nocctl")
    assert outbox(db_url) == []  # not through the outbox
    assert rows(db_url, "SELECT count(*) FROM audit_log")[0][0] == audited  # nothing written


def test_notify_test_needs_no_database(configure, servers, tmp_path, cli):
    hook = servers()
    configure(webhook("ops", hook.url()))
    result = cli("--db", f"sqlite:///{tmp_path / 'nowhere' / 'noc.db'}", "notify", "test", "ops")
    assert result.exit_code == 0, result.stderr
    assert len(hook.requests) == 1 and not (tmp_path / "nowhere").exists()


def test_notify_test_reports_a_failed_delivery_with_exit_75(noc, configure, servers):
    down = servers(status=503)
    secret = down.url("/SECRETPATH?token=SECRETTOKEN")
    configure(webhook("ops", secret) + webhook("dead", f"http://127.0.0.1:{dead_port()}/SECRETPATH"))
    result = noc("notify", "test", "ops")
    assert result.exit_code == 75
    assert result.stdout == ""
    assert result.stderr == ("nocctl: error: channel ops: the test message was not delivered: HTTP 503; check the"
                             " channel's endpoint, then run `nocctl notify test ops` again\n")
    assert len(down.requests) == 1
    as_json = noc("notify", "test", "dead", "--format", "json")
    assert as_json.exit_code == 75
    report = json.loads(as_json.stdout)
    assert (report["delivered"], report["error"]) == (False, "connection refused")
    for text in (result.stderr, as_json.stdout, as_json.stderr):
        assert "SECRET" not in text


def test_notify_test_errors(noc, db_url, configure, servers, tmp_path):
    hook = servers()
    (tmp_path / "fails.j2").write_text("{{ 1 // (alert.severity | length - 4) }}\n")  # INFO: 4 letters
    configure(webhook("ops", hook.url()) + webhook("fails", hook.url(), template=f'"{tmp_path / "fails.j2"}"')
              + '[notify.channels.mail]\ntype = "smtp"\nhost = "127.0.0.1"\nport = 9\nstarttls = false\n'
                'from = "noc@example.com"\n')
    unknown = noc("notify", "test", "nope")
    assert unknown.exit_code == 3
    assert unknown.stderr == ("nocctl: error: no notification channel 'nope'; configured in [notify.channels] of"
                              " the config file: fails, mail, ops\n")
    no_to = noc("notify", "test", "mail")
    assert no_to.exit_code == 2 and "give --to ADDRESS" in no_to.stderr
    bad = noc("notify", "test", "fails")
    assert bad.exit_code == 65
    assert f"notify.channels.fails.template: channel fails: template {tmp_path / 'fails.j2'} failed to render" \
           in bad.stderr
    assert hook.requests == []


def test_notify_test_mails_through_smtp(noc, configure):
    mail = FakeSmtp("pw")
    try:
        configure(f'[notify.channels.mail]\ntype = "smtp"\nhost = "127.0.0.1"\nport = {mail.port}\n'
                  'starttls = false\nusername = "noc"\npassword = "pw"\nfrom = "noc@example.com"\n')
        result = noc("notify", "test", "mail", "--to", "asha.rao@example.com")
        assert result.exit_code == 0, result.stderr
        (received,) = mail.messages
        assert received["to"] == ["asha.rao@example.com"]
        assert received["message"]["Subject"] == "[TEST] nocctl test message for channel mail"
        assert "no alert is concerned" in received["message"].get_content()
    finally:
        mail.close()


def test_an_smtp_channel_keeps_its_subject_and_takes_the_template_as_body(noc, db_url, configure):
    mail = FakeSmtp("pw")
    try:
        configure(f'[notify.channels.mail]\ntype = "smtp"\nhost = "127.0.0.1"\nport = {mail.port}\n'
                  'starttls = false\nfrom = "noc@example.com"\ntemplate = "text"\n')
        put(db_url, message(db_url, recipient_id=person(db_url, "asha.rao"),
                            payload={"subject": "S", "alert": {"message": NASTY}}))
        assert run(noc, "--now", iso(T0)) == counts(due=1, sent=1)
        (received,) = mail.messages
        assert received["message"]["Subject"] == "S"
        assert NASTY in received["message"].get_content().replace("\r\n", "\n")
    finally:
        mail.close()
