"""State machines of alerts and incidents, applied race-free.

A move is one conditional UPDATE (`… WHERE id = :id AND status IN (allowed)`): of two
engineers acknowledging the same alert at once, exactly one changes it (PostgreSQL re-checks
the condition after the row lock; SQLite write transactions are serialised), and only that
one writes an audit row. The other is told the state it found: exit 4, or — when the row
is where the move leads already (`Move.done_in`: acknowledging an acknowledged alert) —
`already acknowledged`, exit 0, and no audit row, as PagerDuty and alerta answer. Which
moves there are, from which statuses, and the fields each sets, is `nocctl.lifecycle`'s."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, case, literal, not_, select, update
from sqlalchemy.orm import Session

from nocctl.errors import Conflict, ExitCode, NocError, NotFound
from nocctl.lifecycle import Move
from nocctl.services import audit
from nocctl.services.access import Scope


@dataclass
class Outcome:
    """What happened to one target of a command that takes several ids."""

    target: str
    id: int | None = None
    ok: bool = False
    status: str | None = None
    error: str | None = None
    exit_code: int = ExitCode.OK
    message: str | None = None  # what to say instead of the status (`already acknowledged`)
    unchanged: bool = False  # a no-op: the row was where the move leads already

    def as_dict(self) -> dict[str, Any]:
        data = {"target": self.target, "id": self.id, "ok": self.ok, "status": self.status, "error": self.error}
        if self.message is not None:
            data["message"] = self.message
        if self.unchanged:
            data["unchanged"] = True
        return data


class AlreadyThere(Exception):
    """The row is where the move leads (`Move.done_in`): nothing to do."""

    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


def failed(target: str, error: NocError, row_id: int | None = None) -> Outcome:
    return Outcome(target, row_id, False, None, str(error), int(error.exit_code))


def apply(session: Session, table: Table, row_id: int, move: Move, values: dict[str, Any],
          same: ColumnElement[bool] | None = None) -> str:
    """Make the move or raise Conflict naming the status found; AlreadyThere when the row is
    in `move.done_in` (and `same` holds: a null-safe condition that narrows it). Returns the
    new status."""
    done: ColumnElement[bool] | None = None
    if move.done_in:
        done = table.c.status.in_(move.done_in)
        if same is not None:
            done = and_(done, same)
    where = [table.c.id == row_id, table.c.status.in_(move.allowed)]
    if done is not None:
        where.append(not_(done))
    changed = session.execute(
        update(table).where(*where).values(**values).returning(table.c.status)
    ).scalar()
    if changed is None:
        there = case((done, 1), else_=0) if done is not None else literal(0)
        found, is_there = session.execute(select(table.c.status, there).where(table.c.id == row_id)).one()
        if is_there:
            raise AlreadyThere(found)
        raise Conflict(f"{table.name} {row_id} is {found}: cannot {move.name} it",
                       f"{move.name} applies to {', '.join(move.allowed)}")
    return changed


def move_each(session: Session, scope: Scope, table: Table, move: Move, targets: Iterable[tuple[str, Any]],
              values: Callable[[Any], dict[str, Any]], details: dict[str, Any],
              same: ColumnElement[bool] | None = None, said: Callable[[str], str | None] | None = None
              ) -> list[Outcome]:
    """Make `move` on each (label, row) target — row None when the person cannot see it —
    inside the caller's transaction: not found (3), not permitted (77) and refused moves (4)
    are reported per target; one already made is reported `move.already` (exit 0, no audit
    row); the others are done and audited, with the row's client/site. `same` narrows
    `move.done_in` (`apply`); `said(status)` is what to report for a move made, when not
    the new status."""
    noun = table.name
    outcomes: list[Outcome] = []
    entries: list[audit.Entry] = []
    for label, row in targets:
        try:
            if row is None:
                raise NotFound(f"no {noun} {label}", f"see `nocctl {noun} list`")
            scope.require(move.capability, row.client_id, row.site_id, what=f"{noun} {row.id}")
            status = apply(session, table, row.id, move, values(row), same)
        except AlreadyThere as there:
            outcomes.append(Outcome(label, row.id, True, there.status, message=move.already, unchanged=True))
            continue
        except NocError as exc:
            outcomes.append(failed(label, exc, row.id if row else None))
            continue
        entries.append(audit.Entry(move.audit_action, noun, row.id, {"from": row.status, "to": status, **details},
                                   row.client_id, row.site_id))
        outcomes.append(Outcome(label, row.id, True, status, message=said(status) if said else None))
    audit.record_many(session, scope.actor, entries)
    return outcomes


def exit_code(outcomes: Iterable[Outcome]) -> int:
    """The exit status of a multi-target command: the first failure's code, else 0."""
    return next((o.exit_code for o in outcomes if not o.ok), ExitCode.OK)
