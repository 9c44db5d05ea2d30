"""State machines of alerts and incidents, applied race-free.

A move is one conditional UPDATE (`… WHERE id = :id AND status IN (allowed)`): of two
engineers acknowledging the same alert at once, exactly one changes it (PostgreSQL re-checks
the condition after the row lock; SQLite write transactions are serialised), and only that
one writes an audit row. The other is told the state it found, exit 4. Which moves there are,
from which statuses, and the fields each sets, is `nocctl.lifecycle`'s."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, select, update
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

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "id": self.id, "ok": self.ok, "status": self.status, "error": self.error}


def failed(target: str, error: NocError, row_id: int | None = None) -> Outcome:
    return Outcome(target, row_id, False, None, str(error), int(error.exit_code))


def apply(session: Session, table: Table, row_id: int, move: Move, values: dict[str, Any]) -> str:
    """Make the move or raise Conflict naming the status found. Returns the new status."""
    changed = session.execute(
        update(table).where(table.c.id == row_id, table.c.status.in_(move.allowed)).values(**values)
        .returning(table.c.status)
    ).scalar()
    if changed is None:
        found = session.scalar(select(table.c.status).where(table.c.id == row_id))
        raise Conflict(f"{table.name} {row_id} is {found}: cannot {move.name} it",
                       f"{move.name} applies to {', '.join(move.allowed)}")
    return changed


def move_each(session: Session, scope: Scope, table: Table, move: Move, targets: Iterable[tuple[str, Any]],
              values: Callable[[Any], dict[str, Any]], details: dict[str, Any]) -> list[Outcome]:
    """Make `move` on each (label, row) target — row None when the person cannot see it —
    inside the caller's transaction: not found (3), not permitted (77) and refused moves (4)
    are reported per target; the others are done and audited, with the row's client/site."""
    noun = table.name
    outcomes: list[Outcome] = []
    entries: list[audit.Entry] = []
    for label, row in targets:
        try:
            if row is None:
                raise NotFound(f"no {noun} {label}", f"see `nocctl {noun} list`")
            scope.require(move.capability, row.client_id, row.site_id, what=f"{noun} {row.id}")
            status = apply(session, table, row.id, move, values(row))
        except NocError as exc:
            outcomes.append(failed(label, exc, row.id if row else None))
            continue
        entries.append(audit.Entry(move.audit_action, noun, row.id, {"from": row.status, "to": status, **details},
                                   row.client_id, row.site_id))
        outcomes.append(Outcome(label, row.id, True, status))
    audit.record_many(session, scope.actor, entries)
    return outcomes


def exit_code(outcomes: Iterable[Outcome]) -> int:
    """The exit status of a multi-target command: the first failure's code, else 0."""
    return next((o.exit_code for o in outcomes if not o.ok), ExitCode.OK)
