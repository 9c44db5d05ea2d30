"""`nocctl user add/list/show/grant/revoke` through the command line, on the backend under
test."""
from __future__ import annotations

import json

import pytest

from nocctl.services.rbac import os_login
from nocctl.vocabulary import CAPABILITIES

LOGIN = os_login()


def assert_error(result, code: int, message: str) -> None:
    """A failure: nothing on stdout, exactly one `nocctl: error:` line on stderr."""
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", f"nocctl: error: {message}\n")


def assert_ok(result, stdout: str, stderr: str = "") -> None:
    assert (result.exit_code, result.stderr, result.stdout) == (0, stderr, stdout)


def grants(cli, username: str) -> list[dict]:
    result = cli("user", "show", username, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["grants"]


ORG = {
    "people": [{"username": "asha", "name": "Asha Rao", "email": "asha@example.com", "phone": "+91-1"},
               {"username": "bob"}],
    "clients": [{"code": "ACME", "name": "Acme"}, {"code": "GLOBEX", "name": "Globex"}],
    "sites": [{"code": "ACME-1", "client": "ACME", "name": "Acme One"},
              {"code": "ACME-2", "client": "ACME", "name": "Acme Two"},
              {"code": "GLOBEX-1", "client": "GLOBEX", "name": "Globex One"}],
}


@pytest.fixture
def org_cli(cli, monkeypatch):
    """Tenant admin `admin` (acting, through NOC_ACTOR: the login, also an admin, holds
    noc:impersonate), clients ACME (sites ACME-1, ACME-2) and GLOBEX (site GLOBEX-1),
    people asha and bob (no grants)."""
    assert cli("init").exit_code == 0
    assert cli("init", "--admin", "admin").exit_code == 0
    monkeypatch.setenv("NOC_ACTOR", "admin")
    result = cli("org", "import", "-", input=json.dumps(ORG))
    assert result.exit_code == 0, result.stderr
    return cli


NOBODY = ("'nobody' is not a NOC operator of tenant 'default'; an admin can run "
          "`nocctl user add nobody` and `nocctl user grant nobody CAPABILITY`")


# ---------------------------------------------------------------- user add


def test_add_prints_the_username(admin_cli):
    assert_ok(admin_cli("user", "add", "asha", "--name", "Asha Rao", "--email", "asha@example.com",
                        "--phone", "+91-98450-11001"), "asha\n")
    assert json.loads(admin_cli("user", "show", "asha", "--format", "json").stdout) == {
        "username": "asha", "name": "Asha Rao", "email": "asha@example.com", "phone": "+91-98450-11001",
        "active": True, "grants": [],
    }


def test_add_json_prints_the_person(admin_cli):
    result = admin_cli("user", "add", "bob", "--email", "bob@example.com", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "username": "bob", "name": None, "email": "bob@example.com", "phone": None, "active": True, "grants": [],
    }


def test_add_refuses_a_duplicate(admin_cli):
    assert admin_cli("user", "add", "asha", "--name", "Asha").exit_code == 0
    assert_error(admin_cli("user", "add", "asha", "--name", "Other"), 4,
                 "person 'asha' already exists; use `nocctl org import` to update people")
    assert json.loads(admin_cli("user", "show", "asha", "--format", "json").stdout)["name"] == "Asha"


def test_add_refuses_the_admin_login_again(admin_cli):
    assert_error(admin_cli("user", "add", LOGIN), 4,
                 f"person {LOGIN!r} already exists; use `nocctl org import` to update people")


@pytest.mark.parametrize("username", ["bad name", "a/b", "x" * 101, "ünï"])
def test_add_refuses_an_invalid_username(admin_cli, username):
    assert_error(admin_cli("user", "add", username), 65,
                 f"invalid username {username!r}; use letters, digits and . _ @ -")
    assert admin_cli("user", "list", "--format", "csv").stdout.splitlines()[1:] == [f"{LOGIN},{LOGIN},,,True"]


def test_add_refuses_an_invalid_email(admin_cli):
    assert_error(admin_cli("user", "add", "asha", "--email", "not-an-email"), 65, "invalid email 'not-an-email'")
    assert_error(admin_cli("user", "show", "asha"), 3, "no person 'asha'; see `nocctl user list`")


def test_add_needs_a_username(admin_cli):
    result = admin_cli("user", "add")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("nocctl: error: Missing argument 'USERNAME'.")
    assert result.stderr.count("\n") == 1


def test_add_without_configure_is_denied(org_cli):
    assert org_cli("user", "grant", "asha", "noc:view").exit_code == 0
    assert_error(org_cli("--as", "asha", "user", "add", "carol"), 77,
                 "'asha' lacks noc:configure tenant-wide; an admin can run `nocctl user grant asha noc:configure`")
    assert_error(org_cli("user", "show", "carol"), 3, "no person 'carol'; see `nocctl user list`")


def test_add_as_a_login_that_is_no_person(admin_cli):
    assert_error(admin_cli("--as", "nobody", "user", "add", "carol"), 77, NOBODY)


def test_add_before_init_says_to_run_init(cli):
    assert_error(cli("user", "add", "asha"), 3,
                 "tenant 'default' does not exist; run `nocctl --tenant default init` to create it")


# ---------------------------------------------------------------- user list


def test_list_table(org_cli):
    result = org_cli("user", "list")
    assert (result.exit_code, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["username", "name", "email", "phone", "active"]
    assert set(lines[1]) == {"-", " "}
    # The login is a person too (the admin who impersonates `admin`): its width varies.
    assert [line.split() for line in lines[2:]] == sorted([
        ["admin", "admin", "True"], ["asha", "Asha", "Rao", "asha@example.com", "+91-1", "True"], ["bob", "True"],
        [LOGIN, LOGIN, "True"]])


def test_list_json_ndjson_csv(org_cli):
    people = json.loads(org_cli("user", "list", "--format", "json").stdout)
    by_name = {p["username"]: p for p in people}
    assert [p["username"] for p in people] == sorted(["admin", "asha", "bob", LOGIN])
    assert by_name["asha"] == {"username": "asha", "name": "Asha Rao", "email": "asha@example.com",
                               "phone": "+91-1", "active": True}
    assert by_name["bob"] == {"username": "bob", "name": None, "email": None, "phone": None, "active": True}
    assert_ok(org_cli("user", "list", "--format", "ndjson"),
              "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in people))
    csv_lines = org_cli("user", "list", "--format", "csv").stdout.splitlines()
    assert csv_lines[0] == "username,name,email,phone,active"
    assert "asha,Asha Rao,asha@example.com,'+91-1,True" in csv_lines
    assert "bob,,,,True" in csv_lines


def test_list_to_a_file(org_cli, tmp_path):
    target = tmp_path / "people.csv"
    assert_ok(org_cli("user", "list", "--format", "csv", "-o", str(target)), "")
    assert target.read_text() == org_cli("user", "list", "--format", "csv").stdout


def test_list_shows_a_person_without_grants_only_themselves(org_cli):
    # bob holds no grant at all: a person of the tenant, who sees nobody but himself
    result = org_cli("--as", "bob", "user", "list", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert [p["username"] for p in json.loads(result.stdout)] == ["bob"]
    assert_error(org_cli("--as", "bob", "user", "show", "asha"), 3, "no person 'asha'; see `nocctl user list`")


def test_list_as_a_login_that_is_no_person(org_cli):
    assert_error(org_cli("--as", "nobody", "user", "list"), 77, NOBODY)
    assert_error(org_cli("user", "list", env={"NOC_ACTOR": "nobody"}), 77, NOBODY)


# ---------------------------------------------------------------- user show


def test_show_table_with_grants(org_cli):
    assert org_cli("user", "grant", "asha", "noc:view_client", "--client", "ACME").exit_code == 0
    assert org_cli("user", "grant", "asha", "noc:ack_alerts").exit_code == 0
    assert org_cli("user", "grant", "asha", "noc:view_assigned_sites", "--site", "GLOBEX-1").exit_code == 0
    assert_ok(org_cli("user", "show", "asha"),
              "username  asha\n"
              "name      Asha Rao\n"
              "email     asha@example.com\n"
              "phone     +91-1\n"
              "active    True\n"
              "\n"
              "capability               scope    unit\n"
              "-----------------------  -------  --------\n"
              "noc:ack_alerts           tenant\n"
              "noc:view_assigned_sites  site     GLOBEX-1\n"
              "noc:view_client          client   ACME\n")


def test_show_without_grants(org_cli):
    assert_ok(org_cli("user", "show", "bob"),
              "username  bob\nname\nemail\nphone\nactive    True\n\n(none)\n")


def test_show_json_of_the_admin(admin_cli):
    result = admin_cli("user", "show", LOGIN, "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["username"] == LOGIN and data["active"] is True
    assert data["grants"] == [{"capability": c, "scope": "tenant", "unit": None} for c in sorted(CAPABILITIES)]


def test_show_of_an_unknown_person(admin_cli):
    assert_error(admin_cli("user", "show", "ghost"), 3, "no person 'ghost'; see `nocctl user list`")


def test_show_as_a_login_that_is_no_person(admin_cli):
    assert_error(admin_cli("--as", "nobody", "user", "show", LOGIN), 77, NOBODY)


# ---------------------------------------------------------------- user grant


def test_grant_tenant_wide(org_cli):
    assert_ok(org_cli("user", "grant", "asha", "noc:view"), "granted noc:view to asha (tenant-wide)\n")
    assert grants(org_cli, "asha") == [{"capability": "noc:view", "scope": "tenant", "unit": None}]


def test_grant_for_a_client(org_cli):
    assert_ok(org_cli("user", "grant", "asha", "noc:view_client", "--client", "ACME"),
              "granted noc:view_client to asha (client ACME)\n")
    assert grants(org_cli, "asha") == [{"capability": "noc:view_client", "scope": "client", "unit": "ACME"}]


def test_grant_for_a_site(org_cli):
    assert_ok(org_cli("user", "grant", "asha", "noc:view_assigned_sites", "--site", "ACME-2"),
              "granted noc:view_assigned_sites to asha (site ACME-2)\n")
    assert grants(org_cli, "asha") == [{"capability": "noc:view_assigned_sites", "scope": "site", "unit": "ACME-2"}]


def test_grant_the_same_capability_on_two_scopes(org_cli):
    assert org_cli("user", "grant", "asha", "noc:ack_alerts", "--client", "ACME").exit_code == 0
    assert org_cli("user", "grant", "asha", "noc:ack_alerts", "--client", "GLOBEX").exit_code == 0
    assert org_cli("user", "grant", "asha", "noc:ack_alerts").exit_code == 0
    assert grants(org_cli, "asha") == [
        {"capability": "noc:ack_alerts", "scope": "client", "unit": "ACME"},
        {"capability": "noc:ack_alerts", "scope": "client", "unit": "GLOBEX"},
        {"capability": "noc:ack_alerts", "scope": "tenant", "unit": None},
    ]


def test_grant_twice_changes_nothing_and_says_so(org_cli):
    assert org_cli("user", "grant", "asha", "noc:view_client", "--client", "ACME").exit_code == 0
    assert_ok(org_cli("user", "grant", "asha", "noc:view_client", "--client", "ACME"), "",
              "asha already holds noc:view_client (client ACME); nothing changed\n")
    assert org_cli("user", "grant", "asha", "noc:view").exit_code == 0
    assert_ok(org_cli("user", "grant", "asha", "noc:view"), "",
              "asha already holds noc:view (tenant-wide); nothing changed\n")
    assert len(grants(org_cli, "asha")) == 2


def test_grant_of_an_unknown_capability(org_cli):
    assert_error(org_cli("user", "grant", "asha", "noc:bogus"), 65,
                 "unknown capability 'noc:bogus'; one of: " + ", ".join(CAPABILITIES))
    assert grants(org_cli, "asha") == []


def test_grant_help_lists_the_capabilities(admin_cli):
    result = admin_cli("user", "grant", "--help")
    assert result.exit_code == 0
    flat = " ".join(result.stdout.split())
    assert "CAPABILITY is one of: " + ", ".join(CAPABILITIES) + "." in flat


def test_grant_to_an_unknown_person(org_cli):
    assert_error(org_cli("user", "grant", "ghost", "noc:view"), 3, "no person 'ghost'; see `nocctl user list`")


def test_grant_on_an_unknown_client_or_site(org_cli):
    assert_error(org_cli("user", "grant", "asha", "noc:view_client", "--client", "NOPE"), 3,
                 "no client 'NOPE'; see `nocctl org list`")
    assert_error(org_cli("user", "grant", "asha", "noc:view_assigned_sites", "--site", "NOPE"), 3,
                 "no site 'NOPE'; see `nocctl org list`")
    # a site is not a client, and a client is not a site
    assert_error(org_cli("user", "grant", "asha", "noc:view_client", "--client", "ACME-1"), 3,
                 "no client 'ACME-1'; see `nocctl org list`")
    assert_error(org_cli("user", "grant", "asha", "noc:view_assigned_sites", "--site", "ACME"), 3,
                 "no site 'ACME'; see `nocctl org list`")
    assert grants(org_cli, "asha") == []


def test_grant_with_client_and_site_is_a_usage_error(org_cli):
    assert_error(org_cli("user", "grant", "asha", "noc:view", "--client", "ACME", "--site", "ACME-1"), 2,
                 "give --client or --site, not both")
    assert grants(org_cli, "asha") == []


def test_grant_of_view_all_clients_is_tenant_wide_only(org_cli):
    assert_error(org_cli("user", "grant", "asha", "noc:view_all_clients", "--client", "ACME"), 65,
                 "noc:view_all_clients is tenant-wide; grant noc:view_client --client CODE to scope visibility")
    assert grants(org_cli, "asha") == []


def test_grant_needs_username_and_capability(org_cli):
    result = org_cli("user", "grant", "asha")
    assert result.exit_code == 2
    assert result.stderr.startswith("nocctl: error: Missing argument 'CAPABILITY'.")
    assert result.stderr.count("\n") == 1


def test_grant_without_configure_is_denied(org_cli):
    assert org_cli("user", "grant", "asha", "noc:view").exit_code == 0
    assert_error(org_cli("--as", "asha", "user", "grant", "asha", "noc:configure"), 77,
                 "'asha' lacks noc:configure tenant-wide; an admin can run `nocctl user grant asha noc:configure`")
    assert_error(org_cli("--as", "asha", "user", "grant", "bob", "noc:view_client", "--client", "ACME"), 77,
                 "'asha' lacks noc:configure for ACME; an admin can run `nocctl user grant asha noc:configure`")
    assert grants(org_cli, "bob") == []


def test_grant_by_a_client_configurer_stays_within_the_client(org_cli):
    assert org_cli("user", "grant", "asha", "noc:configure", "--client", "ACME").exit_code == 0
    as_asha = lambda *args: org_cli("--as", "asha", *args)  # noqa: E731
    assert_ok(as_asha("user", "grant", "bob", "noc:view_client", "--client", "ACME"),
              "granted noc:view_client to bob (client ACME)\n")
    assert_ok(as_asha("user", "grant", "bob", "noc:view_assigned_sites", "--site", "ACME-1"),
              "granted noc:view_assigned_sites to bob (site ACME-1)\n")
    # GLOBEX is hidden from asha (she neither sees nor configures it): not found, never 77
    assert as_asha("user", "grant", "bob", "noc:view_client", "--client", "GLOBEX").exit_code == 3
    assert as_asha("user", "grant", "bob", "noc:view_assigned_sites", "--site", "GLOBEX-1").exit_code == 3
    assert as_asha("user", "grant", "bob", "noc:view").exit_code == 77
    assert as_asha("user", "revoke", "bob", "noc:view_client", "--client", "ACME").exit_code == 0
    assert grants(org_cli, "bob") == [{"capability": "noc:view_assigned_sites", "scope": "site", "unit": "ACME-1"}]


def test_grant_as_a_login_that_is_no_person(org_cli):
    assert_error(org_cli("--as", "nobody", "user", "grant", "asha", "noc:view"), 77, NOBODY)
    assert grants(org_cli, "asha") == []


def test_a_granted_capability_takes_effect(org_cli):
    assert org_cli("--as", "bob", "org", "client", "add", "NEW", "--name", "New").exit_code == 77
    assert org_cli("user", "grant", "bob", "noc:configure").exit_code == 0
    assert_ok(org_cli("--as", "bob", "org", "client", "add", "NEW", "--name", "New"), "NEW\n")


# ---------------------------------------------------------------- user revoke


def test_revoke_takes_the_grant_away(org_cli):
    assert org_cli("user", "grant", "asha", "noc:view_client", "--client", "ACME").exit_code == 0
    assert org_cli("user", "grant", "asha", "noc:view").exit_code == 0
    assert_ok(org_cli("user", "revoke", "asha", "noc:view_client", "--client", "ACME"),
              "revoked noc:view_client from asha (client ACME)\n")
    assert grants(org_cli, "asha") == [{"capability": "noc:view", "scope": "tenant", "unit": None}]
    assert_ok(org_cli("user", "revoke", "asha", "noc:view"), "revoked noc:view from asha (tenant-wide)\n")
    assert grants(org_cli, "asha") == []


def test_revoke_of_a_site_grant(org_cli):
    assert org_cli("user", "grant", "asha", "noc:view_assigned_sites", "--site", "ACME-1").exit_code == 0
    assert_ok(org_cli("user", "revoke", "asha", "noc:view_assigned_sites", "--site", "ACME-1"),
              "revoked noc:view_assigned_sites from asha (site ACME-1)\n")
    assert grants(org_cli, "asha") == []


def test_revoke_needs_the_scope_it_was_granted_with(org_cli):
    assert org_cli("user", "grant", "asha", "noc:view_client", "--client", "ACME").exit_code == 0
    assert_error(org_cli("user", "revoke", "asha", "noc:view_client"), 3,
                 "'asha' does not hold noc:view_client tenant-wide; see `nocctl user show asha`")
    assert_error(org_cli("user", "revoke", "asha", "noc:view_client", "--client", "GLOBEX"), 3,
                 "'asha' does not hold noc:view_client on client GLOBEX; see `nocctl user show asha`")
    assert grants(org_cli, "asha") == [{"capability": "noc:view_client", "scope": "client", "unit": "ACME"}]


def test_revoke_twice(org_cli):
    assert org_cli("user", "grant", "asha", "noc:export").exit_code == 0
    assert org_cli("user", "revoke", "asha", "noc:export").exit_code == 0
    assert_error(org_cli("user", "revoke", "asha", "noc:export"), 3,
                 "'asha' does not hold noc:export tenant-wide; see `nocctl user show asha`")


def test_revoke_errors(org_cli):
    assert_error(org_cli("user", "revoke", "asha", "noc:bogus"), 65,
                 "unknown capability 'noc:bogus'; one of: " + ", ".join(CAPABILITIES))
    assert_error(org_cli("user", "revoke", "ghost", "noc:view"), 3, "no person 'ghost'; see `nocctl user list`")
    assert_error(org_cli("user", "revoke", "asha", "noc:view", "--site", "NOPE"), 3,
                 "no site 'NOPE'; see `nocctl org list`")
    assert_error(org_cli("user", "revoke", "asha", "noc:view", "--client", "ACME", "--site", "ACME-1"), 2,
                 "give --client or --site, not both")


def test_revoke_without_configure_is_denied(org_cli):
    assert org_cli("user", "grant", "bob", "noc:view").exit_code == 0
    assert_error(org_cli("--as", "asha", "user", "revoke", "bob", "noc:view"), 77,
                 "'asha' lacks noc:configure tenant-wide; an admin can run `nocctl user grant asha noc:configure`")
    assert grants(org_cli, "bob") == [{"capability": "noc:view", "scope": "tenant", "unit": None}]


def test_revoking_configure_from_yourself_locks_you_out(admin_cli):
    assert admin_cli("user", "revoke", LOGIN, "noc:configure").exit_code == 0
    assert_error(admin_cli("user", "add", "carol"), 77,
                 f"{LOGIN!r} lacks noc:configure tenant-wide; an admin can run "
                 f"`nocctl user grant {LOGIN} noc:configure`")
    # init puts back what the admin is missing
    result = admin_cli("init")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == f"admin     {LOGIN} (1 capability granted)"
    assert_ok(admin_cli("user", "add", "carol"), "carol\n")
