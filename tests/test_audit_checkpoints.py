"""Audit checkpoints (DESIGN §3a "Audit anchoring"): `nocctl audit checkpoint` signs the head
of the chain, `audit verify --checkpoints FILE` finds what the chain alone cannot — its end
cut off, or a stretch rewritten with every hash recomputed by the app's own function — on the
backend under test, driven through the command line."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, text

from nocctl.db import make_engine, make_sessionmaker
from nocctl.models import AuditLog, Tenant
from nocctl.services.audit import hashed_fields, row_hash

POSTGRES = bool(os.environ.get("NOC_TEST_DATABASE_URL"))
T0 = "2026-03-02T10:00:00Z"


# ---------------------------------------------------------------- helpers


def assert_error(result, code: int, message: str, details: tuple[str, ...] = ()) -> None:
    """A failure: nothing on stdout, the detail lines and one `nocctl: error:` line on stderr."""
    expected = "".join(f"nocctl: {line}\n" for line in details) + f"nocctl: error: {message}\n"
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", expected)


@pytest.fixture
def key(admin_cli, tmp_path) -> Path:
    path = tmp_path / "audit.key"
    result = admin_cli("audit", "keygen", str(path))
    assert result.exit_code == 0, result.stderr
    return path


def people(cli, *names: str, now: str = T0) -> None:
    """One CONFIG_CHANGE audit row per person added."""
    for name in names:
        result = cli("user", "add", name, env={"NOC_NOW": now})
        assert result.exit_code == 0, result.stderr


def checkpoint(cli, key: Path, anchors: Path | None = None, now: str = T0) -> dict:
    """`audit checkpoint`, appended to `anchors` as cron would."""
    result = cli("audit", "checkpoint", "--key", str(key), env={"NOC_NOW": now})
    assert (result.exit_code, result.stderr) == (0, ""), result.stderr
    assert result.stdout.count("\n") == 1 and result.stdout.endswith("\n")
    if anchors is not None:
        with anchors.open("a") as handle:
            handle.write(result.stdout)
    return json.loads(result.stdout)


def verify(cli, anchors: Path, key: Path, *args: str):
    return cli("audit", "verify", "--checkpoints", str(anchors), "--key", str(key), *args)


def chain_rows(db_url: str) -> list[AuditLog]:
    """The default tenant's audit rows, in id order, as the app reads them."""
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            tid = session.scalar(select(Tenant.id).where(Tenant.slug == "default"))
            rows = list(session.scalars(select(AuditLog).where(AuditLog.tenant_id == tid).order_by(AuditLog.id)))
            session.expunge_all()
            return rows
    finally:
        engine.dispose()


def as_table_owner(db_url: str, *statements: tuple[str, dict]) -> None:
    """What someone who owns the table does: switch its triggers off (PostgreSQL: every
    trigger, as the superuser; SQLite: drop them), change the log, switch them on again."""
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            if POSTGRES:
                conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER ALL")
                triggers = []
            else:
                triggers = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"
                                             " AND tbl_name = 'audit_log'")).all()
                assert {name for name, _ in triggers} == {"audit_log_no_update", "audit_log_no_delete"}
                for name, _ in triggers:
                    conn.exec_driver_sql(f"DROP TRIGGER {name}")
            for statement, params in statements:
                conn.execute(text(statement), params)
            if POSTGRES:
                conn.exec_driver_sql("ALTER TABLE audit_log ENABLE TRIGGER ALL")
            for _, ddl in triggers:
                conn.exec_driver_sql(ddl)
    finally:
        engine.dispose()


def delete_rows(db_url: str, ids: list[int]) -> None:
    as_table_owner(db_url, *(("DELETE FROM audit_log WHERE id = :id", {"id": i}) for i in ids))


