"""Every way one record can be bad, each between two good ones: the good ones are committed,
the bad one is kept (raw text in the dead letters and in --rejects, one-line reason on
stderr with its line), the counts add up, and the exit status is 65. Then the same with
the bad record inside a JSON array and a pretty-printed document, an internal error
reached by one record, the retry that keeps its sender's rights, and the rejects file on a
full disk."""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from ingest_helpers import ORG, alert, rows
from nocctl.services.ingest import pipeline

NOW = "2026-03-02T00:00:00Z"
GOOD_BEFORE = alert(entity="good-before", at="2026-03-01T10:00:00Z")
GOOD_AFTER = alert(entity="good-after", at="2026-03-01T10:01:00Z")
COUNTS = ("created", "deduplicated", "suppressed", "resolved", "acknowledged", "replayed", "unmatched", "rejected")


@pytest.fixture
def noc(admin_cli, monkeypatch):
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    monkeypatch.setenv("NOC_NOW", NOW)
    return admin_cli


def deep(levels: int, open_: str = "[", close: str = "]") -> str:
    return open_ * levels + close * levels


def deep_object(levels: int) -> str:
    return '{"a": ' * levels + "1" + "}" * levels


def native(**fields) -> dict:
    record = alert(entity="bad-one", at="2026-03-01T10:00:30Z")
    record.update(fields)
    return record


def line(**fields) -> bytes:
    return json.dumps(native(**fields)).encode()


def with_raw(text: str) -> bytes:
    """A record whose message field is given as raw JSON text."""
    return ('{"alert_type": "DEVICE_OFFLINE", "severity": "HIGH", "site": "ACME-BLR-WF", "entity_id": "bad-one",'
            ' "message": ' + text + "}").encode()


MIB = 1024 * 1024

# (id, the bad line as bytes, a word its reason must hold)
HOSTILE = [
    ("nested-100k-arrays", deep(100_000).encode(), "nested deeper than 100"),
    ("nested-100k-objects", deep_object(100_000).encode(), "nested deeper than 100"),
    ("metadata-nested-150", ('{"alert_type": "X", "severity": "HIGH", "message": "m", "site": "ACME-MYS",'
                             ' "metadata": ' + deep_object(150) + "}").encode(), "nested deeper than 100"),
    ("nan", with_raw('"m", "metadata": {"load": NaN}'), "NaN"),
    ("infinity", with_raw('"m", "metadata": {"load": Infinity}'), "Infinity"),
    ("minus-infinity", with_raw('"m", "metadata": {"load": -Infinity}'), "-Infinity"),
    ("float-overflow", with_raw('"m", "metadata": {"load": 1e400}'), "too large"),
    ("int-beyond-64-bits", with_raw('"m", "metadata": {"n": 18446744073709551616}'), "64 bits"),
    ("int-of-5000-digits", with_raw('"m", "metadata": {"n": ' + "9" * 5000 + "}"), "64 bits"),
    ("duplicate-keys", b'{"alert_type": "X", "severity": "HIGH", "message": "a", "message": "b", "site": "ACME-MYS"}',
     "duplicate key 'message'"),
    ("invalid-utf8", b'{"alert_type": "X", "severity": "HIGH", "message": "caf\xc3\x28 \xff", "site": "ACME-MYS"}',
     "UTF-8"),
    ("utf8-encoded-surrogate",
     b'{"alert_type": "X", "severity": "HIGH", "message": "\xed\xa0\x80", "site": "ACME-MYS"}',
     "UTF-8"),
    ("lone-surrogate-escape", with_raw('"broken \\ud800 text"'), "surrogate"),
    ("raw-nul-in-a-string", with_raw('"nul \x00 here"'), "Invalid control character"),
    ("raw-nul-outside-strings", with_raw('"m"\x00'), "invalid JSON"),
    ("escaped-nul", with_raw('"nul \\u0000 here"'), "NUL"),
    ("year-9999", line(occurred_at="9999-12-31T23:59:59Z"), "outside the times"),
    ("year-1-plus-14h", line(occurred_at="0001-01-01T00:00:00+14:00"), "not a representable time"),
    ("before-the-epoch", line(occurred_at="1969-12-31T23:59:59Z"), "outside the times"),
    ("an-hour-in-the-future", line(occurred_at="2026-03-02T01:00:00Z"), "ahead of the clock"),
    ("february-30", line(occurred_at="2026-02-30T00:00:00Z"), "not an ISO 8601 time"),
    ("no-offset", line(occurred_at="2026-03-01T10:00:00"), "no UTC offset"),
    ("time-as-number", line(occurred_at=1772359200), "ISO 8601 string"),
    ("over-the-size-limit", line(message="x" * (MIB + 10)), "larger than the 1 MiB limit"),
    ("binary-garbage", bytes(range(1, 256)).replace(b"\n", b"").replace(b"\r", b""), "not UTF-8"),
    ("truncated-json", b'{"alert_type": "X", "severity": "HIGH", "message": "cut', "invalid JSON"),
    ("json-null", b"null", "must be a JSON object"),
    ("json-number", b"42", "must be a JSON object"),
    ("unknown-field", line(sevrity="HIGH"), "unknown field(s): sevrity"),
    ("wrong-type", line(severity=3), "severity must be one of"),
    ("unknown-site", line(site="NOWHERE"), "unknown site 'NOWHERE'"),
    ("alert-type-10k", line(alert_type="A" * 10_000), "not a usable type name"),
    ("entity-id-too-long", line(entity_id="e" * 201), "entity_id is longer than 200"),
    ("event-id-a-float", line(event_id=1.5), "event_id must be a string or an integer"),
    ("metadata-a-list", line(metadata=[1, 2]), "metadata must be an object"),
    ("alertmanager-labels-not-strings", json.dumps({"labels": {"alertname": "HostDown", "site": 7},
                                                    "startsAt": "2026-03-01T10:00:00Z"}).encode(), "labels"),
    ("alertmanager-year-1-start", json.dumps({"labels": {"alertname": "HostDown", "site": "ACME-MYS"},
                                              "startsAt": "0001-01-01T00:00:00+14:00"}).encode(), "representable"),
    ("pagerduty-bad-severity", json.dumps({"event_action": "trigger", "routing_key": "k",
                                           "payload": {"summary": "s", "source": "h", "severity": "urgent",
                                                       "group": "ACME-MYS"}}).encode(), "payload.severity"),
    ("pagerduty-future", json.dumps({"event_action": "trigger", "routing_key": "k",
                                     "payload": {"summary": "s", "source": "h", "severity": "info",
                                                 "group": "ACME-MYS", "timestamp": "2030-01-01T00:00:00Z"}}).encode(),
     "ahead of the clock"),
]


