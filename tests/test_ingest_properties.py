"""Properties of ingest that must hold for any input (Hypothesis):

- the reader yields one document per non-blank NDJSON line or array element, whatever the
  read sizes, with its line number, and a reject exactly where the input is bad;
- a run of good records of every format mixed with every kind of bad one, over several
  batches: nothing is lost (every bad record kept in the dead letters and in --rejects,
  every good one applied), and the accounting is exact
  (received = created + deduplicated + suppressed + resolved + acknowledged + replayed +
  unmatched + rejected);
- the same input again changes nothing: every good record is a replay, no dead letter is
  kept twice.
"""
from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from ingest_helpers import ORG, alert, rows
from nocctl.services.ingest.reader import pieces, read_documents
from test_ingest_hostile import COUNTS, HOSTILE, expected_raw

NOW = "2026-03-02T00:00:00Z"
BASE = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
SITES = ("ACME-BLR-WF", "ACME-MYS", "GLOBEX-PNQ")
# The 1 MiB record is left to the hostile matrix: here it would only make examples slow.
BAD = [bad for name, bad, _ in HOSTILE if name != "over-the-size-limit"]
# Those the reader itself refuses (the others are JSON that the record parsers refuse).
NOT_JSON = [bad for name, bad, _ in HOSTILE if name.startswith(("nested-", "raw-nul-")) or name in (
    "metadata-nested-150", "nan", "infinity", "minus-infinity", "float-overflow", "int-beyond-64-bits",
    "int-of-5000-digits", "duplicate-keys", "invalid-utf8", "utf8-encoded-surrogate", "lone-surrogate-escape",
    "escaped-nul", "binary-garbage", "truncated-json")]

# ---------------------------------------------------------------- the reader alone

# an escaped NUL is refused
texts = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1),
                         st.floats(allow_nan=False, allow_infinity=False), texts)
json_objects = st.dictionaries(texts, st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8), max_size=5)
reader_bad = st.sampled_from([b for b in NOT_JSON if len(b) < 20_000]) | st.binary(min_size=1, max_size=40).filter(
    lambda b: b"\n" not in b and not b.endswith(b"\r") and b.strip() and not _is_json(b))


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


@settings(max_examples=200, deadline=None)
@given(first=json_objects, rest=st.lists(st.one_of(
    json_objects.map(lambda o: ("good", json.dumps(o, ensure_ascii=False).encode())),
    reader_bad.map(lambda b: ("bad", b)),
    st.sampled_from([b"", b"   ", b"\t"]).map(lambda b: ("blank", b))), max_size=30),
    piece=st.integers(1, 300), limit=st.sampled_from([64, 1000, 1024 * 1024]), crlf=st.booleans())
def test_the_reader_yields_one_document_per_line_whatever_the_read_sizes(first, rest, piece, limit, crlf):
    lines = [("good", json.dumps(first).encode()), *rest]
    data = (b"\r\n" if crlf else b"\n").join(text for _, text in lines) + b"\n"
    documents = list(read_documents(pieces(io.BytesIO(data), piece), "in", max_record=limit))
    expected = [(number, kind == "bad" or len(text) + crlf > limit)
                for number, (kind, text) in enumerate(lines, start=1) if kind != "blank"]
    assert [(d.line, d.error is not None) for d in documents] == expected
    for document, (_kind, text) in zip(documents, [line for line in lines if line[0] != "blank"], strict=True):
        if document.error is None:
            assert document.value == json.loads(text)
        else:
            assert "\n" not in document.error and len(document.error) <= 300
            assert len(text) + crlf > limit or document.text == expected_raw(text)