def rewrite_chain(db_url: str, delete: tuple[int, ...] = (), actions: dict[int, str] | None = None) -> None:
    """Remove and rewrite rows, then recompute the whole chain with the app's own
    `row_hash`, as someone who read nocctl's source would: `audit verify` alone then finds
    nothing."""
    actions = actions or {}
    kept = [row for row in chain_rows(db_url) if row.id not in delete]
    updates = []
    prev = None
    for row in kept:
        action = actions.get(row.id, row.action)
        digest = row_hash(prev, hashed_fields(row.tenant_id, row.at, row.actor_id, row.os_user, row.host, action,
                                              row.target_type, row.target_id, row.details, row.client_id,
                                              row.site_id))
        updates.append(("UPDATE audit_log SET action = :action, prev_hash = :prev, hash = :hash WHERE id = :id",
                        {"action": action, "prev": prev, "hash": digest, "id": row.id}))
        prev = digest
    as_table_owner(db_url, *(("DELETE FROM audit_log WHERE id = :id", {"id": i}) for i in delete), *updates)


def plain_verify_says_intact(cli) -> None:
    result = cli("audit", "verify")
    assert result.exit_code == 0 and result.stdout.startswith("audit log intact: "), result.stderr


# ---------------------------------------------------------------- the key


def test_keygen_makes_a_0600_key_under_umask_022_and_never_overwrites(admin_cli, tmp_path):
    """Run as a user would (a real process with umask 022)."""
    path = tmp_path / "anchor.key"

    def keygen(target: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "nocctl", "audit", "keygen", str(target)],
                              capture_output=True, text=True, preexec_fn=lambda: os.umask(0o022), timeout=60)

    done = keygen(path)
    assert (done.returncode, done.stdout) == (0, ""), done.stderr
    assert done.stderr == f'wrote a new audit key to {path} (mode 600); set audit_key_file = "{path}" in the config\n'
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    content = path.read_text()
    assert len(content) == 65 and content.endswith("\n") and bytes.fromhex(content.strip())  # 32 bytes as hex
    again = keygen(path)
    assert again.returncode == 2 and again.stdout == ""
    assert f"nocctl: error: {path} already exists: `audit keygen` never replaces a key" in again.stderr
    assert path.read_text() == content
    other = tmp_path / "second.key"
    assert keygen(other).returncode == 0 and other.read_text() != content  # random, not derived
    missing = keygen(tmp_path / "no" / "such" / "dir.key")
    assert missing.returncode == 2 and f"create {tmp_path / 'no' / 'such'} first" in missing.stderr
    link = tmp_path / "planted"
    link.symlink_to(tmp_path / "elsewhere.key")
    assert keygen(link).returncode == 2 and not (tmp_path / "elsewhere.key").exists()  # not through a symlink


def test_checkpoint_without_a_key_is_a_usage_error_with_the_remedy(admin_cli, tmp_path):
    assert_error(admin_cli("audit", "checkpoint"), 2,
                 "no audit key: give --key FILE, or set audit_key_file in the config; make a key with"
                 " `nocctl audit keygen FILE` (mode 600, readable by this account only)")
    missing = tmp_path / "nope.key"
    assert_error(admin_cli("audit", "checkpoint", "--key", str(missing)), 2,
                 f"audit key file {missing} does not exist; create it with `nocctl audit keygen {missing}`"
                 " (or fix audit_key_file / --key)")
    short = tmp_path / "short.key"
    short.write_text("hunter2\n")
    short.chmod(0o600)
    assert_error(admin_cli("audit", "checkpoint", "--key", str(short)), 2,
                 f"audit key file {short} holds 7 bytes; a key needs at least 32; create a new one with"
                 " `nocctl audit keygen FILE`")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_a_key_open_to_other_users_is_refused(admin_cli, key, tmp_path, mode):
    anchors = tmp_path / "anchors.ndjson"
    checkpoint(admin_cli, key, anchors)
    key.chmod(mode)
    message = (f"audit key file {key} is mode {mode:o}: open to other users, who could forge checkpoints;"
               f" chmod 600 {key}")
    assert_error(admin_cli("audit", "checkpoint", "--key", str(key)), 2, message)
    assert_error(verify(admin_cli, anchors, key), 2, message)
    key.chmod(0o600)
    assert verify(admin_cli, anchors, key).exit_code == 0


