"""The audit log: the database refuses UPDATE/DELETE (and TRUNCATE), `nocctl audit verify`
finds tampering done behind the triggers' back, `nocctl audit list` filters and scopes
(DESIGN §3 "Audit log", §4, §5), on the backend under test."""
from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, exc, text

from ingest_helpers import ORG, alert, ndjson
from nocctl.db import normalise_url
from nocctl.services.rbac import os_login

LOGIN = os_login()
POSTGRES = bool(os.environ.get("NOC_TEST_DATABASE_URL"))
CHANGED = "its content does not match its hash (the row was changed)"


# ---------------------------------------------------------------- helpers


def sql(db_url: str, *statements: str, **params) -> list[tuple]:
    """Run statements in one transaction; the rows of the last one (if it returns any)."""
    engine = create_engine(normalise_url(db_url))
    try:
        with engine.begin() as conn:
            result = None
            for statement in statements:
                result = conn.execute(text(statement), params)
            return [tuple(r) for r in result] if result is not None and result.returns_rows else []
    finally:
        engine.dispose()


def behind_the_triggers(db_url: str, statement: str, **params) -> None:
    """What an attacker with table-owner rights does: switch the append-only triggers off,
    change the log, switch them on again."""
    if POSTGRES:
        sql(db_url, "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete", statement,
            "ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update_delete", **params)
        return
    triggers = sql(db_url, "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'")
    assert {name for name, _ in triggers} == {"audit_log_no_update", "audit_log_no_delete"}
    sql(db_url, *(f"DROP TRIGGER {name}" for name, _ in triggers), statement, *(ddl for _, ddl in triggers),
        **params)


def audit_ids(db_url: str) -> list[int]:
    return [r[0] for r in sql(db_url, "SELECT id FROM audit_log ORDER BY id")]


def listing(cli, *args: str, env: dict | None = None) -> list[dict]:
    result = cli("audit", "list", "--format", "json", *args, env=env)
    assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    return json.loads(result.stdout)


def assert_error(result, code: int, message: str) -> None:
    """A failure: nothing on stdout, exactly one `nocctl: error:` line on stderr."""
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", f"nocctl: error: {message}\n")


def resolve(site: str | None, entity: str, at: str, client: str | None = None, action: str = "resolve") -> dict:
    record = {"action": action, "alert_type": "DEVICE_OFFLINE", "entity_type": "device", "entity_id": entity,
              "occurred_at": at}
    record.update({"site": site} if site else {"client": client})
    return record


@pytest.fixture
def noc(admin_cli):
    """The example organisation, and alerts ingested and closed at sites of ACME and GLOBEX
    and at GLOBEX itself (client level): audit rows that carry a client and a site."""
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    globex_wide = alert(entity="gw-1", site=None)
    del globex_wide["site"]
    globex_wide["client"] = "GLOBEX"
    data = ndjson(
        alert(site="ACME-BLR-WF", entity="cam-01", at="2026-03-01T10:00:00Z"),
        alert(site="GLOBEX-PNQ", entity="cam-02", at="2026-03-01T10:00:00Z"),
        alert(site="GLOBEX-BOM-WH1", entity="cam-03", at="2026-03-01T10:00:00Z"),
        {**globex_wide, "occurred_at": "2026-03-01T10:00:00Z"},
        resolve("ACME-BLR-WF", "cam-01", "2026-03-01T10:30:00Z"),
        resolve("GLOBEX-PNQ", "cam-02", "2026-03-01T10:10:00Z", action="acknowledge"),
        resolve("GLOBEX-BOM-WH1", "cam-03", "2026-03-01T10:20:00Z"),
        resolve(None, "gw-1", "2026-03-01T10:40:00Z", client="GLOBEX"),
    )
    result = admin_cli("-q", "ingest", "--json", input=data)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["resolved"] == 3
    return admin_cli


# ---------------------------------------------------------------- the database refuses changes


def test_update_of_an_audit_row_is_refused_by_the_database(admin_cli, db_url):
    (first,) = audit_ids(db_url)
    before = sql(db_url, "SELECT action, details, hash FROM audit_log")
    with pytest.raises(exc.DBAPIError, match="audit_log is append-only"):
        sql(db_url, "UPDATE audit_log SET action = 'EXPORT_DATA' WHERE id = :id", id=first)
    assert sql(db_url, "SELECT action, details, hash FROM audit_log") == before