def expected_raw(bad: bytes, limit: int = MIB) -> str:
    text = bad[:limit].decode("utf-8", errors="backslashreplace")
    return text.replace("\x00", "\\x00")


def check_identity(summary: dict) -> None:
    assert set(summary) == {"received", *COUNTS}
    assert summary["received"] == sum(summary[k] for k in COUNTS)


def good_ones_stored(db_url: str) -> None:
    assert rows(db_url, "SELECT entity_id FROM alert WHERE entity_id IN ('good-before', 'good-after')"
                        " ORDER BY entity_id") == [("good-after",), ("good-before",)]


@pytest.mark.parametrize("bad,word", [pytest.param(b, w, id=i) for i, b, w in HOSTILE])
def test_one_hostile_record_between_two_good_ones(noc, db_url, tmp_path, bad, word):
    data = json.dumps(GOOD_BEFORE).encode() + b"\n" + bad + b"\n" + json.dumps(GOOD_AFTER).encode() + b"\n"
    source = tmp_path / "in.ndjson"
    source.write_bytes(data)
    rejects = tmp_path / "rejects.ndjson"
    result = noc("ingest", "--json", "--rejects", str(rejects), str(source))
    assert result.exit_code == 65, result.stderr
    summary = json.loads(result.stdout)
    check_identity(summary)
    assert summary["received"] == 3 and summary["created"] == 2 and summary["rejected"] == 1
    good_ones_stored(db_url)
    (reason_line,) = [text for text in result.stderr.splitlines() if "rejected:" in text]
    assert reason_line.startswith(f"nocctl: {source}:2: rejected: ") and word in reason_line
    assert len(reason_line) < 400, "a reason is one short line"
    (kept,) = rows(db_url, "SELECT raw, reason, line, status FROM ingest_reject")
    assert kept[0] == expected_raw(bad) and word in kept[1] and kept[2:] == (2, "PENDING")
    written = rejects.read_bytes()
    assert written.count(b"\n") == 1  # one line per reject, whatever it held
    assert written.decode().rstrip("\n") == expected_raw(bad).replace("\r", " ").replace("\n", " ")


@pytest.mark.parametrize("bad,word", [pytest.param(b, w, id=i) for i, b, w in HOSTILE
                                      if i in ("nan", "duplicate-keys", "nested-100k-arrays", "lone-surrogate-escape",
                                               "int-beyond-64-bits", "year-9999", "over-the-size-limit",
                                               "invalid-utf8")])