def test_the_key_comes_from_audit_key_file_in_the_config(admin_cli, key, tmp_path, monkeypatch):
    config = tmp_path / "etc" / "config.toml"
    config.parent.mkdir()
    (config.parent / "audit.key").write_bytes(key.read_bytes())
    (config.parent / "audit.key").chmod(0o600)
    config.write_text('audit_key_file = "audit.key"\n')  # relative: beside the config file
    monkeypatch.setenv("NOC_CONFIG", str(config))
    result = admin_cli("audit", "checkpoint")
    assert result.exit_code == 0, result.stderr
    anchors = tmp_path / "anchors.ndjson"
    anchors.write_text(result.stdout)
    assert admin_cli("audit", "verify", "--checkpoints", str(anchors)).exit_code == 0
    assert verify(admin_cli, anchors, key).exit_code == 0  # the same key given as --key
    config.write_text("audit_key_file = 7\n")
    result = admin_cli("audit", "checkpoint")
    assert result.exit_code == 65 and "audit_key_file 7 in the config is not a file path" in result.stderr


def test_key_without_checkpoints_is_a_usage_error(admin_cli, key):
    assert_error(admin_cli("audit", "verify", "--key", str(key)), 2, "--key is for --checkpoints FILE; give both,"
                                                                      " or neither")


# ---------------------------------------------------------------- making a checkpoint


def test_checkpoint_is_one_signed_json_line_of_the_chain_head(admin_cli, key, db_url):
    people(admin_cli, "asha", "bala")
    line = checkpoint(admin_cli, key, now="2026-03-02T10:15:00+05:30")
    rows = chain_rows(db_url)
    assert list(line) == ["v", "tenant", "row_id", "rows", "hash", "at", "mac"]
    assert {k: v for k, v in line.items() if k != "mac"} == {
        "v": 1, "tenant": "default", "row_id": rows[-1].id, "rows": 3, "hash": rows[-1].hash,
        "at": "2026-03-02T04:45:00Z"}
    # HMAC-SHA256 under the key's text, over the canonical JSON of every other field
    body = json.dumps({k: v for k, v in line.items() if k != "mac"}, sort_keys=True, separators=(",", ":"))
    assert line["mac"] == hmac.new(key.read_bytes().strip(), body.encode(), hashlib.sha256).hexdigest()
    # a checkpoint changes nothing: no audit row of its own
    assert [r.id for r in chain_rows(db_url)] == [r.id for r in rows]


def test_each_tenant_checkpoints_its_own_chain(admin_cli, key, tmp_path):
    assert admin_cli("--tenant", "other", "init").exit_code == 0
    people(admin_cli, "asha")
    anchors = tmp_path / "anchors.ndjson"
    mine = checkpoint(admin_cli, key, anchors)
    result = admin_cli("--tenant", "other", "audit", "checkpoint", "--key", str(key))
    assert result.exit_code == 0
    theirs = json.loads(result.stdout)
    assert (theirs["tenant"], theirs["rows"], mine["rows"]) == ("other", 1, 2)
    with anchors.open("a") as handle:
        handle.write(result.stdout)
    result = verify(admin_cli, anchors, key)
    assert result.exit_code == 0 and result.stdout.splitlines()[1].endswith("; 1 of other tenants not checked")
    assert admin_cli("--tenant", "other", "audit", "verify", "--checkpoints", str(anchors), "--key",
                     str(key)).exit_code == 0


def test_checkpoint_needs_tenant_wide_audit_view(admin_cli, key):
    people(admin_cli, "asha")
    assert_error(admin_cli("--as", "asha", "audit", "checkpoint", "--key", str(key)), 77,
                 "'asha' lacks noc:audit_view tenant-wide; an admin can run "
                 "`nocctl user grant asha noc:audit_view`")
    assert admin_cli("user", "grant", "asha", "noc:audit_view").exit_code == 0
    result = admin_cli("--as", "asha", "audit", "checkpoint", "--key", str(key))
    assert result.exit_code == 0, result.stderr


# ---------------------------------------------------------------- verifying against checkpoints


