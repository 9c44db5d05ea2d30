"""Input files that name a shipped example (`examples/org.json`) work from any directory:
read from the copy inside nocctl when the path does not exist here, with a line on stderr;
any other missing file is the usual not-found error. (The installed wheel: test_packaging.)"""
from __future__ import annotations

import json

import pytest

from nocctl.resources import examples_dir, shipped_example


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A working directory outside the checkout, with no examples/ in it."""
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return workdir


def test_org_import_of_a_shipped_example_from_another_directory(admin_cli, elsewhere):
    result = admin_cli("org", "import", "examples/org.json", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["created"] == {"person": 9, "client": 3, "site": 12}
    shipped = examples_dir() / "org.json"
    assert result.stderr == (f"nocctl: examples/org.json is not in {elsewhere}: reading the example shipped with "
                             f"nocctl, {shipped}\n")
    again = admin_cli("org", "import", "./examples/org.csv", "--json")  # ./ and the CSV one too
    assert again.exit_code == 0, again.stderr
    assert "reading the example shipped with nocctl" in again.stderr


def test_ingest_of_shipped_alerts_and_feeds(admin_cli, elsewhere):
    assert admin_cli("org", "import", "examples/org.json").exit_code == 0
    alerts = admin_cli("ingest", "examples/alerts.ndjson", "--json", env={"NOC_NOW": "2026-03-02T12:00:00+05:30"})
    assert alerts.exit_code == 65, alerts.stderr  # the example has one bad record on purpose (README)
    assert json.loads(alerts.stdout)["received"] > 0
    assert "examples/alerts.ndjson is not in" in alerts.stderr
    feeds = admin_cli("ingest", "--kind", "ticket", "examples/feeds/tickets.ndjson", "--json",
                      env={"NOC_NOW": "2026-03-02T12:00:00+05:30"})
    assert feeds.exit_code == 0, feeds.stderr
    assert json.loads(feeds.stdout)["inserted"] > 0
    assert "examples/feeds/tickets.ndjson is not in" in feeds.stderr


@pytest.mark.parametrize("name", ["examples/nope.json", "other/org.json", "org.json", "examples/../examples/org.json"])
def test_anything_else_missing_is_not_found(admin_cli, elsewhere, name):
    result = admin_cli("org", "import", name)
    assert result.exit_code == 3
    assert result.stderr == f"nocctl: error: no such file: {name}\n"


def test_a_missing_ingest_file_is_not_found(admin_cli, elsewhere):
    result = admin_cli("ingest", "examples/nope.ndjson")
    assert result.exit_code == 3
    assert "cannot open examples/nope.ndjson" in result.stderr
    assert "shipped" not in result.stderr


def test_a_local_file_of_that_name_wins(admin_cli, elsewhere):
    (elsewhere / "examples").mkdir()
    (elsewhere / "examples" / "org.json").write_text(json.dumps({"clients": [{"code": "LOCAL", "name": "Local"}]}))
    result = admin_cli("org", "import", "examples/org.json", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["created"] == {"person": 0, "client": 1, "site": 0}
    assert result.stderr == ""


def test_shipped_example_names():
    assert shipped_example("examples/org.json") == examples_dir() / "org.json"
    assert shipped_example("examples/feeds/devices.ndjson") == examples_dir() / "feeds" / "devices.ndjson"
    for name in ("/examples/org.json", "examples", "examples/feeds", "examples/../pyproject.toml", "org.json",
                 "examples/missing.json"):
        assert shipped_example(name) is None, name
