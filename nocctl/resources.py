"""Locate the files that ship beside the code: the Alembic migrations, the report
templates and the examples (the demo's organisation; the files the README's commands
name, found by `shipped_example` when the working directory has no `examples/`). In a
checkout they sit at the top of the repository; in an installed wheel the build maps them
into `nocctl/_data/` (see pyproject.toml)."""
from __future__ import annotations

from pathlib import Path, PurePath

_PACKAGE = Path(__file__).resolve().parent


def _find(installed: str, checkout: str) -> Path:
    for candidate in (_PACKAGE / "_data" / installed, _PACKAGE.parent / checkout):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"nocctl is incomplete: {installed} not found in {_PACKAGE / '_data'} or {_PACKAGE.parent}")


def alembic_dir() -> Path:
    return _find("alembic", "alembic")


def templates_dir() -> Path:
    return _find("templates", "reports/templates")


def examples_dir() -> Path:
    return _find("examples", "examples")


def shipped_example(name: str | PurePath) -> Path | None:
    """The shipped copy of the example that a relative path `examples/…` names (the way the
    README spells them: `examples/org.json`, `./examples/feeds/tickets.ndjson`), when there
    is one; None for any other path, `..` anywhere, or an example that does not exist."""
    path = PurePath(name)
    parts = path.parts
    if path.is_absolute() or len(parts) < 2 or parts[0] != "examples" or ".." in parts:
        return None
    try:
        candidate = examples_dir().joinpath(*parts[1:])
    except FileNotFoundError:
        return None
    return candidate if candidate.is_file() else None