def test_a_good_chain_with_several_checkpoints_verifies(admin_cli, key, tmp_path, db_url):
    anchors = tmp_path / "anchors.ndjson"
    checkpoint(admin_cli, key, anchors, now="2026-03-02T10:00:00Z")
    people(admin_cli, "asha", "bala")
    checkpoint(admin_cli, key, anchors, now="2026-03-02T11:00:00Z")
    checkpoint(admin_cli, key, anchors, now="2026-03-02T12:00:00Z")  # nothing new meanwhile: the same head
    with anchors.open("a") as handle:
        handle.write("\n")  # blank lines are skipped
    people(admin_cli, "chitra")
    last = checkpoint(admin_cli, key, anchors, now="2026-03-02T13:00:00Z")
    people(admin_cli, "dev")  # after the last checkpoint: covered by the chain only
    rows = chain_rows(db_url)
    result = verify(admin_cli, anchors, key)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (f"audit log intact: {len(rows)} rows\n"
                             f"checkpoints hold: 4 (the last: row {last['row_id']}, 4 rows, at 2026-03-02T13:00:00Z)\n")
    result = verify(admin_cli, anchors, key, "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "rows_checked": 5, "intact": True, "first_broken_id": None, "reason": None,
        "checkpoints": {"file": str(anchors), "ok": True, "checked": 4, "held": 4, "other_tenants": 0,
                        "last_held": {"line": 5, "row_id": last["row_id"], "rows": 4, "at": "2026-03-02T13:00:00Z"},
                        "failures": []}}
    # without --checkpoints, verify is what it was
    assert admin_cli("audit", "verify").stdout == "audit log intact: 5 rows\n"


def test_tail_deletion_behind_the_triggers_is_found_only_with_checkpoints(admin_cli, key, tmp_path, db_url):
    anchors = tmp_path / "anchors.ndjson"
    people(admin_cli, "asha")
    early = checkpoint(admin_cli, key, anchors, now="2026-03-02T10:00:00Z")
    people(admin_cli, "bala", "chitra")
    late = checkpoint(admin_cli, key, anchors, now="2026-03-02T11:00:00Z")
    ids = [r.id for r in chain_rows(db_url)]
    delete_rows(db_url, ids[-2:])  # the last two rows: what bala's and chitra's grants were
    plain_verify_says_intact(admin_cli)
    assert admin_cli("audit", "verify").stdout == "audit log intact: 2 rows\n"
    result = verify(admin_cli, anchors, key)
    assert_error(result, 65, f"row {late['row_id']}: missing (the log ends at row {ids[-3]}: truncated after"
                             " checkpoint at 2026-03-02T11:00:00Z)")
    report = json.loads(verify(admin_cli, anchors, key, "--format", "json").stdout)
    assert (report["intact"], report["first_broken_id"], report["rows_checked"]) == (False, None, 2)
    assert report["checkpoints"]["failures"] == [
        {"line": 2, "row_id": late["row_id"],
         "reason": f"missing (the log ends at row {ids[-3]}: truncated after checkpoint at 2026-03-02T11:00:00Z)"}]
    assert report["checkpoints"]["last_held"]["row_id"] == early["row_id"]
    assert (report["checkpoints"]["ok"], report["checkpoints"]["held"]) == (False, 1)


def test_tail_deletion_followed_by_new_rows_is_still_found(admin_cli, key, tmp_path, db_url):
    """New rows after the cut make the log as long again (SQLite even reuses the ids)."""
    anchors = tmp_path / "anchors.ndjson"
    people(admin_cli, "asha", "bala")
    cp = checkpoint(admin_cli, key, anchors)
    ids = [r.id for r in chain_rows(db_url)]
    delete_rows(db_url, ids[-2:])
    people(admin_cli, "mallory", "trudy", "eve")
    plain_verify_says_intact(admin_cli)
    result = verify(admin_cli, anchors, key)
    reused = cp["row_id"] in [r.id for r in chain_rows(db_url)]
    assert reused is not POSTGRES  # SQLite gives the highest id + 1 again; a PostgreSQL sequence never
    if reused:
        assert_error(result, 65, f"row {cp['row_id']}: hash differs from checkpoint at 2026-03-02T10:00:00Z (the"
                                 " row, or one before it, was rewritten)")
    else:
        assert_error(result, 65, f"row {cp['row_id']}: missing (later rows remain: it was removed after"
                                 " checkpoint at 2026-03-02T10:00:00Z)")


