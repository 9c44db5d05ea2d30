"""`nocctl org client add`, `org site add`, `org import`, `org list`, `org tree` through the
command line, on the backend under test: output formats, errors, idempotent imports and
what each person may see."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from nocctl.services.rbac import os_login

LOGIN = os_login()
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ORG_JSON = str(EXAMPLES / "org.json")
ORG_CSV = str(EXAMPLES / "org.csv")

UNIT_COLUMNS = ["code", "kind", "name", "client", "city", "state", "in_charge", "owner"]
EXAMPLE_CLIENTS = ["ACME", "GLOBEX", "INITECH"]
EXAMPLE_ACME = ["ACME", "ACME-BLR-KOR", "ACME-BLR-WF", "ACME-CHN", "ACME-MYS"]
EXAMPLE_CODES = EXAMPLE_ACME + [
    "GLOBEX", "GLOBEX-AMD", "GLOBEX-BOM-WH1", "GLOBEX-BOM-WH2", "GLOBEX-PNQ",
    "INITECH", "INITECH-CHN", "INITECH-GGN", "INITECH-HYD", "INITECH-NOI",
]

CREATED_ALL = (
    "people   9 created, 0 updated, 0 unchanged\n"
    "clients  3 created, 0 updated, 0 unchanged\n"
    "sites    12 created, 0 updated, 0 unchanged\n"
)
UNCHANGED_ALL = (
    "people   0 created, 0 updated, 9 unchanged\n"
    "clients  0 created, 0 updated, 3 unchanged\n"
    "sites    0 created, 0 updated, 12 unchanged\n"
)

ACME_TREE = """\
ACME  Acme Retail Pvt Ltd  [owner: asha.rao]
├── Karnataka
│   ├── Bengaluru
│   │   ├── ACME-BLR-KOR  Acme Koramangala Store  [in charge: meera.iyer]
│   │   └── ACME-BLR-WF  Acme Whitefield Store  [in charge: vikram.nair]
│   └── Mysuru
│       └── ACME-MYS  Acme Mysuru Store  [in charge: vikram.nair]
└── Tamil Nadu
    └── Chennai
        └── ACME-CHN  Acme T. Nagar Store  [in charge: karthik.s]