def test_delete_of_an_audit_row_is_refused_by_the_database(admin_cli, db_url):
    assert admin_cli("user", "add", "asha").exit_code == 0
    with pytest.raises(exc.DBAPIError, match="audit_log is append-only"):
        sql(db_url, "DELETE FROM audit_log")
    assert len(audit_ids(db_url)) == 2


def test_emptying_the_whole_audit_log_is_refused(admin_cli, db_url):
    """PostgreSQL: TRUNCATE. SQLite has none; its whole-table DELETE (the truncate
    optimisation) must still hit the trigger."""
    with pytest.raises(exc.DBAPIError, match="audit_log is append-only"):
        sql(db_url, "TRUNCATE audit_log" if POSTGRES else "DELETE FROM audit_log")
    assert len(audit_ids(db_url)) == 1


# ---------------------------------------------------------------- audit verify


def test_an_intact_log_verifies_with_its_row_count(noc, db_url):
    assert noc("user", "grant", "asha.rao", "noc:view").exit_code == 0
    count = len(audit_ids(db_url))
    assert count == 7  # init, org import, 4 ingest closes, grant
    result = noc("audit", "verify")
    assert (result.exit_code, result.stdout, result.stderr) == (0, f"audit log intact: {count} rows\n", "")
    result = noc("audit", "verify", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"rows_checked": count, "intact": True, "first_broken_id": None,
                                         "reason": None}


def test_an_edited_row_is_named_and_verify_exits_65(noc, db_url):
    ids = audit_ids(db_url)
    victim = ids[3]
    behind_the_triggers(db_url, "UPDATE audit_log SET details = :d WHERE id = :id",
                        d=json.dumps({"by": "nobody"}), id=victim)
    assert_error(noc("audit", "verify"), 65, f"audit log broken at row {victim}: {CHANGED}")
    result = noc("audit", "verify", "--format", "json")
    assert result.exit_code == 65
    assert json.loads(result.stdout) == {"rows_checked": 4, "intact": False, "first_broken_id": victim,
                                         "reason": CHANGED}
    assert result.stderr == f"nocctl: error: audit log broken at row {victim}: {CHANGED}\n"


def test_an_edit_with_a_recomputed_hash_is_found_at_the_next_row(noc, db_url):
    """The attacker rewrites a row and gives it the hash of its new content: the row itself
    then checks out, but the next row still names the old hash."""
    from nocctl.services.audit import hashed_fields, row_hash

    ids = audit_ids(db_url)
    (row,) = sql(db_url, "SELECT tenant_id, at, actor_id, os_user, host, target_type, target_id, details,"
                         " client_id, site_id, prev_hash FROM audit_log WHERE id = :id", id=ids[2])
    at = row[1] if isinstance(row[1], datetime) else datetime.fromisoformat(row[1])
    details = row[7] if isinstance(row[7], dict) else json.loads(row[7])
    forged = row_hash(row[10], hashed_fields(row[0], at.replace(tzinfo=at.tzinfo or UTC), row[2], row[3],
                                             row[4], "EXPORT_DATA", row[5], row[6], details, row[8], row[9]))
    behind_the_triggers(db_url, "UPDATE audit_log SET action = 'EXPORT_DATA', hash = :h WHERE id = :id",
                        h=forged, id=ids[2])
    assert_error(noc("audit", "verify"), 65,
                 f"audit log broken at row {ids[3]}: its prev_hash does not match the hash of row {ids[2]}"
                 " (a row between them was removed, or that row was rewritten)")


def test_a_deleted_middle_row_is_found_at_the_next_row(noc, db_url):
    ids = audit_ids(db_url)
    behind_the_triggers(db_url, "DELETE FROM audit_log WHERE id = :id", id=ids[2])
    assert_error(noc("audit", "verify"), 65,
                 f"audit log broken at row {ids[3]}: its prev_hash does not match the hash of row {ids[1]}"
                 " (a row between them was removed, or that row was rewritten)")


def test_a_deleted_first_row_is_found(noc, db_url):
    ids = audit_ids(db_url)
    behind_the_triggers(db_url, "DELETE FROM audit_log WHERE id = :id", id=ids[0])
    assert_error(noc("audit", "verify"), 65,
                 f"audit log broken at row {ids[1]}: it is the first row but names a previous hash"
                 " (earlier rows were removed)")


def test_verify_walks_across_batches(noc, db_url, monkeypatch):
    """The walk is streamed in batches; a break in a later batch is still found."""
    from nocctl.services import audit

    monkeypatch.setattr(audit, "VERIFY_BATCH", 2)
    ids = audit_ids(db_url)
    result = noc("audit", "verify")
    assert (result.exit_code, result.stdout) == (0, f"audit log intact: {len(ids)} rows\n")
    behind_the_triggers(db_url, "UPDATE audit_log SET os_user = 'mallory' WHERE id = :id", id=ids[-1])
    assert_error(noc("audit", "verify"), 65, f"audit log broken at row {ids[-1]}: {CHANGED}")