@pytest.mark.parametrize("layout", ["array", "pretty-array", "documents"])
def test_a_hostile_element_of_an_array_or_a_document_costs_only_itself(noc, db_url, tmp_path, bad, word, layout):
    good = [json.dumps(GOOD_BEFORE).encode(), json.dumps(GOOD_AFTER).encode()]
    if layout == "array":
        data = b"[" + good[0] + b", " + bad + b", " + good[1] + b"]\n"
    elif layout == "pretty-array":
        data = b"[\n  " + good[0] + b",\n  " + bad + b",\n  " + good[1] + b"\n]\n"
    else:
        pretty = [json.dumps(json.loads(g), indent=2).encode() for g in good]
        data = pretty[0] + b"\n" + bad + b"\n" + pretty[1] + b"\n"
    if layout == "documents" and not bad.startswith((b"{", b"[")):
        pytest.skip("a document that is not an object starts no document")  # pragma: no cover
    source = tmp_path / "in.json"
    source.write_bytes(data)
    result = noc("ingest", "--json", str(source))
    summary = json.loads(result.stdout)
    check_identity(summary)
    assert result.exit_code == 65, result.stderr
    assert (summary["created"], summary["rejected"]) == (2, 1), result.stderr
    good_ones_stored(db_url)
    (kept,) = rows(db_url, "SELECT reason, raw FROM ingest_reject")
    assert word in kept[0]
    assert kept[1].startswith(expected_raw(bad[:200]).rstrip()[:100])


def test_feed_records_with_updated_at_far_ahead_are_refused(noc, db_url):
    records = [{"id": f"T-{i}", "updated_at": at, "site": "ACME-MYS", "status": "OPEN", "priority": "P2",
                "opened_at": "2026-03-01T09:00:00Z"}
               for i, at in enumerate(["2026-03-01T10:00:00Z", "9999-12-31T00:00:00Z", "2026-03-02T05:00:00Z"])]
    result = noc("ingest", "--kind", "ticket", "--json", input="".join(json.dumps(r) + "\n" for r in records))
    assert result.exit_code == 65
    assert json.loads(result.stdout) == {"received": 3, "inserted": 1, "updated": 0, "unchanged": 0, "rejected": 2}
    assert "ahead of the clock" in result.stderr and "outside the times" in result.stderr


def test_limits_come_from_the_config(noc, db_url, tmp_path, monkeypatch):
    config = tmp_path / "limits.toml"
    config.write_text('[ingest]\nmax_record_size = "300"\nmax_future_skew = "2h"\n')
    monkeypatch.setenv("NOC_CONFIG", str(config))
    data = [json.dumps(GOOD_BEFORE), json.dumps(native(message="x" * 400)),
            json.dumps(native(entity_id="soon", occurred_at="2026-03-02T01:30:00Z"))]
    result = noc("ingest", "--json", input="\n".join(data) + "\n")
    assert result.exit_code == 65
    assert "larger than the 300 bytes limit" in result.stderr
    assert rows(db_url, "SELECT entity_id FROM alert ORDER BY entity_id") == [("good-before",), ("soon",)]
    config.write_text('[ingest]\nmax_record_size = "huge"\n')
    bad = noc("ingest", input=json.dumps(GOOD_BEFORE) + "\n")
    assert bad.exit_code == 65 and "ingest.max_record_size 'huge' is not a size" in bad.stderr
    config.write_text('[ingest]\nmax_recordsize = "1MiB"\n')
    typo = noc("ingest", input=json.dumps(GOOD_BEFORE) + "\n")
    assert typo.exit_code == 65 and 'ingest: unknown key "max_recordsize"' in typo.stderr


# ---------------------------------------------------------------- a bug reached by one record