"""


def assert_error(result, code: int, message: str) -> None:
    """A failure: nothing on stdout, exactly one `nocctl: error:` line on stderr."""
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", f"nocctl: error: {message}\n")


def assert_ok(result, stdout: str) -> None:
    assert (result.exit_code, result.stderr, result.stdout) == (0, "", stdout)


def codes(cli, *args) -> list[str]:
    result = cli("org", "list", "--format", "json", *args)
    assert result.exit_code == 0, result.stderr
    return [row["code"] for row in json.loads(result.stdout)]


@pytest.fixture
def org_cli(admin_cli):
    """An initialised database holding examples/org.json."""
    result = admin_cli("org", "import", ORG_JSON)
    assert result.exit_code == 0, result.stderr
    return admin_cli


@pytest.fixture
def small_org(admin_cli):
    """One client with an owner and two sites, built with the add commands."""
    for args in (
        ("user", "add", "asha", "--name", "Asha Rao"),
        ("user", "add", "vikram", "--name", "Vikram Nair"),
        ("org", "client", "add", "ACME", "--name", "Acme Retail", "--owner", "asha"),
        ("org", "site", "add", "ACME-WF", "--client", "ACME", "--name", "Whitefield Store",
         "--city", "Bengaluru", "--state", "Karnataka", "--in-charge", "vikram"),
        ("org", "site", "add", "ACME-HQ", "--client", "ACME", "--name", "Head Office"),
    ):
        result = admin_cli(*args)
        assert result.exit_code == 0, (args, result.stderr)
    return admin_cli


# ---------------------------------------------------------------- org client add


def test_client_add_prints_the_code(admin_cli):
    assert_ok(admin_cli("org", "client", "add", "ACME", "--name", "Acme Retail"), "ACME\n")
    assert json.loads(admin_cli("org", "list", "--format", "json").stdout) == [
        {"code": "ACME", "kind": "client", "name": "Acme Retail", "client": "ACME",
         "city": None, "state": None, "in_charge": None, "owner": None},
    ]


def test_client_add_json_prints_the_created_client(admin_cli):
    assert admin_cli("user", "add", "asha").exit_code == 0
    result = admin_cli("org", "client", "add", "ACME", "--name", "Acme Retail", "--owner", "asha", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "code": "ACME", "kind": "client", "name": "Acme Retail", "client": "ACME",
        "city": None, "state": None, "in_charge": None, "owner": "asha",
    }


def test_client_add_refuses_a_duplicate_code(admin_cli):
    assert admin_cli("org", "client", "add", "ACME", "--name", "Acme").exit_code == 0
    assert_error(admin_cli("org", "client", "add", "ACME", "--name", "Other"), 4,
                 "client 'ACME' already exists; use `nocctl org import` to update it")
    assert json.loads(admin_cli("org", "list", "--format", "json").stdout)[0]["name"] == "Acme"


def test_client_add_refuses_the_code_of_a_site(small_org):
    assert_error(small_org("org", "client", "add", "ACME-WF", "--name", "X"), 4,
                 "site 'ACME-WF' already exists; use `nocctl org import` to update it")


def test_client_add_refuses_an_unknown_owner(admin_cli):
    assert_error(admin_cli("org", "client", "add", "ACME", "--name", "Acme", "--owner", "ghost"), 3,
                 "no person 'ghost'; add them first: `nocctl user add ghost`")
    assert admin_cli("org", "list").stdout == "(none)\n"


@pytest.mark.parametrize("code", ["bad code", ".ACME", "AC/ME", "X" * 65])
def test_client_add_refuses_an_invalid_code(admin_cli, code):
    assert_error(admin_cli("org", "client", "add", code, "--name", "X"), 65,
                 f"invalid code {code!r}; use letters, digits and _ . - (up to 64)")
    assert admin_cli("org", "list").stdout == "(none)\n"


def test_client_add_needs_a_name(admin_cli):
    result = admin_cli("org", "client", "add", "ACME")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("nocctl: error: Missing option '--name'.")
    assert result.stderr.count("\n") == 1


def test_client_add_without_configure_is_denied(org_cli):
    assert org_cli("user", "grant", "asha.rao", "noc:view_all_clients").exit_code == 0
    assert_error(org_cli("--as", "asha.rao", "org", "client", "add", "NEW", "--name", "New"), 77,
                 "'asha.rao' lacks noc:configure tenant-wide; an admin can run "
                 "`nocctl user grant asha.rao noc:configure`")
    assert "NEW" not in codes(org_cli)


def test_client_add_with_configure_only_for_one_client_is_denied(org_cli):
    assert org_cli("user", "grant", "asha.rao", "noc:configure", "--client", "ACME").exit_code == 0
    result = org_cli("--as", "asha.rao", "org", "client", "add", "NEW", "--name", "New")
    assert result.exit_code == 77
    assert "NEW" not in codes(org_cli)


def test_client_add_by_a_configurer_without_view_capability(org_cli):
    # noc:configure tenant-wide suffices to create; the new client is printed back
    assert org_cli("user", "grant", "noc.lead", "noc:configure").exit_code == 0
    result = org_cli("--as", "noc.lead", "org", "client", "add", "NEW", "--name", "New", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["code"] == "NEW"
    assert "NEW" in codes(org_cli)


def test_client_add_as_a_login_that_is_no_person(admin_cli):
    assert_error(admin_cli("--as", "nobody", "org", "client", "add", "ACME", "--name", "Acme"), 77,
                 "'nobody' is not a NOC operator of tenant 'default'; an admin can run "
                 "`nocctl user add nobody` and `nocctl user grant nobody CAPABILITY`")


# ---------------------------------------------------------------- org site add


def test_site_add_prints_the_code_and_json(admin_cli):
    assert admin_cli("user", "add", "vikram").exit_code == 0
    assert admin_cli("org", "client", "add", "ACME", "--name", "Acme").exit_code == 0
    assert_ok(admin_cli("org", "site", "add", "ACME-HQ", "--client", "ACME", "--name", "Head Office"), "ACME-HQ\n")
    result = admin_cli("org", "site", "add", "ACME-WF", "--client", "ACME", "--name", "Whitefield",
                       "--city", "Bengaluru", "--state", "Karnataka", "--in-charge", "vikram", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "code": "ACME-WF", "kind": "site", "name": "Whitefield", "client": "ACME",
        "city": "Bengaluru", "state": "Karnataka", "in_charge": "vikram", "owner": None,
    }
    assert codes(admin_cli) == ["ACME", "ACME-HQ", "ACME-WF"]


def test_site_add_refuses_an_unknown_client(admin_cli):
    assert_error(admin_cli("org", "site", "add", "S1", "--client", "NOPE", "--name", "S"), 3,
                 "no client 'NOPE'; see `nocctl org list`")
    assert admin_cli("org", "list").stdout == "(none)\n"


def test_site_add_refuses_a_site_as_client(small_org):
    assert_error(small_org("org", "site", "add", "S1", "--client", "ACME-WF", "--name", "S"), 3,
                 "no client 'ACME-WF'; see `nocctl org list`")


def test_site_add_refuses_a_duplicate_code(small_org):
    assert_error(small_org("org", "site", "add", "ACME-WF", "--client", "ACME", "--name", "Again"), 4,
                 "site 'ACME-WF' already exists; use `nocctl org import` to update it")
    assert_error(small_org("org", "site", "add", "ACME", "--client", "ACME", "--name", "Again"), 4,
                 "client 'ACME' already exists; use `nocctl org import` to update it")


def test_site_add_refuses_an_unknown_in_charge(small_org):
    assert_error(small_org("org", "site", "add", "S1", "--client", "ACME", "--name", "S", "--in-charge", "ghost"), 3,
                 "no person 'ghost'; add them first: `nocctl user add ghost`")
    assert "S1" not in codes(small_org)


def test_site_add_refuses_an_invalid_code(small_org):
    assert_error(small_org("org", "site", "add", "S 1", "--client", "ACME", "--name", "S"), 65,
                 "invalid code 'S 1'; use letters, digits and _ . - (up to 64)")


def test_site_add_needs_client_and_name(small_org):
    for args in (("S1", "--name", "S"), ("S1", "--client", "ACME")):
        result = small_org("org", "site", "add", *args)
        assert result.exit_code == 2
        assert result.stderr.startswith("nocctl: error: Missing option '--")
    assert "S1" not in codes(small_org)


def test_site_add_with_configure_for_its_client(org_cli):
    assert org_cli("user", "grant", "asha.rao", "noc:configure", "--client", "ACME").exit_code == 0
    # no view capability needed to add (and be shown) the site
    assert_ok(org_cli("--as", "asha.rao", "org", "site", "add", "ACME-NEW", "--client", "ACME", "--name", "New"),
              "ACME-NEW\n")
    # GLOBEX is hidden from asha.rao: "not found", exactly like a client that does not exist
    assert_error(org_cli("--as", "asha.rao", "org", "site", "add", "GLOBEX-NEW", "--client", "GLOBEX", "--name", "New"),
                 3, "no client 'GLOBEX'; see `nocctl org list`")
    assert_error(org_cli("--as", "asha.rao", "org", "site", "add", "NOPE-NEW", "--client", "NOPE", "--name", "New"),
                 3, "no client 'NOPE'; see `nocctl org list`")
    assert "ACME-NEW" in codes(org_cli)
    assert "GLOBEX-NEW" not in codes(org_cli)


def test_site_add_without_configure_is_denied(org_cli):
    assert org_cli("user", "grant", "asha.rao", "noc:view_client", "--client", "ACME").exit_code == 0
    result = org_cli("--as", "asha.rao", "org", "site", "add", "ACME-NEW", "--client", "ACME", "--name", "New")
    assert_error(result, 77, "'asha.rao' lacks noc:configure for client ACME; an admin can run "
                             "`nocctl user grant asha.rao noc:configure`")


# ---------------------------------------------------------------- org import


def test_import_json_then_again_is_idempotent(admin_cli):
    assert_ok(admin_cli("org", "import", ORG_JSON), CREATED_ALL)
    tree = admin_cli("org", "tree", "--format", "json").stdout
    assert_ok(admin_cli("org", "import", ORG_JSON), UNCHANGED_ALL)
    assert admin_cli("org", "tree", "--format", "json").stdout == tree
    assert codes(admin_cli) == EXAMPLE_CODES


def test_import_csv_gives_the_same_organisation_as_json(admin_cli):
    assert_ok(admin_cli("org", "import", ORG_JSON), CREATED_ALL)
    assert admin_cli("--tenant", "csv", "init").exit_code == 0
    assert_ok(admin_cli("--tenant", "csv", "org", "import", ORG_CSV), CREATED_ALL)

    for args in (("org", "tree", "--format", "json"), ("org", "list", "--format", "json")):
        from_json = admin_cli(*args)
        from_csv = admin_cli("--tenant", "csv", *args)
        assert from_json.exit_code == from_csv.exit_code == 0
        assert from_csv.stdout == from_json.stdout
    people_json = json.loads(admin_cli("user", "list", "--format", "json").stdout)
    people_csv = json.loads(admin_cli("--tenant", "csv", "user", "list", "--format", "json").stdout)
    assert people_csv == people_json
    # and the CSV on top of the JSON changes nothing
    assert_ok(admin_cli("org", "import", ORG_CSV), UNCHANGED_ALL)


def test_import_json_counts(admin_cli):
    result = admin_cli("org", "import", "--json", ORG_JSON)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "created": {"person": 9, "client": 3, "site": 12},
        "updated": {"person": 0, "client": 0, "site": 0},
        "unchanged": {"person": 0, "client": 0, "site": 0},
    }


def test_import_updates_what_changed(org_cli):
    change = {
        "people": [{"username": "asha.rao", "phone": "+91-1"}, {"username": "new.person", "name": "New"}],
        "clients": [{"code": "ACME", "name": "Acme Renamed", "owner": "new.person"}],
        "sites": [{"code": "ACME-MYS", "city": "Mysore"}, {"code": "ACME-CHN"}],
    }
    result = org_cli("org", "import", "-", input=json.dumps(change))
    assert_ok(result,
              "people   1 created, 1 updated, 0 unchanged\n"
              "clients  0 created, 1 updated, 0 unchanged\n"
              "sites    0 created, 1 updated, 1 unchanged\n")
    rows = {r["code"]: r for r in json.loads(org_cli("org", "list", "--format", "json").stdout)}
    assert rows["ACME"]["name"] == "Acme Renamed" and rows["ACME"]["owner"] == "new.person"
    # keys left out keep their value
    assert rows["ACME-MYS"] == {"code": "ACME-MYS", "kind": "site", "name": "Acme Mysuru Store", "client": "ACME",
                                "city": "Mysore", "state": "Karnataka", "in_charge": "vikram.nair", "owner": None}
    asha = json.loads(org_cli("user", "show", "asha.rao", "--format", "json").stdout)
    assert (asha["name"], asha["phone"]) == ("Asha Rao", "+91-1")


def test_import_csv_from_stdin(admin_cli):
    text = ("kind,code,username,name,client,city,state,in_charge,owner\n"
            "person,,ops,Ops Person,,,,,\n"
            "client,ACME,,Acme,,,,,ops\n"
            "site,ACME-1,,First,ACME,Pune,Maharashtra,ops,\n")
    assert_ok(admin_cli("org", "import", "-", input=text),
              "people   1 created, 0 updated, 0 unchanged\n"
              "clients  1 created, 0 updated, 0 unchanged\n"
              "sites    1 created, 0 updated, 0 unchanged\n")
    assert admin_cli("org", "list", "--format", "csv").stdout == (
        "code,kind,name,client,city,state,in_charge,owner\n"
        "ACME,client,Acme,ACME,,,,ops\n"
        "ACME-1,site,First,ACME,Pune,Maharashtra,ops,\n"
    )


BAD_CSV = """\
kind,code,username,name,email,phone,client,city,state,owner,in_charge
person,,good.person,Good Person,good@example.com,,,,,,
person,,bad person,,,,,,,,
client,GOOD,,Good Client,,,,,,good.person,
client,BAD CODE,,Bad,,,,,,,
site,GOOD-1,,Good Site,,,GOOD,Pune,Maharashtra,,good.person
site,ORPHAN,,Orphan,,,NOPE,,,,
robot,R1,,,,,,,,,
person,,x.person,,not-an-email,,,,,,
site,GOOD-2,,Site,,,GOOD,,,,ghost
client,GOOD,,Again,,,,,,,
person,P1,someone,,,,,,,,
site,NEWSITE,,No client,,,,,,,
"""


def test_import_with_bad_rows_reports_each_with_file_and_line_and_applies_nothing(admin_cli, tmp_path):
    path = tmp_path / "org.csv"
    path.write_text(BAD_CSV)
    result = admin_cli("org", "import", str(path))
    assert result.exit_code == 65
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"nocctl: {path}:3: invalid username 'bad person'; use letters, digits and . _ @ -",
        f"nocctl: {path}:5: invalid code 'BAD CODE' (letters, digits, _ . -)",
        f"nocctl: {path}:7: client 'NOPE' is not a known client",
        f"nocctl: {path}:8: kind must be person, client or site, not 'robot'",
        f"nocctl: {path}:9: invalid email 'not-an-email'",
        f"nocctl: {path}:10: in_charge 'ghost' is not a known person",
        f"nocctl: {path}:11: 'GOOD' appears again (first at {path}:4)",
        f"nocctl: {path}:12: field(s) code do not apply to a person",
        f"nocctl: {path}:13: client is required for a new site",
        "nocctl: error: 9 problem(s) in the import; nothing was applied; fix the rows above and run it again",
    ]
    assert "Traceback" not in result.stderr
    # the good rows were not applied either
    assert admin_cli("org", "list").stdout == "(none)\n"
    assert [p["username"] for p in json.loads(admin_cli("user", "list", "--format", "json").stdout)] == [LOGIN]


def test_import_with_bad_json_entries_applies_nothing(admin_cli, tmp_path):
    path = tmp_path / "org.json"
    path.write_text(json.dumps({
        "people": [{"username": "ok.person"}, {"name": "no username"}],
        "clients": [{"code": "OK", "owner": "ghost"}, {"code": "OK2", "colour": "red"}],
        "sites": [{"code": "S1", "client": "OK"}, {"code": "S2"}],
    }))
    result = admin_cli("org", "import", str(path))
    assert result.exit_code == 65
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert sorted(lines[:-1]) == sorted([
        f"nocctl: {path}: clients[1]: unknown field(s) colour for a client; allowed: code, name, owner",
        f"nocctl: {path}: people[1]: username is required",
        f"nocctl: {path}: clients[0]: owner 'ghost' is not a known person",
        f"nocctl: {path}: sites[1]: client is required for a new site",
    ])
    assert lines[-1] == ("nocctl: error: 4 problem(s) in the import; nothing was applied;"
                         " fix the rows above and run it again")
    assert admin_cli("org", "list").stdout == "(none)\n"
    assert "ok.person" not in admin_cli("user", "list").stdout


@pytest.mark.parametrize("text, message", [
    ("", "{path} is empty"),
    ('{"clients": [', "{path}:1: invalid JSON: Expecting value"),
    ("[]", "{path}: expected an object with people, clients and sites"),
    ("code,name\nACME,Acme\n", "{path}: not JSON, and a CSV needs a `kind` column (person|client|site)"),
    ("kind,code,colour\nclient,ACME,red\n",
     ("{path}:1: unknown column(s) colour; allowed: city, client, code, email, in_charge, kind, name, owner, "
      "phone, state, username")),
])
def test_import_refuses_an_unreadable_file(admin_cli, tmp_path, text, message):
    path = tmp_path / "org.txt"
    path.write_text(text)
    assert_error(admin_cli("org", "import", str(path)), 65, message.format(path=path))
    assert admin_cli("org", "list").stdout == "(none)\n"


def test_import_of_a_missing_file(admin_cli, tmp_path):
    assert_error(admin_cli("org", "import", str(tmp_path / "nope.json")), 3, f"no such file: {tmp_path / 'nope.json'}")


def test_import_needs_configure(org_cli):
    assert org_cli("user", "grant", "asha.rao", "noc:view_all_clients").exit_code == 0
    assert_error(org_cli("--as", "asha.rao", "org", "import", "-", input='{"clients": [{"code": "NEW"}]}'), 77,
                 "'asha.rao' lacks noc:configure tenant-wide; an admin can run "
                 "`nocctl user grant asha.rao noc:configure`")
    assert "NEW" not in codes(org_cli)


# ---------------------------------------------------------------- org list


SMALL_TABLE = """\
code     kind    name              client    city       state      in_charge    owner
-------  ------  ----------------  --------  ---------  ---------  -----------  -------
ACME     client  Acme Retail       ACME                                         asha
ACME-HQ  site    Head Office       ACME
ACME-WF  site    Whitefield Store  ACME      Bengaluru  Karnataka  vikram
"""
SMALL_ROWS = [
    {"code": "ACME", "kind": "client", "name": "Acme Retail", "client": "ACME",
     "city": None, "state": None, "in_charge": None, "owner": "asha"},
    {"code": "ACME-HQ", "kind": "site", "name": "Head Office", "client": "ACME",
     "city": None, "state": None, "in_charge": None, "owner": None},
    {"code": "ACME-WF", "kind": "site", "name": "Whitefield Store", "client": "ACME",
     "city": "Bengaluru", "state": "Karnataka", "in_charge": "vikram", "owner": None},
]


def test_list_table(small_org):
    assert_ok(small_org("org", "list"), SMALL_TABLE)
    assert_ok(small_org("org", "list", "--format", "table"), SMALL_TABLE)


def test_list_json(small_org):
    result = small_org("org", "list", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == SMALL_ROWS
    assert result.stdout == json.dumps(SMALL_ROWS, indent=2, ensure_ascii=False) + "\n"


def test_list_ndjson(small_org):
    assert_ok(small_org("org", "list", "--format", "ndjson"),
              "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in SMALL_ROWS))


def test_list_csv(small_org):
    assert_ok(small_org("org", "list", "--format", "csv"),
              "code,kind,name,client,city,state,in_charge,owner\n"
              "ACME,client,Acme Retail,ACME,,,,asha\n"
              "ACME-HQ,site,Head Office,ACME,,,,\n"
              "ACME-WF,site,Whitefield Store,ACME,Bengaluru,Karnataka,vikram,\n")


def test_list_csv_quotes_commas(admin_cli):
    assert admin_cli("org", "client", "add", "ACME", "--name", "Acme, Inc.").exit_code == 0
    out = admin_cli("org", "list", "--format", "csv").stdout
    assert out == 'code,kind,name,client,city,state,in_charge,owner\nACME,client,"Acme, Inc.",ACME,,,,\n'
    assert next(csv.DictReader(io.StringIO(out)))["name"] == "Acme, Inc."


@pytest.mark.parametrize("fmt, expected", [
    ("table", "(none)\n"),
    ("json", "[]\n"),
    ("ndjson", ""),
    ("csv", "code,kind,name,client,city,state,in_charge,owner\n"),
])
def test_list_of_nothing(admin_cli, fmt, expected):
    assert_ok(admin_cli("org", "list", "--format", fmt), expected)


@pytest.mark.parametrize("fmt", ["table", "json", "ndjson", "csv"])
def test_list_to_a_file_prints_nothing(small_org, tmp_path, fmt):
    target = tmp_path / f"units.{fmt}"
    assert_ok(small_org("org", "list", "--format", fmt, "-o", str(target)), "")
    assert target.read_text() == small_org("org", "list", "--format", fmt).stdout
    assert target.read_text() != ""


def test_list_to_a_file_in_a_missing_directory(small_org, tmp_path):
    target = tmp_path / "missing" / "units.csv"
    result = small_org("org", "list", "--format", "csv", "--output", str(target))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"nocctl: error: Invalid value for '-o' / '--output': cannot write {target}: No such file or directory")
    assert result.stderr.count("\n") == 1
    assert not target.exists()


def test_list_filters_by_kind_and_client(org_cli):
    assert codes(org_cli, "--kind", "client") == EXAMPLE_CLIENTS
    assert codes(org_cli, "--client", "ACME") == EXAMPLE_ACME
    assert codes(org_cli, "--client", "ACME", "--kind", "site") == EXAMPLE_ACME[1:]
    assert codes(org_cli, "--kind", "site")[:4] == EXAMPLE_ACME[1:]
    assert len(codes(org_cli, "--kind", "site")) == 12


def test_list_of_an_unknown_client(org_cli):
    assert_error(org_cli("org", "list", "--client", "NOPE"), 3, "no client 'NOPE'; see `nocctl org list`")
    assert_error(org_cli("org", "list", "--client", "ACME-MYS"), 3, "no client 'ACME-MYS'; see `nocctl org list`")


def test_list_rejects_unknown_format_and_kind(org_cli):
    for args, start in (
        (("--format", "xml"), "nocctl: error: Invalid value for '--format': 'xml' is not one of"),
        (("--kind", "region"), "nocctl: error: Invalid value for '--kind': 'region' is not one of"),
        (("--bogus",), "nocctl: error: No such option '--bogus'."),
    ):
        result = org_cli("org", "list", *args)
        assert result.exit_code == 2
        assert result.stdout == ""
        assert result.stderr.startswith(start)
        assert result.stderr.count("\n") == 1


# ---------------------------------------------------------------- org tree


def test_tree_of_one_client(org_cli):
    assert_ok(org_cli("org", "tree", "--client", "ACME"), ACME_TREE)


def test_tree_of_everything_lists_clients_in_order(org_cli):
    result = org_cli("org", "tree")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(ACME_TREE + "GLOBEX  Globex Logistics  [owner: rahul.desai]\n")
    tops = [line.split("  ")[0] for line in result.stdout.splitlines() if not line.startswith(("├", "└", "│", " "))]
    assert tops == EXAMPLE_CLIENTS
    assert result.stdout.endswith("└── Uttar Pradesh\n    └── Noida\n"
                                  "        └── INITECH-NOI  Initech Sector 62 Campus  [in charge: priya.sharma]\n")


def test_tree_without_city_or_state(small_org):
    assert_ok(small_org("org", "tree"),
              "ACME  Acme Retail  [owner: asha]\n"
              "├── (no state)\n"
              "│   └── (no city)\n"
              "│       └── ACME-HQ  Head Office\n"
              "└── Karnataka\n"
              "    └── Bengaluru\n"
              "        └── ACME-WF  Whitefield Store  [in charge: vikram]\n")


def test_tree_json(small_org):
    result = small_org("org", "tree", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [{
        "code": "ACME", "name": "Acme Retail", "owner": "asha",
        "states": [
            {"state": "(no state)", "cities": [{"city": "(no city)", "sites": [
                {"code": "ACME-HQ", "name": "Head Office", "in_charge": None}]}]},
            {"state": "Karnataka", "cities": [{"city": "Bengaluru", "sites": [
                {"code": "ACME-WF", "name": "Whitefield Store", "in_charge": "vikram"}]}]},
        ],
    }]


def test_tree_of_a_client_without_sites(admin_cli):
    assert admin_cli("org", "client", "add", "ACME", "--name", "Acme").exit_code == 0
    assert_ok(admin_cli("org", "tree"), "ACME  Acme\n")
    assert json.loads(admin_cli("org", "tree", "--format", "json").stdout) == [
        {"code": "ACME", "name": "Acme", "owner": None, "states": []}]


def test_tree_of_nothing(admin_cli):
    assert_ok(admin_cli("org", "tree"), "(none)\n")
    assert_ok(admin_cli("org", "tree", "--format", "json"), "[]\n")


def test_tree_of_an_unknown_client(org_cli):
    assert_error(org_cli("org", "tree", "--client", "NOPE"), 3, "no client 'NOPE'; see `nocctl org list`")


def test_tree_rejects_csv(org_cli):
    result = org_cli("org", "tree", "--format", "csv")
    assert result.exit_code == 2
    assert result.stderr.startswith("nocctl: error: Invalid value for '--format': 'csv' is not one of 'table', 'json'.")


# ---------------------------------------------------------------- who sees what


def test_view_client_sees_only_that_client_and_its_sites(org_cli):
    assert org_cli("user", "grant", "asha.rao", "noc:view_client", "--client", "ACME").exit_code == 0
    as_asha = lambda *args: org_cli("--as", "asha.rao", *args)  # noqa: E731
    assert codes(as_asha) == EXAMPLE_ACME
    assert_ok(as_asha("org", "tree"), ACME_TREE)
    assert [c["code"] for c in json.loads(as_asha("org", "tree", "--format", "json").stdout)] == ["ACME"]
    # asking for another client: not found, exactly like one that does not exist
    for args in (("org", "list", "--client", "GLOBEX"), ("org", "tree", "--client", "GLOBEX")):
        assert_error(as_asha(*args), 3, "no client 'GLOBEX'; see `nocctl org list`")
    assert_error(as_asha("org", "list", "--client", "NOPE"), 3, "no client 'NOPE'; see `nocctl org list`")


def test_view_client_through_noc_actor(org_cli):
    assert org_cli("user", "grant", "rahul.desai", "noc:view_client", "--client", "GLOBEX").exit_code == 0
    result = org_cli("org", "list", "--format", "csv", "--kind", "client", env={"NOC_ACTOR": "rahul.desai"})
    assert_ok(result, "code,kind,name,client,city,state,in_charge,owner\n"
                      "GLOBEX,client,Globex Logistics,GLOBEX,,,,rahul.desai\n")


def test_view_of_two_clients(org_cli):
    for client in ("ACME", "INITECH"):
        assert org_cli("user", "grant", "noc.lead", "noc:view_client", "--client", client).exit_code == 0
    assert codes(org_cli, "--kind", "client") == EXAMPLE_CLIENTS
    listed = codes(lambda *a: org_cli("--as", "noc.lead", *a), "--kind", "client")
    assert listed == ["ACME", "INITECH"]


def test_view_assigned_sites_sees_only_those_sites(org_cli):
    assert org_cli("user", "grant", "vikram.nair", "noc:view_assigned_sites", "--site", "ACME-MYS").exit_code == 0
    as_vikram = lambda *args: org_cli("--as", "vikram.nair", *args)  # noqa: E731
    assert codes(as_vikram) == ["ACME-MYS"]
    assert codes(as_vikram, "--kind", "client") == []
    # the tree names the client by its code only: its record (name, owner) is not visible
    assert_ok(as_vikram("org", "tree"),
              "ACME  ACME\n"
              "└── Karnataka\n"
              "    └── Mysuru\n"
              "        └── ACME-MYS  Acme Mysuru Store  [in charge: vikram.nair]\n")
    assert "asha.rao" not in as_vikram("org", "tree", "--format", "json").stdout


def test_view_assigned_sites_of_two_sites(org_cli):
    for site in ("ACME-MYS", "GLOBEX-PNQ"):
        assert org_cli("user", "grant", "vikram.nair", "noc:view_assigned_sites", "--site", site).exit_code == 0
    assert codes(lambda *a: org_cli("--as", "vikram.nair", *a)) == ["ACME-MYS", "GLOBEX-PNQ"]


@pytest.mark.parametrize("capability", ["noc:view", "noc:view_all_clients"])
def test_tenant_wide_view_sees_everything(org_cli, capability):
    assert org_cli("user", "grant", "meera.iyer", capability).exit_code == 0
    assert codes(lambda *a: org_cli("--as", "meera.iyer", *a)) == EXAMPLE_CODES


def test_a_person_without_grants_sees_nothing(org_cli):
    as_sana = lambda *args: org_cli("--as", "sana.khan", *args)  # noqa: E731
    assert_ok(as_sana("org", "list"), "(none)\n")
    assert_ok(as_sana("org", "list", "--format", "json"), "[]\n")
    assert_ok(as_sana("org", "tree"), "(none)\n")
    assert_error(as_sana("org", "tree", "--client", "ACME"), 3, "no client 'ACME'; see `nocctl org list`")


def test_capabilities_other_than_view_give_no_visibility(org_cli):
    for capability in ("noc:ack_alerts", "noc:configure", "noc:export"):
        assert org_cli("user", "grant", "sana.khan", capability).exit_code == 0
    assert_ok(org_cli("--as", "sana.khan", "org", "list"), "(none)\n")


def test_revoking_view_takes_visibility_away(org_cli):
    assert org_cli("user", "grant", "asha.rao", "noc:view_client", "--client", "ACME").exit_code == 0
    assert codes(lambda *a: org_cli("--as", "asha.rao", *a)) == EXAMPLE_ACME
    assert org_cli("user", "revoke", "asha.rao", "noc:view_client", "--client", "ACME").exit_code == 0
    assert codes(lambda *a: org_cli("--as", "asha.rao", *a)) == []


@pytest.mark.parametrize("args", [("org", "list"), ("org", "tree"), ("org", "import", ORG_JSON)])
def test_org_commands_as_a_login_that_is_no_person(org_cli, args):
    assert_error(org_cli("--as", "nobody", *args), 77,
                 "'nobody' is not a NOC operator of tenant 'default'; an admin can run "
                 "`nocctl user add nobody` and `nocctl user grant nobody CAPABILITY`")
