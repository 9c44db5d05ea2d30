"""The organisation: clients, their sites, and the people named on them (DESIGN §3).

`import_org` upserts by code/username in one transaction, idempotently: a second run of the
same file changes nothing. Every bad row is reported and nothing is applied when any is bad.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, FromClause, String, select, true
from sqlalchemy.orm import Session, aliased

from nocctl import clock
from nocctl.errors import BadInput, Conflict, NotFound
from nocctl.models import BusinessUnit, Person
from nocctl.services import access, audit
from nocctl.services.people import validate_person_fields
from nocctl.services.rbac import Actor, Caller

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PERSON_FIELDS = ("username", "name", "email", "phone")
CLIENT_FIELDS = ("code", "name", "owner")
SITE_FIELDS = ("code", "name", "client", "city", "state", "in_charge")
KIND_FIELDS = {"person": PERSON_FIELDS, "client": CLIENT_FIELDS, "site": SITE_FIELDS}


def _length(table: FromClause, name: str) -> int:
    kind = table.c[name].type
    assert isinstance(kind, String) and kind.length is not None, f"{name} is a text column of a set length"
    return kind.length


# Longest text the columns hold: PostgreSQL refuses longer values (SQLite would store them).
MAX_LENGTH = {
    "person": {k: _length(Person.__table__, k) for k in ("name", "email", "phone")},
    "client": {"name": _length(BusinessUnit.__table__, "name")},
    "site": {k: _length(BusinessUnit.__table__, k) for k in ("name", "city", "state")},
}


# ---------------------------------------------------------------- reading import files

@dataclass
class Row:
    where: str  # "org.csv:7" or "org.json: sites[3]", for error messages
    fields: dict[str, str]


@dataclass
class OrgDocument:
    people: list[Row] = field(default_factory=list)
    clients: list[Row] = field(default_factory=list)
    sites: list[Row] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ValueError("must be a string")
    text = str(value).strip()
    return text or None


def _row(doc: OrgDocument, kind: str, where: str, raw: dict[str, Any]) -> None:
    allowed = KIND_FIELDS[kind]
    unknown = sorted(set(raw) - set(allowed) - {"kind"})
    if unknown:
        doc.problems.append(
            f"{where}: unknown field(s) {', '.join(unknown)} for a {kind}; allowed: {', '.join(allowed)}")
        return
    fields = {}
    for key in allowed:
        try:
            value = _clean(raw.get(key))
        except ValueError:  # a list, an object or a boolean (true is not a name)
            doc.problems.append(f"{where}: field {key!r} must be a string")
            return
        if value is not None and len(value) > MAX_LENGTH[kind].get(key, len(value)):
            doc.problems.append(f"{where}: field {key!r} is longer than {MAX_LENGTH[kind][key]} characters")
            return
        if value is not None:
            fields[key] = value
    {"person": doc.people, "client": doc.clients, "site": doc.sites}[kind].append(Row(where, fields))


def parse_org_file(path: str | Path, text: str | None = None) -> OrgDocument:
    """Read an org file: JSON `{"people", "clients", "sites"}` or CSV with a `kind` column.
    Structural problems are collected in `problems`, not raised, so all are reported."""
    path = Path(path)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise NotFound(f"no such file: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"cannot read {path}: {exc}") from None
    doc = OrgDocument()
    stripped = text.lstrip()
    if not stripped:
        raise BadInput(f"{path} is empty")
    if stripped[0] in "{[":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise BadInput(f"{path}: expected an object with people, clients and sites")
        unknown = sorted(set(data) - {"people", "clients", "sites"})
        if unknown:
            doc.problems.append(f"{path}: unknown section(s) {', '.join(unknown)}; expected people, clients, sites")
        for section, kind in (("people", "person"), ("clients", "client"), ("sites", "site")):
            items = data.get(section, [])
            if not isinstance(items, list):
                doc.problems.append(f"{path}: {section} must be a list")
                continue
            for index, item in enumerate(items):
                where = f"{path}: {section}[{index}]"
                if not isinstance(item, dict):
                    doc.problems.append(f"{where}: must be an object")
                else:
                    _row(doc, kind, where, item)
        return doc
    reader = csv.DictReader(io.StringIO(text))
    headers = [h.strip() for h in reader.fieldnames or []]
    if "kind" not in headers:
        raise BadInput(f"{path}: not JSON, and a CSV needs a `kind` column (person|client|site)")
    reader.fieldnames = headers
    all_fields = set().union(*KIND_FIELDS.values()) | {"kind"}
    unknown = sorted(set(headers) - all_fields)
    if unknown:
        raise BadInput(f"{path}:1: unknown column(s) {', '.join(unknown)}", "allowed: " + ", ".join(sorted(all_fields)))
    for record in reader:
        where = f"{path}:{reader.line_num}"
        if None in record:
            doc.problems.append(f"{where}: more cells than columns")
            continue
        kind = (record.pop("kind") or "").strip().lower()
        if kind not in KIND_FIELDS:
            doc.problems.append(f"{where}: kind must be person, client or site, not {kind!r}")
            continue
        extra = [k for k, v in record.items() if k not in KIND_FIELDS[kind] and (v or "").strip()]
        if extra:
            doc.problems.append(f"{where}: field(s) {', '.join(sorted(extra))} do not apply to a {kind}")
            continue
        _row(doc, kind, where, {k: v for k, v in record.items() if k in KIND_FIELDS[kind]})
    return doc


# ---------------------------------------------------------------- writing

@dataclass
class ImportResult:
    created: dict[str, int]
    updated: dict[str, int]
    unchanged: dict[str, int]

    def as_dict(self) -> dict:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged}


def _apply(obj: Any, values: dict[str, Any]) -> bool:
    changed = False
    for attr, value in values.items():
        if getattr(obj, attr) != value:
            setattr(obj, attr, value)
            changed = True
    return changed


def import_org(session: Session, caller: Caller, doc: OrgDocument) -> ImportResult:
    """Upsert people, then clients, then sites. Raises BadInput listing every problem, and
    then nothing is written."""
    problems = list(doc.problems)
    counts = {k: {"person": 0, "client": 0, "site": 0} for k in ("created", "updated", "unchanged")}
    now = clock.now()
    with session.begin():
        scope = access.for_caller(session, caller)
        scope.require("noc:configure")
        actor, tid = scope.actor, scope.actor.tenant_id
        people = {p.username: p for p in session.scalars(select(Person).where(Person.tenant_id == tid))}
        units = {u.code: u for u in session.scalars(select(BusinessUnit).where(BusinessUnit.tenant_id == tid))}

        def person_ref(row: Row, key: str) -> int | None:
            username = row.fields.get(key)
            if username is None:
                return None
            if username not in people:
                problems.append(f"{row.where}: {key} {username!r} is not a known person")
                return None
            return people[username].id

        def seen_twice(row: Row, value: str, seen: dict[str, str]) -> bool:
            if value in seen:
                problems.append(f"{row.where}: {value!r} appears again (first at {seen[value]})")
                return True
            seen[value] = row.where
            return False

        seen: dict[str, str] = {}
        for row in doc.people:
            username = row.fields.get("username")
            if not username:
                problems.append(f"{row.where}: username is required")
                continue
            try:
                validate_person_fields(username, row.fields.get("email"))
            except BadInput as exc:
                problems.append(f"{row.where}: {exc}")
                continue
            if seen_twice(row, username, seen):
                continue
            values: dict[str, Any] = {k: row.fields[k] for k in ("name", "email", "phone") if k in row.fields}
            person = people.get(username)
            if person is None:
                person = Person(tenant_id=tid, username=username, active=True, created_at=now, **values)
                session.add(person)
                people[username] = person
                counts["created"]["person"] += 1
            else:
                counts["updated" if _apply(person, values) else "unchanged"]["person"] += 1
        session.flush()  # people get ids before clients and sites refer to them

        seen = {}
        for kind, rows in (("CLIENT", doc.clients), ("SITE", doc.sites)):
            for row in rows:
                code = row.fields.get("code")
                if not code or not CODE.match(code):
                    problems.append(f"{row.where}: " + (f"invalid code {code!r} (letters, digits, _ . -)" if code
                                                        else "code is required"))
                    continue
                if seen_twice(row, code, seen):
                    continue
                unit = units.get(code)
                if unit is not None and unit.kind != kind:
                    problems.append(f"{row.where}: {code!r} is already a {unit.kind.lower()}")
                    continue
                values = {k: row.fields[k] for k in ("name", "city", "state") if k in row.fields}
                ref = "owner" if kind == "CLIENT" else "in_charge"
                if ref in row.fields:
                    values["owner_id" if kind == "CLIENT" else "site_in_charge_id"] = person_ref(row, ref)
                if kind == "SITE":
                    client_code = row.fields.get("client")
                    if client_code:
                        parent = units.get(client_code)
                        if parent is None or parent.kind != "CLIENT":
                            problems.append(f"{row.where}: client {client_code!r} is not a known client")
                            continue
                        values["parent_id"] = values["client_id"] = parent.id
                    elif unit is None:
                        problems.append(f"{row.where}: client is required for a new site")
                        continue
                if unit is None:
                    unit = BusinessUnit(tenant_id=tid, kind=kind, code=code, name=values.pop("name", code),
                                        created_at=now, updated_at=now, **values)
                    session.add(unit)
                    units[code] = unit
                    if kind == "CLIENT":
                        session.flush()
                        unit.client_id = unit.id
                    counts["created"][kind.lower()] += 1
                elif _apply(unit, values):
                    unit.updated_at = now
                    counts["updated"][kind.lower()] += 1
                else:
                    counts["unchanged"][kind.lower()] += 1
            session.flush()

        if problems:  # raising inside the transaction rolls all of it back
            raise BadInput(f"{len(problems)} problem(s) in the import; nothing was applied",
                           "fix the rows above and run it again", details=sorted(problems, key=_line_number))
        result = ImportResult(counts["created"], counts["updated"], counts["unchanged"])
        if any(result.created.values()) or any(result.updated.values()):
            audit.record(session, actor, "CONFIG_CHANGE", "org", None, {"change": "org import", **result.as_dict()})
    return result


def _line_number(problem: str) -> int:
    """Sort key: the line of a CSV problem (`file:7: …`); JSON problems keep their order."""
    found = re.match(r"^.*?:(\d+):", problem)
    return int(found.group(1)) if found else 0


def _person_id(session: Session, tenant_id: int, username: str | None) -> int | None:
    if not username:
        return None
    found = session.scalar(select(Person.id).where(Person.tenant_id == tenant_id, Person.username == username))
    if found is None:
        raise NotFound(f"no person {username!r}", f"add them first: `nocctl user add {username}`")
    return found


def _check_new_code(session: Session, scope: access.Scope, code: str) -> None:
    """A code is unique in the tenant: one in use is a conflict (4), named as a client or
    site only when the caller may know of that unit."""
    if not CODE.match(code or ""):
        raise BadInput(f"invalid code {code!r}", "use letters, digits and _ . - (up to 64)")
    existing = session.execute(select(BusinessUnit.id, BusinessUnit.kind, BusinessUnit.client_id).where(
        BusinessUnit.tenant_id == scope.actor.tenant_id, BusinessUnit.code == code)).first()
    if existing is None:
        return
    if scope.knows(existing.client_id, existing.id if existing.kind == "SITE" else None, "noc:configure"):
        raise Conflict(f"{existing.kind.lower()} {code!r} already exists", "use `nocctl org import` to update it")
    raise Conflict(f"the code {code!r} is already in use in this tenant", "pick another code")


def add_client(session: Session, caller: Caller, code: str, name: str, owner: str | None = None) -> dict:
    now = clock.now()
    with session.begin():
        scope = access.for_caller(session, caller)
        scope.require("noc:configure")
        actor = scope.actor
        _check_new_code(session, scope, code)
        unit = BusinessUnit(tenant_id=actor.tenant_id, kind="CLIENT", code=code, name=name,
                            owner_id=_person_id(session, actor.tenant_id, owner), created_at=now, updated_at=now)
        session.add(unit)
        session.flush()
        unit.client_id = unit.id
        audit.record(session, actor, "CONFIG_CHANGE", "client", unit.id, {"change": "client add", "code": code})
        return _describe(session, actor, unit.id)


def add_site(session: Session, caller: Caller, code: str, client: str, name: str, city: str | None = None,
             state: str | None = None, in_charge: str | None = None) -> dict:
    now = clock.now()
    with session.begin():
        scope = access.for_caller(session, caller)
        actor = scope.actor
        # A client the caller may not know of is "not found" (3), exactly like a missing one.
        parent = scope.client(session, client, "noc:configure")
        _check_new_code(session, scope, code)
        unit = BusinessUnit(tenant_id=actor.tenant_id, kind="SITE", code=code, name=name, parent_id=parent.id,
                            client_id=parent.id, city=city, state=state,
                            site_in_charge_id=_person_id(session, actor.tenant_id, in_charge),
                            created_at=now, updated_at=now)
        session.add(unit)
        session.flush()
        audit.record(session, actor, "CONFIG_CHANGE", "site", unit.id, {"change": "site add", "code": code})
        return _describe(session, actor, unit.id)


# ---------------------------------------------------------------- reading

UNIT_COLUMNS = ("code", "kind", "name", "client", "city", "state", "in_charge", "owner")


def _unit_query(actor: Actor, visible: ColumnElement[bool] | None = None):
    client = aliased(BusinessUnit)
    in_charge = aliased(Person)
    owner = aliased(Person)
    return (
        select(
            BusinessUnit.id,
            BusinessUnit.code,
            BusinessUnit.kind,
            BusinessUnit.name,
            client.code.label("client"),
            BusinessUnit.city,
            BusinessUnit.state,
            in_charge.username.label("in_charge"),
            owner.username.label("owner"),
        )
        .join(client, client.id == BusinessUnit.client_id)
        .outerjoin(in_charge, in_charge.id == BusinessUnit.site_in_charge_id)
        .outerjoin(owner, owner.id == BusinessUnit.owner_id)
        .where(BusinessUnit.tenant_id == actor.tenant_id, true() if visible is None else visible)
    )


def _as_row(row) -> dict:
    data = dict(row._mapping)
    data.pop("id", None)
    data["kind"] = data["kind"].lower()
    return data


def _describe(session: Session, actor: Actor, unit_id: int) -> dict:
    """The unit just created, for its creator: noc:configure over it suffices, even
    without a view capability."""
    return _as_row(session.execute(_unit_query(actor).where(BusinessUnit.id == unit_id)).one())


def list_units(session: Session, caller: Caller, kind: str | None = None, client: str | None = None) -> list[dict]:
    """Clients and sites the caller can see, clients first then their sites by code."""
    with session.begin():
        scope = access.for_caller(session, caller)
        actor = scope.actor
        # A unit row's own client and site: a client row is its own client (client_id = id).
        query = _unit_query(actor, scope.visible(BusinessUnit.client_id, BusinessUnit.id))
        if kind:
            query = query.where(BusinessUnit.kind == kind.upper())
        if client:  # one the caller cannot see is "not found", like a missing one
            query = query.where(BusinessUnit.client_id == scope.client(session, client).id)
        query = query.order_by(query.selected_columns.client, BusinessUnit.kind, BusinessUnit.code)
        return [_as_row(r) for r in session.execute(query)]


def tree(session: Session, caller: Caller, client: str | None = None) -> list[dict]:
    """client → state → city → site, for the sites the caller can see (a client appears
    when it or one of its sites is visible)."""
    rows = list_units(session, caller, client=client)
    clients: dict[str, dict] = {}
    names = {r["code"]: r for r in rows if r["kind"] == "client"}
    for row in rows:
        code = row["client"]
        entry = clients.setdefault(code, {
            "code": code,
            "name": names.get(code, {}).get("name", code),
            "owner": names.get(code, {}).get("owner"),
            "states": {},
        })
        if row["kind"] == "site":
            cities = entry["states"].setdefault(row["state"] or "(no state)", {})
            cities.setdefault(row["city"] or "(no city)", []).append(
                {"code": row["code"], "name": row["name"], "in_charge": row["in_charge"]}
            )
    return [
        {
            **{k: v for k, v in entry.items() if k != "states"},
            "states": [
                {"state": state, "cities": [{"city": city, "sites": sites} for city, sites in sorted(cities.items())]}
                for state, cities in sorted(entry["states"].items())
            ],
        }
        for entry in sorted(clients.values(), key=lambda e: e["code"])
    ]