def test_a_bug_reached_by_one_record_keeps_it_and_commits_the_rest(noc, db_url, monkeypatch):
    """Three batches; the record with message `boom` makes the pipeline fail. It is kept as a
    dead letter `internal error: …`, every other record is stored, and the run exits 1."""
    original = pipeline.Ingest._add_trigger

    def buggy(self, triggers, event):
        if event.record.message == "boom":
            raise RuntimeError("boom reached")
        return original(self, triggers, event)

    monkeypatch.setattr(pipeline.Ingest, "_add_trigger", buggy)
    records = [alert(entity=f"dev-{i}", at=f"2026-03-01T10:{i // 60:02d}:{i % 60:02d}Z") for i in range(300)]
    records[150]["message"] = "boom"
    result = noc("ingest", "--json", "--batch-size", "100", input="".join(json.dumps(r) + "\n" for r in records))
    assert result.exit_code == 1
    errors = [text for text in result.stderr.splitlines() if text.startswith("nocctl: error:")]
    assert errors == [("nocctl: error: internal error: 1 record(s) could not be processed; they are kept as dead"
                       " letters with reason `internal error: …`; see `nocctl ingest rejects list`, report the"
                       " reason, and retry them once fixed")]
    summary = json.loads(result.stdout)
    check_identity(summary)
    assert summary["received"] == 300 and summary["created"] == 299 and summary["rejected"] == 1
    assert rows(db_url, "SELECT count(*) FROM alert") == [(299,)]
    assert rows(db_url, "SELECT reason, line, raw FROM ingest_reject") == [
        ("internal error: RuntimeError: boom reached", 151, json.dumps(records[150]))]
    # Once fixed, the retry takes it.
    monkeypatch.setattr(pipeline.Ingest, "_add_trigger", original)
    retried = noc("ingest", "rejects", "retry", "--json")
    assert json.loads(retried.stdout) == {"retried": 1, "accepted": 1, "rejected": 0}
    assert rows(db_url, "SELECT count(*) FROM alert") == [(300,)]


def test_a_database_outage_is_not_mistaken_for_a_bad_record(noc, db_url, monkeypatch):
    """An error that is the database's (down, locked) stops the run with 75: splitting the
    batch would only turn good records into dead letters."""
    from sqlalchemy.exc import OperationalError

    def down(self, *args, **kwargs):
        raise OperationalError("INSERT", {}, Exception("server closed the connection unexpectedly"))

    monkeypatch.setattr(pipeline.Ingest, "_upsert", down)
    result = noc("ingest", input=json.dumps(GOOD_BEFORE) + "\n")
    assert result.exit_code == 75
    assert rows(db_url, "SELECT count(*) FROM ingest_reject") == [(0,)]


# ---------------------------------------------------------------- the sender's rights

@pytest.fixture
def feed(noc):
    """`feed-acme` may ingest for client ACME only."""
    assert noc("user", "add", "feed-acme").exit_code == 0
    assert noc("user", "grant", "feed-acme", "noc:ingest", "--client", "ACME").exit_code == 0
    return noc


def test_a_retry_keeps_the_senders_rights_whoever_asks(feed, db_url):
    sent = [alert(entity="ok"), alert(entity="other-client", site="GLOBEX-PNQ"),
            alert(entity="new-site", site="ACME-NEW")]
    result = feed("--as", "feed-acme", "ingest", "--json", input="".join(json.dumps(r) + "\n" for r in sent))
    assert result.exit_code == 65 and json.loads(result.stdout)["rejected"] == 2
    # The admin's own reject, which the feed account must not see.
    assert feed("ingest", input=json.dumps(alert(site="NOWHERE")) + "\n").exit_code == 65

    listed = json.loads(feed("--as", "feed-acme", "ingest", "rejects", "list", "--format", "json").stdout)
    assert sorted(r["reason"] for r in listed) == ["unknown site 'ACME-NEW'", "unknown site 'GLOBEX-PNQ'"]
    assert {r["sender"] for r in listed} == {"feed-acme"}
    everything = json.loads(feed("ingest", "rejects", "list", "--format", "json").stdout)
    assert len(everything) == 3

    assert feed("org", "site", "add", "ACME-NEW", "--client", "ACME", "--name", "New").exit_code == 0
    assert feed("org", "site", "add", "NOWHERE", "--client", "INITECH", "--name", "Nowhere").exit_code == 0
    retried = feed("ingest", "rejects", "retry", "--json")  # the admin retries all three
    assert json.loads(retried.stdout) == {"retried": 3, "accepted": 2, "rejected": 1}
    assert "unknown site 'GLOBEX-PNQ'" in retried.stderr  # still invisible to its sender
    assert rows(db_url, "SELECT entity_id FROM alert WHERE entity_id = 'other-client'") == []
    assert rows(db_url, "SELECT a.entity_id FROM alert a JOIN business_unit u ON u.id = a.site_id"
                        " WHERE u.code = 'ACME-NEW'") == [("new-site",)]
    (still,) = rows(db_url, "SELECT reason, attempts FROM ingest_reject WHERE status = 'PENDING'")
    assert still == ("unknown site 'GLOBEX-PNQ'", 2)

    # The feed account retries its own; a person without noc:ingest cannot list at all.
    again = feed("--as", "feed-acme", "ingest", "rejects", "retry", "--json")
    assert json.loads(again.stdout) == {"retried": 1, "accepted": 0, "rejected": 1}
    feed("user", "add", "viewer")
    denied = feed("--as", "viewer", "ingest", "rejects", "list")
    assert denied.exit_code == 77 and "noc:ingest" in denied.stderr