def test_a_rewrite_in_the_middle_with_the_chain_recomputed_is_found(admin_cli, key, tmp_path, db_url):
    anchors = tmp_path / "anchors.ndjson"
    people(admin_cli, "asha")
    before = checkpoint(admin_cli, key, anchors, now="2026-03-02T10:00:00Z")
    people(admin_cli, "bala", "chitra")
    middle = checkpoint(admin_cli, key, anchors, now="2026-03-02T11:00:00Z")
    people(admin_cli, "dev")
    after = checkpoint(admin_cli, key, anchors, now="2026-03-02T12:00:00Z")
    ids = [r.id for r in chain_rows(db_url)]
    victim = ids[2]  # bala's row, between the first and the second checkpoint
    rewrite_chain(db_url, actions={victim: "EXPORT_DATA"})
    plain_verify_says_intact(admin_cli)
    rewritten = "(the row, or one before it, was rewritten)"
    assert_error(verify(admin_cli, anchors, key), 65,
                 f"row {middle['row_id']}: hash differs from checkpoint at 2026-03-02T11:00:00Z {rewritten}",
                 details=(f"row {after['row_id']}: hash differs from checkpoint at 2026-03-02T12:00:00Z {rewritten}",))
    report = json.loads(verify(admin_cli, anchors, key, "--format", "json").stdout)["checkpoints"]
    assert [f["line"] for f in report["failures"]] == [2, 3]
    assert report["last_held"]["row_id"] == before["row_id"]  # what came before the rewrite still holds


def test_a_chain_with_its_start_cut_off_and_recomputed_is_found(admin_cli, key, tmp_path, db_url):
    """The oldest rows removed and the chain re-rooted (first row without a previous hash)."""
    anchors = tmp_path / "anchors.ndjson"
    first = checkpoint(admin_cli, key, anchors, now="2026-03-02T10:00:00Z")
    people(admin_cli, "asha", "bala")
    second = checkpoint(admin_cli, key, anchors, now="2026-03-02T11:00:00Z")
    ids = [r.id for r in chain_rows(db_url)]
    rewrite_chain(db_url, delete=(ids[0],))
    plain_verify_says_intact(admin_cli)
    assert_error(verify(admin_cli, anchors, key), 65,
                 f"row {first['row_id']}: missing (later rows remain: it was removed after checkpoint at"
                 " 2026-03-02T10:00:00Z)",
                 details=((f"row {second['row_id']}: hash differs from checkpoint at 2026-03-02T11:00:00Z (the row,"
                          " or one before it, was rewritten)"),))


def test_a_chain_shorter_than_its_last_checkpoint_is_found(admin_cli, key, tmp_path, db_url):
    anchors = tmp_path / "anchors.ndjson"
    people(admin_cli, "asha", "bala")
    cp = checkpoint(admin_cli, key, anchors)
    delete_rows(db_url, [r.id for r in chain_rows(db_url)])  # the whole log
    assert admin_cli("audit", "verify").stdout == "audit log intact: 0 rows\n"
    assert_error(verify(admin_cli, anchors, key), 65,
                 f"row {cp['row_id']}: missing (the log is empty: truncated after checkpoint at 2026-03-02T10:00:00Z)")


def test_an_edit_the_chain_finds_is_reported_with_the_checkpoints(admin_cli, key, tmp_path, db_url):
    """Tampering the chain alone finds (no recomputation) still fails first on the chain."""
    anchors = tmp_path / "anchors.ndjson"
    people(admin_cli, "asha")
    cp = checkpoint(admin_cli, key, anchors)
    as_table_owner(db_url, ("UPDATE audit_log SET os_user = 'mallory' WHERE id = :id", {"id": cp["row_id"]}))
    result = verify(admin_cli, anchors, key)
    assert_error(result, 65, f"audit log broken at row {cp['row_id']}: its content does not match its hash"
                             " (the row was changed)")


# ---------------------------------------------------------------- the checkpoint file itself