def test_each_tenant_has_its_own_chain(noc, db_url):
    assert noc("--tenant", "other", "init").exit_code == 0
    assert noc("user", "add", "late.joiner").exit_code == 0  # default's chain continues after other's row
    default_rows = sql(db_url, "SELECT count(*) FROM audit_log a JOIN tenant t ON t.id = a.tenant_id"
                               " WHERE t.slug = 'default'")[0][0]
    result = noc("audit", "verify")
    assert (result.exit_code, result.stdout) == (0, f"audit log intact: {default_rows} rows\n")
    result = noc("--tenant", "other", "audit", "verify")
    assert (result.exit_code, result.stdout) == (0, "audit log intact: 1 rows\n")


def test_verify_needs_tenant_wide_audit_view(noc):
    assert noc("user", "grant", "rahul.desai", "noc:audit_view", "--client", "GLOBEX").exit_code == 0
    assert_error(noc("--as", "rahul.desai", "audit", "verify"), 77,
                 "'rahul.desai' lacks noc:audit_view tenant-wide; an admin can run "
                 "`nocctl user grant rahul.desai noc:audit_view`")


# ---------------------------------------------------------------- audit list


def test_list_shows_every_row_newest_first_with_codes_and_people(noc, db_url):
    entries = listing(noc)
    assert [e["id"] for e in entries] == sorted(audit_ids(db_url), reverse=True)
    assert list(entries[0]) == ["id", "at", "actor", "os_user", "host", "action", "target_type", "target_id",
                                "client", "site", "details"]
    assert [e["action"] for e in entries] == ["RESOLVE", "RESOLVE", "ACKNOWLEDGE", "RESOLVE", "CONFIG_CHANGE",
                                              "CONFIG_CHANGE"]
    assert {e["actor"] for e in entries} == {e["os_user"] for e in entries} == {LOGIN}
    closes = {(e["action"], e["client"], e["site"]) for e in entries[:4]}
    assert closes == {("RESOLVE", "GLOBEX", None), ("RESOLVE", "GLOBEX", "GLOBEX-BOM-WH1"),
                      ("ACKNOWLEDGE", "GLOBEX", "GLOBEX-PNQ"), ("RESOLVE", "ACME", "ACME-BLR-WF")}
    assert entries[-1]["target_type"] == "tenant" and entries[-1]["details"]["change"] == "init"
    assert all(e["target_type"] == "alert" and e["details"]["by"] == "ingest" for e in entries[:4])


def test_list_filters_by_actor_action_and_target(noc, db_url):
    assert noc("user", "grant", "noc.lead", "noc:configure").exit_code == 0
    result = noc("--as", "noc.lead", "user", "grant", "asha.rao", "noc:view", "--client", "ACME")
    assert result.exit_code == 0, result.stderr
    by_lead = listing(noc, "--actor", "noc.lead")
    assert [(e["actor"], e["os_user"], e["action"], e["details"]["username"]) for e in by_lead] == [
        ("noc.lead", LOGIN, "CONFIG_CHANGE", "asha.rao")]
    # case-insensitive action choice
    assert [e["site"] for e in listing(noc, "--action", "acknowledge")] == ["GLOBEX-PNQ"]
    assert len(listing(noc, "--action", "RESOLVE")) == 3
    people = listing(noc, "--target", "person")
    assert [e["details"]["username"] for e in people] == ["asha.rao", "noc.lead"]
    one = listing(noc, "--target", f"person:{people[1]['target_id']}")
    assert [e["id"] for e in one] == [people[1]["id"]]
    assert listing(noc, "--target", "alert", "--action", "RESOLVE", "--limit", "1")[0]["client"] == "GLOBEX"
    assert listing(noc, "--actor", "noc.lead", "--action", "RESOLVE") == []


