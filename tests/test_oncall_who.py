"""`nocctl oncall who` (issue 16): who is on call, until when, who is next, and from which
schedule or override — each said once — in text and JSON, with a rotation and with
overrides, against the backend under test; and the hand-over maths itself."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from ingest_helpers import ORG
from nocctl.services.oncall import Pick, next_change

NOW = "2026-03-07T12:00:00Z"
START = "2026-03-02T09:00:00Z"
MEMBERS = ("asha.rao", "vikram.nair", "meera.iyer")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@pytest.fixture
def noc(admin_cli, monkeypatch):
    monkeypatch.setenv("NOC_NOW", NOW)
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    return admin_cli


def schedule(noc, name="ops", members=MEMBERS, *extra: str) -> None:
    args = [a for m in members for a in ("--member", m)]
    result = noc("oncall", "schedule", "add", name, *args, "--start", START, "--turn", "1d", *extra)
    assert result.exit_code == 0, result.stderr


def override(noc, user: str, start: str, end: str, name="ops") -> int:
    result = noc("oncall", "override", "add", name, user, "--start", start, "--end", end)
    assert result.exit_code == 0, result.stderr
    return int(result.stdout)


def who_text(noc, when: str, *extra: str) -> str:
    result = noc("oncall", "who", "--at", when, *extra)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def who_json(noc, when: str, *extra: str) -> dict:
    result = noc("oncall", "who", "--at", when, "--format", "json", *extra)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_with_a_rotation_who_until_and_next(noc):
    schedule(noc)
    assert who_text(noc, "2026-03-03T10:00:00Z") == (
        "vikram.nair is on call until 2026-03-04T09:00:00Z (schedule ops, turn 2); next: meera.iyer (turn 3)\n")
    data = who_json(noc, "2026-03-03T10:00:00Z")
    assert (data["person"], data["schedule"], data["source"], data["until"]) == (
        "vikram.nair", "ops", "turn 2", "2026-03-04T09:00:00Z")
    assert data["next"] == {"person": "meera.iyer", "name": data["next"]["name"], "from": "2026-03-04T09:00:00Z",
                            "source": "turn 3", "override_id": None, "turn": 3}
    # the last member hands back to the first; the default instant is the clock's now
    assert who_text(noc, "now") == (
        "meera.iyer is on call until 2026-03-08T09:00:00Z (schedule ops, turn 6); next: asha.rao (turn 7)\n")
    assert who_text(noc, "2026-03-01T00:00:00Z") == (  # before the start: the first member, through turn 1
        "asha.rao is on call until 2026-03-03T09:00:00Z (schedule ops, before the first turn); "
        "next: vikram.nair (turn 2)\n")


def test_with_an_override_who_until_and_next(noc):
    schedule(noc)
    lead = override(noc, "noc.lead", "2026-03-03T12:00:00Z", "2026-03-03T18:00:00Z")
    assert who_text(noc, "2026-03-03T10:00:00Z") == (  # the override cuts the turn short
        "vikram.nair is on call until 2026-03-03T12:00:00Z (schedule ops, turn 2); "
        f"next: noc.lead (override #{lead})\n")
    assert who_text(noc, "2026-03-03T13:00:00Z") == (
        f"noc.lead is on call until 2026-03-03T18:00:00Z (schedule ops, override #{lead}); "
        "next: vikram.nair (turn 2)\n")
    data = who_json(noc, "2026-03-03T13:00:00Z")
    assert (data["override_id"], data["source"], data["until"], data["next"]["from"], data["next"]["person"]) == (
        lead, f"override #{lead}", "2026-03-03T18:00:00Z", "2026-03-03T18:00:00Z", "vikram.nair")


def test_one_persons_turn_and_override_are_one_shift(noc):
    schedule(noc)
    override(noc, "vikram.nair", "2026-03-04T09:00:00Z", "2026-03-04T15:00:00Z")  # stays on after the turn
    assert who_text(noc, "2026-03-03T10:00:00Z") == (
        "vikram.nair is on call until 2026-03-04T15:00:00Z (schedule ops, turn 2); next: meera.iyer (turn 3)\n")


def test_a_lone_member_has_nobody_after(noc):
    schedule(noc, "solo", ("asha.rao",))
    assert who_text(noc, "2026-03-03T10:00:00Z") == (
        "asha.rao is on call (schedule solo, turn 2); nobody else is scheduled\n")
    data = who_json(noc, "2026-03-03T10:00:00Z")
    assert (data["until"], data["next"]) == (None, None)


def test_a_client_schedule_is_named_once(noc):
    schedule(noc, "acme", ("sana.khan", "priya.sharma"), "--client", "ACME")
    assert who_text(noc, "2026-03-02T21:00:00Z", "--client", "ACME") == (
        "sana.khan is on call until 2026-03-03T09:00:00Z (schedule acme, turn 1); next: priya.sharma (turn 2)\n")


def test_next_change_skips_hand_overs_to_the_same_person():
    rota = SimpleNamespace(starts_at=at(START), turn_seconds=86400)
    assert next_change(rota, [10, 10, 20], [], at("2026-03-02T10:00:00Z")) == (
        at("2026-03-04T09:00:00Z"), Pick(20, turn=3))
    assert next_change(rota, [10], [], at("2026-03-02T10:00:00Z")) is None
    cover = SimpleNamespace(id=5, person_id=30, starts_at=at("2026-03-02T12:00:00Z"),
                            ends_at=at("2026-03-02T13:00:00Z"))
    assert next_change(rota, [10], [cover], at("2026-03-02T10:00:00Z")) == (
        at("2026-03-02T12:00:00Z"), Pick(30, override_id=5))
    assert next_change(rota, [10], [cover], at("2026-03-02T12:30:00Z")) == (
        at("2026-03-02T13:00:00Z"), Pick(10, turn=1))