def test_a_forged_or_garbled_line_fails_naming_its_line(admin_cli, key, tmp_path):
    anchors = tmp_path / "anchors.ndjson"
    people(admin_cli, "asha")
    good = checkpoint(admin_cli, key, anchors)
    people(admin_cli, "bala")
    second = checkpoint(admin_cli, key)
    # Someone who can write the file, not read the key: a line claiming a shorter log
    forged = {**second, "row_id": good["row_id"], "rows": good["rows"], "hash": good["hash"]}
    anchors.write_text(json.dumps(good) + "\n" + json.dumps(forged) + "\n")
    assert_error(verify(admin_cli, anchors, key), 65,
                 f"{anchors} line 2: its MAC does not match (the line was altered or forged, or signed with another"
                 " key)")
    anchors.write_text(json.dumps(good) + "\n" + json.dumps(second)[:-20] + "\n")  # cut short
    assert_error(verify(admin_cli, anchors, key), 65, f"{anchors} line 2: not a checkpoint (not a JSON object)")
    anchors.write_text(json.dumps({"v": 1, "tenant": "default"}) + "\n")
    assert_error(verify(admin_cli, anchors, key), 65,
                 f"{anchors} line 1: not a checkpoint (no at, hash, mac, row_id, rows)")
    anchors.write_text(json.dumps({**good, "v": 2}) + "\n")
    assert_error(verify(admin_cli, anchors, key), 65,
                 f"{anchors} line 1: checkpoint version 2 is not known to this nocctl (it reads 1)")
    anchors.write_bytes(b"\xff\xfe\n")
    assert_error(verify(admin_cli, anchors, key), 65, f"{anchors} line 1: not a checkpoint (not a JSON object)")


def test_a_line_signed_with_another_key_fails(admin_cli, key, tmp_path):
    other = tmp_path / "other.key"
    assert admin_cli("audit", "keygen", str(other)).exit_code == 0
    anchors = tmp_path / "anchors.ndjson"
    checkpoint(admin_cli, key, anchors)
    checkpoint(admin_cli, other, anchors)
    assert_error(verify(admin_cli, anchors, key), 65,
                 f"{anchors} line 2: its MAC does not match (the line was altered or forged, or signed with another"
                 " key)")


def test_a_file_without_a_checkpoint_of_the_tenant_fails(admin_cli, key, tmp_path):
    anchors = tmp_path / "anchors.ndjson"
    anchors.write_text("")
    assert_error(verify(admin_cli, anchors, key), 65, f"{anchors} holds no checkpoint of this tenant")
    assert admin_cli("--tenant", "other", "init").exit_code == 0
    checkpoint(admin_cli, key, None)
    result = admin_cli("--tenant", "other", "audit", "checkpoint", "--key", str(key))
    anchors.write_text(result.stdout)
    assert_error(verify(admin_cli, anchors, key), 65,
                 f"{anchors} holds no checkpoint of this tenant (1 of other tenants)")
    result = admin_cli("audit", "verify", "--checkpoints", str(tmp_path / "missing.ndjson"), "--key", str(key))
    assert result.exit_code == 2 and "does not exist" in result.stderr


def test_verify_with_checkpoints_needs_tenant_wide_audit_view(admin_cli, key, tmp_path):
    anchors = tmp_path / "anchors.ndjson"
    checkpoint(admin_cli, key, anchors)
    people(admin_cli, "asha")
    assert_error(admin_cli("--as", "asha", "audit", "verify", "--checkpoints", str(anchors), "--key", str(key)), 77,
                 "'asha' lacks noc:audit_view tenant-wide; an admin can run `nocctl user grant asha noc:audit_view`")


def test_a_removed_middle_row_fails_the_chain_and_the_count(admin_cli, key, tmp_path, db_url):
    """A row removed before a checkpointed head, the chain not recomputed: the head's hash
    still matches, but fewer rows lead up to it than the checkpoint counted."""
    anchors = tmp_path / "anchors.ndjson"
    people(admin_cli, "asha", "bala")
    cp = checkpoint(admin_cli, key, anchors)
    ids = [r.id for r in chain_rows(db_url)]
    delete_rows(db_url, [ids[1]])
    assert_error(verify(admin_cli, anchors, key), 65,
                 f"audit log broken at row {ids[2]}: its prev_hash does not match the hash of row {ids[0]}"
                 " (a row between them was removed, or that row was rewritten)",
                 details=((f"row {cp['row_id']}: 2 rows up to it, but checkpoint at 2026-03-02T10:00:00Z counted 3"
                          " (rows before it were removed)"),))
    report = json.loads(verify(admin_cli, anchors, key, "--format", "json").stdout)
    assert (report["intact"], report["first_broken_id"], report["checkpoints"]["ok"]) == (False, ids[2], False)