array_elements = st.lists(st.one_of(
    json_objects.map(lambda o: ("good", json.dumps(o).encode())),
    json_objects.map(lambda o: ("good", json.dumps(o, indent=2, ensure_ascii=False).encode())),
    json_scalars.map(lambda v: ("good", json.dumps(v).encode())),  # not records, but one value each
    # (An unterminated string inside an array runs to the end: it is not among these.)
    st.sampled_from([b for b in NOT_JSON if b[:1] in b"{[" and len(b) < 20_000 and b.count(b'"') % 2 == 0])
    .map(lambda b: ("bad", b))),
    min_size=1, max_size=20)


@settings(max_examples=150, deadline=None)
@given(elements=array_elements, separator=st.sampled_from([b",", b", ", b",\n  ", b"\n,\n"]),
       piece=st.integers(1, 300))
def test_the_reader_yields_one_document_per_array_element_whatever_the_read_sizes(elements, separator, piece):
    data = b"[" + separator.join(text for _, text in elements) + b"]\n"
    documents = list(read_documents(pieces(io.BytesIO(data), piece), "in"))
    assert [d.error is not None for d in documents] == [kind == "bad" for kind, _ in elements]
    assert [d.value for d in documents if d.error is None] == [json.loads(t) for k, t in elements if k == "good"]
    assert all("\n" not in d.error for d in documents if d.error)


@settings(max_examples=100, deadline=None)
@given(elements=st.lists(json_objects, min_size=1, max_size=10), cut=st.integers(1, 10_000), piece=st.integers(1, 300))
def test_a_truncated_array_ends_in_one_reject_and_keeps_the_whole_elements(elements, cut, piece):
    """A file cut short (a producer killed, a full disk): the elements before the cut are
    read, what is left is one reject, and the reader ends."""
    texts = [json.dumps(element).encode() for element in elements]
    data = b"[" + b", ".join(texts) + b"]"
    cut = cut % (len(data) - 1) + 1  # at least the [, never the closing ]
    documents = list(read_documents(pieces(io.BytesIO(data[:cut]), piece), "in"))
    ends = [len(b"[" + b", ".join(texts[:n + 1])) for n in range(len(texts))]
    whole = [e for e, end in zip(elements, ends, strict=True) if end <= cut]
    assert [d.value for d in documents if d.error is None] == whole
    assert [d.error is not None for d in documents][-1:] == [True], "what the cut leaves is one reject"
    assert sum(d.error is not None for d in documents) == 1


# ---------------------------------------------------------------- whole runs

