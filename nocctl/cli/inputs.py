"""Input files of the commands that read one (`org import FILE`, `ingest FILE…`, feeds
included with `--kind`): `InputFile`, a `click.Path` that falls back to the examples shipped
with nocctl.

The README's commands name the examples as `examples/org.json`, which exists only in a
checkout. Run anywhere else (an installed wheel, another directory), a relative path that
does not exist but names a shipped example (`examples/…`) is read from the copy inside
nocctl (`resources.shipped_example`), with one line on stderr saying so; anything else that
does not exist is left to the command, which reports it as usual (exit 3). A file that
exists is always the one read, so a local `examples/` directory wins."""
from __future__ import annotations

import os
from typing import Any

import click

from nocctl.cli.common import note


def resolve(name: str) -> str:
    """`name`, or the shipped example it names when there is no such file here."""
    if name == "-" or os.path.lexists(name):
        return name
    from nocctl.resources import shipped_example

    shipped = shipped_example(name)
    if shipped is None:
        return name
    note(f"nocctl: {name} is not in {os.getcwd()}: reading the example shipped with nocctl, {shipped}")
    return str(shipped)


class InputFile(click.Path):
    """A file to read (`-`: stdin), or the shipped example its path names (see module)."""

    def __init__(self) -> None:
        super().__init__(dir_okay=False, allow_dash=True)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return super().convert(resolve(os.fsdecode(value)) if isinstance(value, (str, bytes)) else value, param, ctx)