def test_a_sender_who_lost_the_right_keeps_its_records_pending(feed, db_url):
    feed("--as", "feed-acme", "ingest", input=json.dumps(alert(site="ACME-NEW")) + "\n")
    feed("org", "site", "add", "ACME-NEW", "--client", "ACME", "--name", "New")
    feed("user", "revoke", "feed-acme", "noc:ingest", "--client", "ACME")
    retried = feed("ingest", "rejects", "retry", "--json")
    assert json.loads(retried.stdout) == {"retried": 1, "accepted": 0, "rejected": 1}
    (reason,) = rows(db_url, "SELECT reason FROM ingest_reject WHERE status = 'PENDING'")[0]
    assert reason.startswith("as its sender: 'feed-acme' lacks noc:ingest")
    assert rows(db_url, "SELECT count(*) FROM alert") == [(0,)]


# An acknowledge or resolve event naming only its dedup_key, as each format sends it.
BY_KEY = {
    "native": lambda action, key, at: {"action": action, "dedup_key": key, "occurred_at": at},
    "pagerduty": lambda action, key, at: {"event_action": action, "routing_key": "k", "dedup_key": key},
}


@pytest.mark.parametrize("fmt", sorted(BY_KEY))
def test_acknowledge_and_resolve_by_key_cannot_reach_another_clients_alert(feed, db_url, fmt):
    """feed-acme (noc:ingest for ACME only) names GLOBEX's keys: GLOBEX's alerts, a site's and
    a client-level one, stay as they were and the events count as unmatched; the same events
    for ACME's own alert go through."""
    sent = [alert(site="GLOBEX-PNQ", entity="theirs", dedup_key="globex-site"),
            alert(site=None, client="GLOBEX", entity="theirs-too", dedup_key="globex-client"),
            alert(entity="ours", dedup_key="acme-site")]
    assert feed("ingest", input="".join(json.dumps(r) + "\n" for r in sent)).exit_code == 0
    events = [BY_KEY[fmt](action, key, at) for key in ("globex-site", "globex-client", "acme-site")
              for action, at in (("acknowledge", "2026-03-01T11:00:00Z"), ("resolve", "2026-03-01T11:05:00Z"))]
    result = feed("--as", "feed-acme", "ingest", "--json", input="".join(json.dumps(e) + "\n" for e in events))
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["unmatched"], summary["acknowledged"], summary["resolved"]) == (4, 1, 1)
    assert rows(db_url, "SELECT dedup_key, status, acknowledged_at, resolved_at FROM alert"
                        " WHERE dedup_key LIKE 'globex-%' ORDER BY dedup_key") == [
        ("globex-client", "NEW", None, None), ("globex-site", "NEW", None, None)]
    assert rows(db_url, "SELECT status FROM alert WHERE dedup_key = 'acme-site'") == [("RESOLVED",)]


# ---------------------------------------------------------------- the rejects file on a full disk

@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs: writes beyond it fail with ENOSPC, as on a full disk."""
    mount = tmp_path / "full"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a tmpfs for the full-disk test: {done.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_rejects_file_on_a_full_disk_is_left_as_it_was_and_nothing_is_lost(noc, db_url, full_disk):
    target = full_disk / "rejects.ndjson"
    target.write_text('{"kept": "from before"}\n')
    bad = [json.dumps(native(entity_id=f"bad-{i}", site="NOWHERE", message="x" * 1000)) for i in range(200)]
    result = noc("ingest", "--json", "--rejects", str(target),
                 input="\n".join([json.dumps(GOOD_BEFORE), *bad, json.dumps(GOOD_AFTER)]) + "\n")
    assert result.exit_code == 75, result.stderr
    errors = [text for text in result.stderr.splitlines() if text.startswith("nocctl: error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0] and "dead-letter table" in errors[0]
    assert target.read_text() == '{"kept": "from before"}\n'
    good_ones_stored(db_url)
    assert rows(db_url, "SELECT count(*) FROM ingest_reject") == [(200,)]


def test_an_unwritable_rejects_file_is_a_usage_error_before_anything_is_read(noc, db_url, tmp_path):
    result = noc("ingest", "--rejects", str(tmp_path / "missing-dir" / "r.ndjson"), input=json.dumps(GOOD_BEFORE))
    assert result.exit_code == 2
    assert rows(db_url, "SELECT count(*) FROM alert") == [(0,)]