def native(i: int, entity: str, site: str, at: datetime, event_id: bool) -> dict:
    record = alert(entity=entity, site=site, at=at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    if event_id:
        record["event_id"] = f"ev-{i}"
    return record


def pagerduty(i: int, entity: str, site: str, at: datetime, event_id: bool) -> dict:
    return {"event_action": "trigger", "routing_key": "k", "dedup_key": f"pd-{entity}-{site}",
            "payload": {"summary": f"PD {entity}", "source": entity, "severity": "error", "group": site,
                        "timestamp": at.strftime("%Y-%m-%dT%H:%M:%SZ")}}


def alertmanager(i: int, entity: str, site: str, at: datetime, event_id: bool) -> dict:
    """A webhook payload of one firing alert (the key: the fingerprint of its labels)."""
    return {"version": "4", "status": "firing", "receiver": "nocctl", "groupKey": f"{{}}:{{site=\"{site}\"}}",
            "alerts": [{"status": "firing", "labels": {"alertname": "HostDown", "site": site, "instance": entity},
                        "annotations": {"summary": f"{entity} down"},
                        "startsAt": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "endsAt": "0001-01-01T00:00:00Z"}]}


FORMATS = {"native": native, "pagerduty": pagerduty, "alertmanager": alertmanager}


@st.composite
def good_record(draw) -> tuple[str, str, bool]:
    """(format, alert key it lands on: format, entity and site, whether it carries an event_id)."""
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    return fmt, f"{fmt}:e{draw(st.integers(0, 4))}@{draw(st.sampled_from(SITES))}", draw(st.booleans())


@st.composite
def run_input(draw) -> tuple[bytes, list, int]:
    items = draw(st.lists(st.one_of(good_record().map(lambda g: ("good", g)),
                                    st.sampled_from(BAD).map(lambda b: ("bad", b))), min_size=1, max_size=60))
    # Every record at its own time: two records of one key at the same time are one event.
    minutes = draw(st.permutations(range(len(items))))
    lines: list[bytes] = [json.dumps(native(-1, "first", "ACME-MYS", BASE - timedelta(hours=1), False)).encode()]
    for i, (kind, what) in enumerate(items):
        if kind == "bad":
            lines.append(what)
        else:
            fmt, key, event_id = what
            entity, site = key.split(":")[1].split("@")
            record = FORMATS[fmt](i, entity, site, BASE + timedelta(minutes=minutes[i]), event_id)
            lines.append(json.dumps(record).encode())
    batch_size = draw(st.sampled_from([1, 7, 5000]))
    return b"\n".join(lines) + b"\n", [("good", ("native", "native:first@ACME-MYS", False)), *items], batch_size


@pytest.fixture
def noc(admin_cli, monkeypatch):
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    monkeypatch.setenv("NOC_NOW", NOW)
    return admin_cli


def _reset(db_url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        for table in ("incident_alert", "notification", "incident", "alert", "ingest_event", "ingest_reject"):
            conn.execute(text(f"DELETE FROM {table}"))
    engine.dispose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                               HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=run_input())
def test_nothing_is_lost_and_the_accounting_is_exact(noc, db_url, tmp_path, case):
    data, items, batch_size = case
    _reset(db_url)
    source, rejects = tmp_path / "in.ndjson", tmp_path / "rejects.ndjson"
    source.write_bytes(data)
    rejects.unlink(missing_ok=True)
    goods = [what for kind, what in items if kind == "good"]
    bads = [(number, what) for number, (kind, what) in enumerate(items, start=1) if kind == "bad"]
    note(f"{len(goods)} good, {len(bads)} bad, batch size {batch_size}")

    result = noc("ingest", "--json", "--batch-size", str(batch_size), "--rejects", str(rejects), str(source))
    assert result.exit_code == (65 if bads else 0), result.stderr
    summary = json.loads(result.stdout)
    assert set(summary) == {"received", *COUNTS}
    assert summary["received"] == len(items) == sum(summary[k] for k in COUNTS), summary
    assert summary["rejected"] == len(bads), (summary, result.stderr)
    keys = {key for _, key, _ in goods}
    assert (summary["created"], summary["deduplicated"]) == (len(keys), len(goods) - len(keys)), summary

    # Every good record is in an alert: one alert per key, its events counted.
    alerts = rows(db_url, "SELECT dedup_key, duplicate_count FROM alert")
    assert len(alerts) == len(keys) and sum(1 + count for _, count in alerts) == len(goods)
    # Every bad record is kept: once per raw text while pending, at its first line; and in --rejects.
    first_line: dict[str, int] = {}
    for number, bad in bads:
        first_line.setdefault(expected_raw(bad), number)
    kept = rows(db_url, "SELECT raw, line, status FROM ingest_reject")
    assert sorted(kept) == sorted((raw, line, "PENDING") for raw, line in first_line.items())
    written = rejects.read_bytes().decode().split("\n")[:-1] if bads else []  # (not splitlines: \x0b, \x1c…)
    assert sorted(written) == sorted(expected_raw(bad).replace("\r", " ").replace("\n", " ") for _, bad in bads)

    again = noc("ingest", "--json", "--batch-size", str(batch_size), str(source))
    assert again.exit_code == (65 if bads else 0), again.stderr
    replay = json.loads(again.stdout)
    assert replay == {**{k: 0 for k in COUNTS}, "received": len(items), "replayed": len(goods), "rejected": len(bads)}
    assert rows(db_url, "SELECT dedup_key, duplicate_count FROM alert") == alerts
    assert len(rows(db_url, "SELECT raw FROM ingest_reject")) == len(first_line)
