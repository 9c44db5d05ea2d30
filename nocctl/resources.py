"""Locate the files that ship beside the code: the Alembic migrations, the report
templates and the examples (the demo's organisation). In a checkout they sit at the top of
the repository; in an installed wheel the build maps them into `nocctl/_data/` (see
pyproject.toml)."""
from __future__ import annotations

from pathlib import Path

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
