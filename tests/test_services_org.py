"""The organisation service: import files (JSON and CSV), adding clients and sites, listing.

Services are called directly with a Session and a Caller; each call gets a fresh session
because every service opens its own transaction."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from conftest import as_person
from nocctl.errors import BadInput, Conflict, ExitCode, NotFound
from nocctl.models import AuditLog, BusinessUnit, Person
from nocctl.services import org

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ORG_JSON = EXAMPLES / "org.json"
ORG_CSV = EXAMPLES / "org.csv"

EXAMPLE_COUNTS = {"person": 9, "client": 3, "site": 12}
ZERO = {"person": 0, "client": 0, "site": 0}


def snapshot(new_session) -> dict:
    """Everything an import can change, by natural keys (ids and timestamps left out)."""
    with new_session() as session:
        client, in_charge, owner = aliased(BusinessUnit), aliased(Person), aliased(Person)
        people = session.execute(
            select(Person.username, Person.name, Person.email, Person.phone, Person.active).order_by(Person.username)
        ).all()
        units = session.execute(
            select(BusinessUnit.code, BusinessUnit.kind, BusinessUnit.name, client.code, BusinessUnit.city,
                   BusinessUnit.state, in_charge.username, owner.username)
            .join(client, client.id == BusinessUnit.client_id)
            .outerjoin(in_charge, in_charge.id == BusinessUnit.site_in_charge_id)
            .outerjoin(owner, owner.id == BusinessUnit.owner_id)
            .order_by(BusinessUnit.code)
        ).all()
        audit_rows = session.scalar(select(func.count()).select_from(AuditLog))
        return {"people": [tuple(r) for r in people], "units": [tuple(r) for r in units], "audit_rows": audit_rows}


def import_file(new_session, caller, path: Path, text: str | None = None) -> org.ImportResult:
    return org.import_org(new_session(), caller, org.parse_org_file(path, text))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def units_by_code(new_session, caller) -> dict[str, dict]:
    return {row["code"]: row for row in org.list_units(new_session(), caller)}


# ---------------------------------------------------------------- the example files

def test_json_and_csv_examples_describe_the_same_organisation():
    from_json = org.parse_org_file(ORG_JSON)
    from_csv = org.parse_org_file(ORG_CSV)
    assert from_json.problems == [] and from_csv.problems == []
    for section in ("people", "clients", "sites"):
        assert [r.fields for r in getattr(from_json, section)] == [r.fields for r in getattr(from_csv, section)]
    assert len(from_json.people) == 9 and len(from_json.clients) == 3 and len(from_json.sites) == 12
    assert from_csv.sites[0].where == f"{ORG_CSV}:14"
    assert from_json.sites[0].where == f"{ORG_JSON}: sites[0]"


@pytest.mark.parametrize("path", [ORG_JSON, ORG_CSV], ids=["json", "csv"])
def test_import_example_creates_everything_and_stores_it(new_session, initialised, path):
    result = import_file(new_session, initialised, path)
    assert result.created == EXAMPLE_COUNTS
    assert result.updated == ZERO and result.unchanged == ZERO

    units = units_by_code(new_session, initialised)
    assert len(units) == 15
    assert units["ACME"] == {"code": "ACME", "kind": "client", "name": "Acme Retail Pvt Ltd", "client": "ACME",
                             "city": None, "state": None, "in_charge": None, "owner": "asha.rao"}
    assert units["GLOBEX-PNQ"] == {"code": "GLOBEX-PNQ", "kind": "site", "name": "Globex Chakan Depot",
                                   "client": "GLOBEX", "city": "Pune", "state": "Maharashtra",
                                   "in_charge": "rahul.desai", "owner": None}
    people = {p[0]: p for p in snapshot(new_session)["people"]}
    assert people["karthik.s"] == ("karthik.s", "Karthik Subramanian", "karthik.s@example.com", "+91-98400-44008", True)


def test_csv_then_json_is_the_same_org(new_session, initialised):
    import_file(new_session, initialised, ORG_CSV)
    after_csv = snapshot(new_session)
    result = import_file(new_session, initialised, ORG_JSON)
    assert result.created == ZERO and result.updated == ZERO
    assert result.unchanged == EXAMPLE_COUNTS
    assert snapshot(new_session) == after_csv


@pytest.mark.parametrize("path", [ORG_JSON, ORG_CSV], ids=["json", "csv"])
def test_second_import_is_a_no_op(new_session, initialised, path):
    import_file(new_session, initialised, path)
    before = snapshot(new_session)
    result = import_file(new_session, initialised, path)
    assert result.as_dict() == {"created": ZERO, "updated": ZERO, "unchanged": EXAMPLE_COUNTS}
    # Nothing changed, so not even an audit row is written.
    assert snapshot(new_session) == before


def test_import_writes_one_audit_row_with_the_counts(new_session, initialised):
    before = snapshot(new_session)["audit_rows"]
    import_file(new_session, initialised, ORG_JSON)
    with new_session() as session:
        rows = session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
    assert len(rows) == before + 1
    assert rows[-1].action == "CONFIG_CHANGE" and rows[-1].target_type == "org"
    assert rows[-1].details["created"] == EXAMPLE_COUNTS


def test_changed_fields_count_as_updated_and_are_stored(new_session, initialised, tmp_path):
    import_file(new_session, initialised, ORG_JSON)
    data = json.loads(ORG_JSON.read_text())
    site = next(s for s in data["sites"] if s["code"] == "ACME-MYS")
    site["city"], site["in_charge"] = "Mysore", "meera.iyer"
    client = next(c for c in data["clients"] if c["code"] == "GLOBEX")
    client["owner"] = "sana.khan"
    person = next(p for p in data["people"] if p["username"] == "noc.lead")
    person["phone"] = "+91-80-4000-9999"
    changed = write(tmp_path, "changed.json", json.dumps(data))

    result = import_file(new_session, initialised, changed)
    assert result.created == ZERO
    assert result.updated == {"person": 1, "client": 1, "site": 1}
    assert result.unchanged == {"person": 8, "client": 2, "site": 11}

    units = units_by_code(new_session, initialised)
    assert (units["ACME-MYS"]["city"], units["ACME-MYS"]["in_charge"]) == ("Mysore", "meera.iyer")
    assert units["ACME-MYS"]["state"] == "Karnataka"  # untouched fields stay
    assert units["GLOBEX"]["owner"] == "sana.khan"
    people = {p[0]: p for p in snapshot(new_session)["people"]}
    assert people["noc.lead"][3] == "+91-80-4000-9999"
    # Running the changed file again is now a no-op.
    assert import_file(new_session, initialised, changed).updated == ZERO


def test_omitted_optional_fields_do_not_erase_stored_values(new_session, initialised, tmp_path):
    import_file(new_session, initialised, ORG_JSON)
    partial = write(tmp_path, "partial.json", json.dumps({"sites": [{"code": "ACME-CHN", "name": "Acme Chennai"}]}))
    result = import_file(new_session, initialised, partial)
    assert result.updated["site"] == 1
    site = units_by_code(new_session, initialised)["ACME-CHN"]
    assert (site["name"], site["client"], site["city"], site["in_charge"]) == (
        "Acme Chennai", "ACME", "Chennai", "karthik.s")


def test_site_can_refer_to_a_client_created_in_the_same_file(new_session, initialised, tmp_path):
    path = write(tmp_path, "new.csv",
                 "kind,code,name,client,city\nclient,ZED,Zed Corp,,\nsite,ZED-1,Zed One,ZED,Pune\n")
    assert import_file(new_session, initialised, path).created == {"person": 0, "client": 1, "site": 1}
    assert units_by_code(new_session, initialised)["ZED-1"]["client"] == "ZED"


# ---------------------------------------------------------------- all or nothing

BAD_CSV_ROWS = [
    # (line, row, fragment of the reason) -- line 1 is the header
    (2, "person,,new.person,New Person,new@example.com,,,,,,", None),
    (3, "person,,bad.email,Bad Email,not-an-email,,,,,,", "invalid email"),
    (4, "person,,,No Username,nouser@example.com,,,,,,", "username is required"),
    (5, "client,NEWCLI,,New Client,,,,,,asha.rao,", None),
    (6, "site,S-NOCLIENT,,Orphan,,,NOPE,Pune,Maharashtra,,", "'NOPE' is not a known client"),
    (7, "site,S-GHOST,,Ghost In Charge,,,ACME,Pune,Maharashtra,,ghost", "in_charge 'ghost' is not a known person"),
    (8, "client,C-GHOST,,Ghost Owner,,,,,,phantom,", "owner 'phantom' is not a known person"),
    (9, "site,DUP,,First Dup,,,ACME,,,,", None),
    (10, "site,DUP,,Second Dup,,,ACME,,,,", "'DUP' appears again"),
    (11, "site,ACME,,Client As Site,,,GLOBEX,,,,", "'ACME' is already a client"),
    (12, "site,S-MISMATCH,mismatch.user,Mismatch,,,ACME,,,,", "username do not apply to a site"),
    (13, "building,B1,,Building,,,ACME,,,,", "kind must be person, client or site"),
    (14, "site,,,No Code,,,ACME,,,,", "code is required"),
    (15, "site,ACME-MYS,,Acme Mysuru Store,,,ACME,Mysore,Karnataka,,vikram.nair", None),
    (16, "client,bad code!,,Bad Code,,,,,,,", "invalid code"),
    (17, "person,,x.y,Too Many,x@example.com,,,,,,,extra", "more cells than columns"),
    (18, "site,S-LONG,,Long City,,,ACME," + "C" * 101 + ",,,", "field 'city' is longer than 100 characters"),
]


def test_csv_with_bad_rows_reports_every_one_and_changes_nothing(new_session, initialised, tmp_path):
    import_file(new_session, initialised, ORG_JSON)
    before = snapshot(new_session)
    header = ORG_CSV.read_text().splitlines()[0]
    path = write(tmp_path, "mixed.csv", "\n".join([header] + [row for _, row, _ in BAD_CSV_ROWS]) + "\n")

    with pytest.raises(BadInput) as raised:
        import_file(new_session, initialised, path)
    error = raised.value
    assert error.exit_code == ExitCode.DATA_ERROR == 65
    assert "nothing was applied" in error.message
    bad = [(line, reason) for line, _, reason in BAD_CSV_ROWS if reason]
    assert len(error.details) == len(bad), error.details
    assert error.message.startswith(f"{len(bad)} problem(s)")
    for (line, reason), detail in zip(bad, error.details, strict=True):  # in file order
        assert detail.startswith(f"{path}:{line}: "), detail
        assert reason in detail, detail
    good_lines = {line for line, _, reason in BAD_CSV_ROWS if reason is None}
    assert not any(d.startswith(f"{path}:{n}:") for d in error.details for n in good_lines)
    # The good rows (a new person, a new client, an update) were not applied either.
    assert snapshot(new_session) == before


def test_csv_duplicate_reports_where_the_first_one_was(new_session, initialised, tmp_path):
    path = write(tmp_path, "dup.csv", "kind,username\nperson,same.name\nperson,other\nperson,same.name\n")
    with pytest.raises(BadInput) as raised:
        import_file(new_session, initialised, path)
    assert raised.value.details == [f"{path}:4: 'same.name' appears again (first at {path}:2)"]


def test_csv_unknown_column_is_refused_before_anything_is_read(new_session, initialised, tmp_path):
    before = snapshot(new_session)
    path = write(tmp_path, "cols.csv", "kind,code,name,colour\nclient,RED,Red Co,red\n")
    with pytest.raises(BadInput) as raised:
        org.parse_org_file(path)
    assert f"{path}:1: unknown column(s) colour" in str(raised.value)
    assert snapshot(new_session) == before


def test_csv_without_kind_column_is_refused(tmp_path):
    path = write(tmp_path, "nokind.csv", "code,name\nACME,Acme\n")
    with pytest.raises(BadInput, match="`kind` column"):
        org.parse_org_file(path)


def test_json_with_bad_entries_reports_every_one_and_changes_nothing(new_session, initialised, tmp_path):
    import_file(new_session, initialised, ORG_JSON)
    before = snapshot(new_session)
    document = {
        "people": [
            {"username": "fresh.person", "name": "Fresh"},                    # 0 good
            {"username": "bad.mail", "email": "nowhere"},                      # 1 invalid email
            {"name": "Nameless"},                                              # 2 missing username
            {"username": "shoe.size", "shoe": "42"},                           # 3 unknown field
            "just-a-string",                                                   # 4 not an object
            {"username": ["a", "list"]},                                       # 5 wrong type
            {"username": "flag.phone", "phone": True},                         # 6 wrong type (bool)
            {"username": "nested", "name": {"first": "N"}},                    # 7 wrong type (object)
        ],
        "clients": [
            {"code": "FRESH", "name": "Fresh Client", "owner": "fresh.person"},  # 0 good
            {"code": "GHOSTLY", "owner": "ghost"},                             # 1 unknown owner
            {"code": "ACME-MYS", "name": "Site as client"},                    # 2 site code as client
            {"name": "No code"},                                               # 3 missing code
            {"code": "VERBOSE", "name": "N" * 201},                            # 4 name too long
        ],
        "sites": [
            {"code": "FRESH-1", "client": "FRESH", "city": "Pune"},            # 0 good
            {"code": "ORPHAN", "client": "NOPE"},                              # 1 unknown client
            {"code": "HAUNTED", "client": "ACME", "in_charge": "ghost"},       # 2 unknown person
            {"code": "GLOBEX", "client": "ACME"},                              # 3 client code as site
            {"code": "FRESH-1", "client": "FRESH"},                            # 4 code used twice
            {"code": "NOPARENT"},                                              # 5 new site, no client
            {"code": "ACME-WF2", "client": "ACME", "floor": 3},                # 6 unknown field
        ],
    }
    path = write(tmp_path, "mixed.json", json.dumps(document))
    with pytest.raises(BadInput) as raised:
        import_file(new_session, initialised, path)
    details = raised.value.details
    expected = {
        "people[1]": "invalid email", "people[2]": "username is required", "people[3]": "unknown field(s) shoe",
        "people[4]": "must be an object", "people[5]": "'username' must be a string",
        "people[6]": "'phone' must be a string", "people[7]": "'name' must be a string",
        "clients[1]": "owner 'ghost' is not a known person", "clients[2]": "'ACME-MYS' is already a site",
        "clients[3]": "code is required", "clients[4]": "field 'name' is longer than 200 characters",
        "sites[1]": "'NOPE' is not a known client", "sites[2]": "in_charge 'ghost' is not a known person",
        "sites[3]": "'GLOBEX' is already a client", "sites[4]": "'FRESH-1' appears again",
        "sites[5]": "client is required for a new site", "sites[6]": "unknown field(s) floor",
    }
    assert len(details) == len(expected), details
    for where, reason in expected.items():
        matching = [d for d in details if d.startswith(f"{path}: {where}: ")]
        assert len(matching) == 1 and reason in matching[0], (where, details)
    assert not any(d.startswith(f"{path}: {section}[0]:")
                   for d in details for section in ("people", "clients", "sites"))
    assert f"(first at {path}: sites[0])" in next(d for d in details if "sites[4]" in d)
    assert snapshot(new_session) == before


@pytest.mark.parametrize("text, message", [
    ('{"people": {"username": "x"}}', "people must be a list"),
    ('{"sites": [], "buildings": []}', "unknown section(s) buildings"),
])
def test_json_structural_problems_are_reported(new_session, initialised, tmp_path, text, message):
    before = snapshot(new_session)
    path = write(tmp_path, "shape.json", text)
    with pytest.raises(BadInput) as raised:
        import_file(new_session, initialised, path)
    assert raised.value.details == [f"{path}: {message}" + ("; expected people, clients, sites"
                                                            if "section" in message else "")]
    assert snapshot(new_session) == before


@pytest.mark.parametrize("text, message", [
    ('{"people": [', ":1: invalid JSON"),
    ('[{"username": "x"}]', "expected an object with people, clients and sites"),
    ("   \n", "is empty"),
])
def test_unreadable_json_is_refused(tmp_path, text, message):
    path = write(tmp_path, "broken.json", text)
    with pytest.raises(BadInput) as raised:
        org.parse_org_file(path)
    assert str(path) in str(raised.value) and message in str(raised.value)


def test_missing_import_file_is_not_found(tmp_path):
    with pytest.raises(NotFound):
        org.parse_org_file(tmp_path / "absent.json")


def test_import_needs_configure(new_session, initialised):
    from nocctl.errors import PermissionDenied
    from nocctl.services import people

    people.add(new_session(), initialised, "viewer")
    before = snapshot(new_session)
    with pytest.raises(PermissionDenied):
        import_file(new_session, as_person("viewer"), ORG_JSON)
    assert snapshot(new_session) == before


# ---------------------------------------------------------------- add client / site

def test_add_client_and_site(new_session, initialised):
    import_file(new_session, initialised, ORG_JSON)
    client = org.add_client(new_session(), initialised, "UMBRELLA", "Umbrella Corp", owner="noc.lead")
    assert client == {"code": "UMBRELLA", "kind": "client", "name": "Umbrella Corp", "client": "UMBRELLA",
                      "city": None, "state": None, "in_charge": None, "owner": "noc.lead"}
    site = org.add_site(new_session(), initialised, "UMB-KOC", "UMBRELLA", "Umbrella Kochi", city="Kochi",
                        state="Kerala", in_charge="meera.iyer")
    assert site == {"code": "UMB-KOC", "kind": "site", "name": "Umbrella Kochi", "client": "UMBRELLA",
                    "city": "Kochi", "state": "Kerala", "in_charge": "meera.iyer", "owner": None}
    units = units_by_code(new_session, initialised)
    assert units["UMBRELLA"] == client and units["UMB-KOC"] == site
    # Both additions are audited.
    with new_session() as session:
        changes = [row.details["change"] for row in session.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert changes[-2:] == ["client add", "site add"]


def test_add_without_optional_people(new_session, initialised):
    org.add_client(new_session(), initialised, "SOLO", "Solo Ltd")
    site = org.add_site(new_session(), initialised, "SOLO-1", "SOLO", "Solo One")
    assert (site["client"], site["in_charge"], site["city"]) == ("SOLO", None, None)


@pytest.mark.parametrize("code", ["ACME", "ACME-MYS"], ids=["client-code", "site-code"])
def test_duplicate_codes_conflict(new_session, initialised, code):
    import_file(new_session, initialised, ORG_JSON)
    before = snapshot(new_session)
    with pytest.raises(Conflict) as raised:
        org.add_client(new_session(), initialised, code, "Again")
    assert raised.value.exit_code == 4
    with pytest.raises(Conflict):
        org.add_site(new_session(), initialised, code, "GLOBEX", "Again")
    assert snapshot(new_session) == before


def test_add_site_unknown_client_or_person_is_not_found(new_session, initialised):
    import_file(new_session, initialised, ORG_JSON)
    before = snapshot(new_session)
    with pytest.raises(NotFound, match="no client 'NOPE'") as raised:
        org.add_site(new_session(), initialised, "NEW-1", "NOPE", "New")
    assert raised.value.exit_code == 3
    with pytest.raises(NotFound, match="no client 'ACME-MYS'"):  # a site is not a client
        org.add_site(new_session(), initialised, "NEW-1", "ACME-MYS", "New")
    with pytest.raises(NotFound, match="no person 'ghost'"):
        org.add_site(new_session(), initialised, "NEW-1", "ACME", "New", in_charge="ghost")
    with pytest.raises(NotFound, match="no person 'ghost'"):
        org.add_client(new_session(), initialised, "NEWCO", "New Co", owner="ghost")
    assert snapshot(new_session) == before


@pytest.mark.parametrize("code", ["", "has space", "-leading", "x" * 65])
def test_add_client_invalid_code(new_session, initialised, code):
    with pytest.raises(BadInput, match="invalid code"):
        org.add_client(new_session(), initialised, code, "Name")


# ---------------------------------------------------------------- list and tree

def test_list_units_shape_and_order(new_session, initialised):
    import_file(new_session, initialised, ORG_JSON)
    rows = org.list_units(new_session(), initialised)
    assert all(tuple(row) == org.UNIT_COLUMNS for row in rows)
    # Each client, then its sites by code.
    assert [r["code"] for r in rows[:5]] == ["ACME", "ACME-BLR-KOR", "ACME-BLR-WF", "ACME-CHN", "ACME-MYS"]
    assert [r["code"] for r in rows if r["kind"] == "client"] == ["ACME", "GLOBEX", "INITECH"]
    assert [r["kind"] for r in rows] == (
        ["client"] + ["site"] * 4 + ["client"] + ["site"] * 4 + ["client"] + ["site"] * 4)

    sites = org.list_units(new_session(), initialised, kind="site")
    assert len(sites) == 12 and {r["kind"] for r in sites} == {"site"}
    globex = org.list_units(new_session(), initialised, client="GLOBEX")
    assert [r["code"] for r in globex] == ["GLOBEX", "GLOBEX-AMD", "GLOBEX-BOM-WH1", "GLOBEX-BOM-WH2", "GLOBEX-PNQ"]
    assert org.list_units(new_session(), initialised, kind="client", client="INITECH")[0]["owner"] == "arjun.mehta"
    with pytest.raises(NotFound):
        org.list_units(new_session(), initialised, client="NOPE")


def test_list_units_empty(new_session, initialised):
    assert org.list_units(new_session(), initialised) == []
    assert org.tree(new_session(), initialised) == []


def test_tree_shape(new_session, initialised):
    import_file(new_session, initialised, ORG_JSON)
    org.add_site(new_session(), initialised, "ACME-X", "ACME", "Acme Nowhere")  # no state, no city
    clients = org.tree(new_session(), initialised)
    assert [c["code"] for c in clients] == ["ACME", "GLOBEX", "INITECH"]
    acme = clients[0]
    assert set(acme) == {"code", "name", "owner", "states"}
    assert (acme["name"], acme["owner"]) == ("Acme Retail Pvt Ltd", "asha.rao")
    assert acme["states"] == [
        {"state": "(no state)", "cities": [
            {"city": "(no city)", "sites": [{"code": "ACME-X", "name": "Acme Nowhere", "in_charge": None}]}]},
        {"state": "Karnataka", "cities": [
            {"city": "Bengaluru", "sites": [
                {"code": "ACME-BLR-KOR", "name": "Acme Koramangala Store", "in_charge": "meera.iyer"},
                {"code": "ACME-BLR-WF", "name": "Acme Whitefield Store", "in_charge": "vikram.nair"}]},
            {"city": "Mysuru", "sites": [
                {"code": "ACME-MYS", "name": "Acme Mysuru Store", "in_charge": "vikram.nair"}]}]},
        {"state": "Tamil Nadu", "cities": [
            {"city": "Chennai", "sites": [
                {"code": "ACME-CHN", "name": "Acme T. Nagar Store", "in_charge": "karthik.s"}]}]},
    ]
    only = org.tree(new_session(), initialised, client="GLOBEX")
    assert [c["code"] for c in only] == ["GLOBEX"]
    assert [s["state"] for s in only[0]["states"]] == ["Gujarat", "Maharashtra"]
    maharashtra = only[0]["states"][1]["cities"]
    assert [(c["city"], [s["code"] for s in c["sites"]]) for c in maharashtra] == [
        ("Bhiwandi", ["GLOBEX-BOM-WH1", "GLOBEX-BOM-WH2"]), ("Pune", ["GLOBEX-PNQ"])]
    json.dumps(clients)  # plain values only


def test_longest_allowed_values_are_stored(new_session, initialised, tmp_path):
    name, city = "N" * 200, "C" * 100
    path = write(tmp_path, "long.json", json.dumps({
        "clients": [{"code": "LONG", "name": name}],
        "sites": [{"code": "LONG-1", "client": "LONG", "name": name, "city": city}],
    }))
    assert import_file(new_session, initialised, path).created == {"person": 0, "client": 1, "site": 1}
    units = units_by_code(new_session, initialised)
    assert (units["LONG"]["name"], units["LONG-1"]["city"]) == (name, city)
