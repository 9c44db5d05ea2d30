"""Reporting state-machine moves on several targets: one line each, the exit status of the
first failure (DESIGN §5: 4 for a refused move, 3 not found, 77 not permitted). A move
already made (`already acknowledged`) is a success: exit 0."""
from __future__ import annotations

import click

from nocctl import output
from nocctl.cli.common import say


def report_moves(ctx: click.Context, outcomes, noun: str, fmt: str) -> None:
    from nocctl.services.workflow import exit_code

    if fmt == "json":
        output.write(output.to_json([o.as_dict() for o in outcomes]) + "\n")
    for o in outcomes:
        if o.ok:
            if fmt != "json":
                click.echo(f"{noun} {o.id}: {o.message or o.status}")  # `already acknowledged`
        else:
            say(f"nocctl: error: {o.error}", err=True)
    code = exit_code(outcomes)
    if code:
        ctx.exit(code)
