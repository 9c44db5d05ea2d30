"""The occurrence maths of maintenance windows (DESIGN §3), without a database: one-off,
daily and weekly windows, occurrences that cross midnight, the inclusive `--until` date in the
window's zone, zones other than UTC (and a daylight-saving change), ending early, the next
occurrence and the state, and which window covers which alert (scope and type lists)."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from nocctl.errors import BadInput
from nocctl.services.maintenance import NewWindow, Rulebook, WindowRule, parse_weekdays, type_names, validate


def at(text: str) -> datetime:
    """An instant from ISO text with an offset, as UTC."""
    return datetime.fromisoformat(text).astimezone(UTC)


def rule(start: str, end: str, recurrence: str = "NONE", weekdays: str = "", until: str | None = None,
         zone: str = "UTC", ended_at: str | None = None, id: int = 1, scope: str = "SITE", client_id: int = 10,
         site_id: int | None = 100, types: tuple[str, ...] = ()) -> WindowRule:
    days = frozenset(("mon", "tue", "wed", "thu", "fri", "sat", "sun").index(d) for d in weekdays.split(",") if d)
    return WindowRule(id, scope, client_id if scope != "TENANT" else None, site_id if scope == "SITE" else None,
                      not types, frozenset(types), at(start), at(end), recurrence, days,
                      date.fromisoformat(until) if until else None, ZoneInfo(zone), at(ended_at) if ended_at else None)


def covered(r: WindowRule, instant: str) -> tuple[str, str] | None:
    found = r.occurrence_at(at(instant))
    return None if found is None else (found[0].isoformat(), found[1].isoformat())


# ---------------------------------------------------------------- one-off windows

def test_one_off_window_is_start_inclusive_end_exclusive():
    r = rule("2026-03-01T09:00:00+00:00", "2026-03-01T11:00:00+00:00")
    assert covered(r, "2026-03-01T08:59:59+00:00") is None
    assert covered(r, "2026-03-01T09:00:00+00:00") == ("2026-03-01T09:00:00+00:00", "2026-03-01T11:00:00+00:00")
    assert covered(r, "2026-03-01T10:59:59+00:00") is not None
    assert covered(r, "2026-03-01T11:00:00+00:00") is None
    assert covered(r, "2026-03-02T10:00:00+00:00") is None  # no recurrence


def test_one_off_window_given_with_an_offset_is_the_same_instants():
    r = rule("2026-03-07T22:00:00+05:30", "2026-03-08T02:00:00+05:30")
    assert covered(r, "2026-03-07T16:29:59Z") is None
    assert covered(r, "2026-03-07T16:30:00Z") == ("2026-03-07T16:30:00+00:00", "2026-03-07T20:30:00+00:00")
    assert covered(r, "2026-03-07T20:30:00Z") is None


# ---------------------------------------------------------------- daily

def test_daily_window_repeats_each_day_and_not_in_between():
    r = rule("2026-03-01T02:00:00+00:00", "2026-03-01T04:00:00+00:00", "DAILY", until="2026-03-31")
    assert covered(r, "2026-03-05T03:00:00+00:00") == ("2026-03-05T02:00:00+00:00", "2026-03-05T04:00:00+00:00")
    assert covered(r, "2026-03-05T04:00:00+00:00") is None
    assert covered(r, "2026-03-05T12:00:00+00:00") is None
    assert covered(r, "2026-03-05T01:59:59+00:00") is None
    assert covered(r, "2026-02-28T03:00:00+00:00") is None  # before the first occurrence


def test_daily_window_crossing_midnight():
    r = rule("2026-03-01T22:00:00+00:00", "2026-03-02T02:00:00+00:00", "DAILY", until="2026-03-10")
    # 01:00 on the 5th belongs to the occurrence that started on the 4th
    assert covered(r, "2026-03-05T01:00:00+00:00") == ("2026-03-04T22:00:00+00:00", "2026-03-05T02:00:00+00:00")
    assert covered(r, "2026-03-05T23:00:00+00:00") == ("2026-03-05T22:00:00+00:00", "2026-03-06T02:00:00+00:00")
    assert covered(r, "2026-03-05T02:00:00+00:00") is None
    # 01:00 on the first day is before the first occurrence (which starts at 22:00)
    assert covered(r, "2026-03-01T01:00:00+00:00") is None


def test_until_is_the_last_day_an_occurrence_starts_inclusive():
    r = rule("2026-03-01T22:00:00+00:00", "2026-03-02T02:00:00+00:00", "DAILY", until="2026-03-10")
    assert covered(r, "2026-03-10T23:00:00+00:00") is not None
    # the occurrence that started on the until day runs past midnight to its end
    assert covered(r, "2026-03-11T01:30:00+00:00") == ("2026-03-10T22:00:00+00:00", "2026-03-11T02:00:00+00:00")
    assert covered(r, "2026-03-11T22:30:00+00:00") is None
    assert covered(r, "2026-03-12T01:00:00+00:00") is None


# ---------------------------------------------------------------- weekly

def test_weekly_on_chosen_weekdays():
    # 2026-03-07 is a Saturday
    r = rule("2026-03-07T01:00:00+00:00", "2026-03-07T05:00:00+00:00", "WEEKLY", "sat,sun", until="2026-04-30")
    assert covered(r, "2026-03-08T02:00:00+00:00") == ("2026-03-08T01:00:00+00:00", "2026-03-08T05:00:00+00:00")
    assert covered(r, "2026-03-14T04:59:00+00:00") is not None  # the next Saturday
    assert covered(r, "2026-03-09T02:00:00+00:00") is None  # Monday
    assert covered(r, "2026-03-13T02:00:00+00:00") is None  # Friday


def test_weekly_without_weekdays_uses_the_start_weekday():
    # 2026-03-04 is a Wednesday
    r = rule("2026-03-04T10:00:00+00:00", "2026-03-04T11:00:00+00:00", "WEEKLY", until="2026-12-31")
    assert covered(r, "2026-03-11T10:30:00+00:00") is not None
    assert covered(r, "2026-03-12T10:30:00+00:00") is None


def test_weekly_window_crossing_midnight_belongs_to_its_start_day():
    # Sunday 23:00 to Monday 01:00
    r = rule("2026-03-08T23:00:00+00:00", "2026-03-09T01:00:00+00:00", "WEEKLY", "sun", until="2026-03-31")
    assert covered(r, "2026-03-16T00:30:00+00:00") == ("2026-03-15T23:00:00+00:00", "2026-03-16T01:00:00+00:00")
    assert covered(r, "2026-03-17T00:30:00+00:00") is None  # a Tuesday: Monday's 23:00 is no occurrence


def test_weekly_weekdays_that_never_occur_before_until_are_refused():
    with pytest.raises(BadInput, match="never occurs"):
        validate(NewWindow("site", "S", at("2026-03-02T10:00:00+00:00"), at("2026-03-02T11:00:00+00:00"), "r",
                             True, (), "weekly", ("sat",), date(2026, 3, 6)))


# ---------------------------------------------------------------- time zones

def test_recurrence_follows_the_wall_clock_of_its_zone():
    # 02:00-04:00 in Kolkata (+05:30) is 20:30-22:30 UTC of the previous UTC day
    r = rule("2026-03-02T02:00:00+05:30", "2026-03-02T04:00:00+05:30", "DAILY", until="2026-03-10",
             zone="Asia/Kolkata")
    assert covered(r, "2026-03-05T21:00:00Z") == ("2026-03-05T20:30:00+00:00", "2026-03-05T22:30:00+00:00")
    assert covered(r, "2026-03-05T20:29:00Z") is None


def test_until_is_a_date_in_the_window_zone():
    r = rule("2026-03-02T02:00:00+05:30", "2026-03-02T04:00:00+05:30", "DAILY", until="2026-03-10",
             zone="Asia/Kolkata")
    # the occurrence of 10 March (local) starts at 20:30 UTC on 9 March: covered
    assert covered(r, "2026-03-09T21:00:00Z") is not None
    # 11 March local starts at 20:30 UTC on 10 March: past --until although its UTC date is the 10th
    assert covered(r, "2026-03-10T21:00:00Z") is None


def test_weekdays_are_days_of_the_window_zone():
    # Monday 02:00 in Kolkata is Sunday 20:30 UTC
    r = rule("2026-03-02T02:00:00+05:30", "2026-03-02T03:00:00+05:30", "WEEKLY", "mon", until="2026-03-31",
             zone="Asia/Kolkata")
    assert covered(r, "2026-03-08T20:45:00Z") is not None  # Sunday in UTC, Monday in Kolkata
    assert covered(r, "2026-03-09T20:45:00Z") is None  # Monday in UTC, Tuesday in Kolkata


def test_the_same_local_hour_across_a_daylight_saving_change():
    # 09:00-10:00 New York daily: 14:00 UTC in winter (EST), 13:00 UTC after 8 March (EDT)
    r = rule("2026-03-02T09:00:00-05:00", "2026-03-02T10:00:00-05:00", "DAILY", until="2026-03-31",
             zone="America/New_York")
    assert covered(r, "2026-03-06T14:30:00Z") is not None
    assert covered(r, "2026-03-10T13:30:00Z") == ("2026-03-10T13:00:00+00:00", "2026-03-10T14:00:00+00:00")
    assert covered(r, "2026-03-10T14:30:00Z") is None
    # the same window kept in UTC does not move
    fixed = rule("2026-03-02T09:00:00-05:00", "2026-03-02T10:00:00-05:00", "DAILY", until="2026-03-31")
    assert covered(fixed, "2026-03-10T14:30:00Z") is not None


def test_first_occurrence_is_exactly_what_was_given_even_across_a_clock_change():
    # London moves from GMT to BST at 01:00 UTC on 29 March 2026; the window runs 00:30 GMT to
    # 03:00 BST (00:30Z-02:00Z) and repeats daily at 00:30 local for the same 90 minutes
    r = rule("2026-03-29T00:30:00+00:00", "2026-03-29T03:00:00+01:00", "DAILY", until="2026-04-05",
             zone="Europe/London")
    assert covered(r, "2026-03-29T01:45:00Z") == ("2026-03-29T00:30:00+00:00", "2026-03-29T02:00:00+00:00")
    # next day: 00:30 BST = 23:30Z, 90 minutes
    assert covered(r, "2026-03-30T00:45:00Z") == ("2026-03-29T23:30:00+00:00", "2026-03-30T01:00:00+00:00")
    assert covered(r, "2026-03-30T01:15:00Z") is None


def test_a_local_start_that_does_not_exist_begins_an_hour_later_by_the_clock():
    # 01:30 London does not exist on 29 March 2026 (01:00 GMT jumps to 02:00 BST)
    r = rule("2026-03-20T01:30:00+00:00", "2026-03-20T02:00:00+00:00", "DAILY", until="2026-04-05",
             zone="Europe/London")
    assert covered(r, "2026-03-29T01:40:00Z") == ("2026-03-29T01:30:00+00:00", "2026-03-29T02:00:00+00:00")
    assert covered(r, "2026-03-30T00:40:00Z") == ("2026-03-30T00:30:00+00:00", "2026-03-30T01:00:00+00:00")


# ---------------------------------------------------------------- ending early, next occurrence, state

def test_ending_early_cuts_the_occurrence_and_all_later_ones():
    r = rule("2026-03-01T02:00:00+00:00", "2026-03-01T04:00:00+00:00", "DAILY", until="2026-03-31",
             ended_at="2026-03-05T03:00:00+00:00")
    assert covered(r, "2026-03-05T02:30:00+00:00") == ("2026-03-05T02:00:00+00:00", "2026-03-05T03:00:00+00:00")
    assert covered(r, "2026-03-05T03:00:00+00:00") is None
    assert covered(r, "2026-03-06T02:30:00+00:00") is None
    assert covered(r, "2026-03-04T02:30:00+00:00") is not None  # earlier occurrences stay (late events)


def test_next_occurrence_and_state():
    r = rule("2026-03-07T01:00:00+00:00", "2026-03-07T05:00:00+00:00", "WEEKLY", "sat", until="2026-03-21")
    assert r.state(at("2026-03-01T00:00:00+00:00")) == ("pending", (at("2026-03-07T01:00:00+00:00"),
                                                                   at("2026-03-07T05:00:00+00:00")))
    assert r.state(at("2026-03-14T02:00:00+00:00")) == ("active", (at("2026-03-14T01:00:00+00:00"),
                                                                  at("2026-03-14T05:00:00+00:00")))
    # between occurrences: pending, next Saturday
    assert r.state(at("2026-03-15T12:00:00+00:00"))[1][0] == at("2026-03-21T01:00:00+00:00")
    assert r.state(at("2026-03-21T05:00:00+00:00")) == ("expired", None)
    one_off = rule("2026-03-01T09:00:00+00:00", "2026-03-01T11:00:00+00:00")
    assert one_off.state(at("2026-03-01T11:00:00+00:00")) == ("expired", None)
    ended = rule("2026-03-07T01:00:00+00:00", "2026-03-07T05:00:00+00:00", "WEEKLY", "sat", until="2026-03-21",
                 ended_at="2026-03-10T00:00:00+00:00")
    assert ended.state(at("2026-03-09T00:00:00+00:00")) == ("expired", None)


def test_occurrences_lists_them_in_order():
    r = rule("2026-03-01T22:00:00+00:00", "2026-03-02T02:00:00+00:00", "DAILY", until="2026-03-03")
    starts = [s.isoformat() for s, _ in r.occurrences(at("2026-02-01T00:00:00+00:00"))]
    assert starts == ["2026-03-01T22:00:00+00:00", "2026-03-02T22:00:00+00:00", "2026-03-03T22:00:00+00:00"]
    # one still running counts
    assert next(r.occurrences(at("2026-03-03T01:00:00+00:00")))[0] == at("2026-03-02T22:00:00+00:00")


# ---------------------------------------------------------------- which windows cover which alert

CLIENT_A, CLIENT_B, SITE_A1, SITE_A2, SITE_B1 = 10, 20, 101, 102, 201
NOON = at("2026-03-01T12:00:00+00:00")


def window(id: int, scope: str, client_id=None, site_id=None, types=()) -> WindowRule:
    return rule("2026-03-01T09:00:00+00:00", "2026-03-01T15:00:00+00:00", id=id, scope=scope, client_id=client_id,
                site_id=site_id, types=types)


def test_a_client_window_covers_its_sites_and_its_client_level_alerts_only():
    book = Rulebook([window(1, "CLIENT", CLIENT_A)])
    assert book.covering(CLIENT_A, SITE_A1, "DEVICE_OFFLINE", NOON).id == 1
    assert book.covering(CLIENT_A, SITE_A2, "DEVICE_OFFLINE", NOON).id == 1
    assert book.covering(CLIENT_A, None, "DEVICE_OFFLINE", NOON).id == 1
    assert book.covering(CLIENT_B, SITE_B1, "DEVICE_OFFLINE", NOON) is None


def test_a_site_window_covers_no_other_site_nor_its_client_level_alerts():
    book = Rulebook([window(1, "SITE", CLIENT_A, SITE_A1)])
    assert book.covering(CLIENT_A, SITE_A1, "DEVICE_OFFLINE", NOON).id == 1
    assert book.covering(CLIENT_A, SITE_A2, "DEVICE_OFFLINE", NOON) is None
    assert book.covering(CLIENT_A, None, "DEVICE_OFFLINE", NOON) is None


def test_a_tenant_window_covers_every_client_and_site():
    book = Rulebook([window(1, "TENANT")])
    for client_id, site_id in ((CLIENT_A, SITE_A1), (CLIENT_B, SITE_B1), (CLIENT_B, None)):
        assert book.covering(client_id, site_id, "SYNC_DEGRADED", NOON).id == 1


def test_type_lists_hold_only_their_types():
    book = Rulebook([window(1, "SITE", CLIENT_A, SITE_A1, types=("DEVICE_OFFLINE", "SYNC_DEGRADED"))])
    assert book.covering(CLIENT_A, SITE_A1, "SYNC_DEGRADED", NOON).id == 1
    assert book.covering(CLIENT_A, SITE_A1, "GEOFENCE_BREACH", NOON) is None


def test_lowest_id_wins_and_all_covering_lists_them_all():
    book = Rulebook([window(7, "TENANT"), window(3, "SITE", CLIENT_A, SITE_A1), window(5, "CLIENT", CLIENT_A)])
    assert book.covering(CLIENT_A, SITE_A1, "DEVICE_OFFLINE", NOON).id == 3
    assert [r.id for r in book.all_covering(CLIENT_A, SITE_A1, "DEVICE_OFFLINE", NOON)] == [3, 5, 7]
    assert [r.id for r in book.all_covering(CLIENT_A, SITE_A2, "DEVICE_OFFLINE", NOON)] == [5, 7]
    assert book.covering(CLIENT_A, SITE_A1, "DEVICE_OFFLINE", NOON + timedelta(hours=3)) is None


# ---------------------------------------------------------------- parsing what people type

def test_weekdays_parse_in_week_order_from_lists_and_names():
    assert parse_weekdays(["sun,SAT", "monday"]) == ["mon", "sat", "sun"]
    with pytest.raises(BadInput, match="unknown weekday 'funday'"):
        parse_weekdays(["sat,funday"])


def test_type_names_are_spelled_as_ingest_spells_them():
    assert type_names(["HostDown", "device_offline,DEVICE_OFFLINE", "disk-full"]) == [
        "HOST_DOWN", "DEVICE_OFFLINE", "DISK_FULL"]
    with pytest.raises(BadInput, match="not a usable type name"):
        type_names(["9lives"])