def test_list_filters_by_time_window(admin_cli):
    for username, now in (("early", "2026-03-01T08:00:00Z"), ("middle", "2026-03-05T08:00:00Z"),
                          ("late", "2026-03-09T08:00:00Z")):
        assert admin_cli("user", "add", username, env={"NOC_NOW": now}).exit_code == 0

    def names(*args, env=None):
        return [e["details"].get("username") for e in listing(admin_cli, "--target", "person", *args, env=env)]

    assert names("--since", "2026-03-04T00:00:00Z", "--until", "2026-03-09T08:00:00Z") == ["middle"]
    assert names("--since", "2026-03-05T08:00:00+00:00") == ["late", "middle"]
    assert names("--days", "5", env={"NOC_NOW": "2026-03-09T09:00:00Z"}) == ["late", "middle"]
    assert names("--days", "1", env={"NOC_NOW": "2026-03-09T09:00:00Z"}) == ["late"]
    assert_error(admin_cli("audit", "list", "--since", "2026-03-01", "--days", "2"), 65,
                 "give --since or --days, not both")


def test_list_formats_table_csv_ndjson_and_file(noc, tmp_path):
    table = noc("audit", "list", "--action", "ACKNOWLEDGE")
    assert table.exit_code == 0 and table.stderr == ""
    header, rule, line = table.stdout.splitlines()
    assert header.split() == ["id", "at", "actor", "os_user", "action", "target_type", "target_id", "client",
                              "site", "details"]
    assert set(rule.replace(" ", "")) == {"-"}
    assert "ACKNOWLEDGE" in line and "GLOBEX-PNQ" in line and '"by": "ingest"' in line
    result = noc("audit", "list", "--format", "csv", "--action", "RESOLVE")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["site"] for r in rows] == ["", "GLOBEX-BOM-WH1", "ACME-BLR-WF"]
    assert json.loads(rows[0]["details"])["by"] == "ingest"
    result = noc("audit", "list", "--format", "ndjson", "--limit", "2")
    assert [json.loads(line)["action"] for line in result.stdout.splitlines()] == ["RESOLVE", "RESOLVE"]
    target = tmp_path / "audit.json"
    result = noc("audit", "list", "--format", "json", "-o", str(target))
    assert (result.exit_code, result.stdout) == (0, "")
    assert len(json.loads(target.read_text())) == 6
    assert noc("audit", "list", "--actor", "noc.lead").stdout == "(none)\n"


def test_list_refuses_bad_filters(noc):
    assert_error(noc("audit", "list", "--actor", "ghost"), 3, "no person 'ghost'; see `nocctl user list`")
    result = noc("audit", "list", "--action", "DROP_TABLE")
    assert result.exit_code == 2 and result.stdout == "" and "--action" in result.stderr
    result = noc("audit", "list", "--target", "alert:")
    assert result.exit_code == 2 and "is not TYPE or TYPE:ID" in result.stderr


def test_list_without_audit_view_is_refused(noc):
    assert noc("user", "grant", "asha.rao", "noc:view_all_clients").exit_code == 0
    assert_error(noc("audit", "list", env={"NOC_ACTOR": "asha.rao"}), 77,
                 "'asha.rao' lacks noc:audit_view; an admin can run `nocctl user grant asha.rao noc:audit_view`")


def test_client_scoped_auditor_sees_only_that_clients_rows(noc):
    assert noc("user", "grant", "rahul.desai", "noc:audit_view", "--client", "GLOBEX").exit_code == 0
    everything = listing(noc)
    seen = listing(noc, env={"NOC_ACTOR": "rahul.desai"})
    assert [e["id"] for e in seen] == [e["id"] for e in everything if e["client"] == "GLOBEX"]
    assert {(e["action"], e["site"]) for e in seen} == {
        ("RESOLVE", None), ("RESOLVE", "GLOBEX-BOM-WH1"), ("ACKNOWLEDGE", "GLOBEX-PNQ")}
    # none of ACME's rows, none of the tenant-level rows (init, org import, the grant itself)
    assert any(e["client"] == "ACME" for e in everything) and any(e["client"] is None for e in everything)
    # filters narrow within the scope, never widen it
    assert listing(noc, "--action", "CONFIG_CHANGE", env={"NOC_ACTOR": "rahul.desai"}) == []
    assert [e["site"] for e in listing(noc, "--target", "alert", "--action", "RESOLVE",
                                       env={"NOC_ACTOR": "rahul.desai"})] == [None, "GLOBEX-BOM-WH1"]


def test_site_scoped_auditor_sees_only_that_sites_rows(noc):
    assert noc("user", "grant", "sana.khan", "noc:audit_view", "--site", "GLOBEX-BOM-WH1").exit_code == 0
    result = noc("--as", "sana.khan", "audit", "list", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert [(e["action"], e["client"], e["site"]) for e in json.loads(result.stdout)] == [
        ("RESOLVE", "GLOBEX", "GLOBEX-BOM-WH1")]
