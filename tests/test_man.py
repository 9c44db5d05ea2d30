"""`nocctl man`: man(7) pages generated from the command tree — every page renders without
a warning, carries every option of its command, and escapes troff's special characters."""
from __future__ import annotations

import shutil
import stat
import subprocess

import click
import pytest
from click.testing import CliRunner

from nocctl.cli import cli as root
from nocctl.cli import man

GROFF = shutil.which("groff")
needs_groff = pytest.mark.skipif(GROFF is None, reason="groff is not installed")


def invoke(*args: str):
    return CliRunner().invoke(root, list(args), catch_exceptions=False)


def groff(page: str) -> tuple[str, str]:
    """(rendered text, warnings) of a page: all warnings on (-ww), no hyphenation or
    adjustment in the text so that words can be looked for."""
    done = subprocess.run([GROFF, "-man", "-Tutf8", "-ww", "-rHY=0", "-dAD=l", "-P-cbou"], input=page.encode(),
                          capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode(), done.stderr.decode()


def pages() -> list[tuple[tuple[str, ...], click.Context]]:
    return list(man.walk(click.Context(root, info_name="nocctl", **root.context_settings)))


PAGES = pages()


def test_nocctl_man_prints_the_root_page():
    result = invoke("man")
    assert result.exit_code == 0, result.stderr
    page = result.stdout
    assert page.splitlines()[1].startswith('.TH "NOCCTL" 1 ')
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "EXIT STATUS", "SEE ALSO"):
        assert f"\n.SH {section}\n" in page, section
    assert "\\fBnocctl\\-alert\\fR(1)" in page and page.isascii()


def test_a_command_s_page_has_its_synopsis_and_every_option():
    result = invoke("man", "alert", "list")
    assert result.exit_code == 0, result.stderr
    page = result.stdout
    assert page.splitlines()[1].startswith('.TH "NOCCTL\\-ALERT\\-LIST" 1 ')
    assert "\n.SH NAME\nnocctl\\-alert\\-list \\- " in page
    assert "\\fBnocctl alert list\\fR \\fI[OPTIONS]\\fR" in page
    command = root.commands["alert"].commands["list"]
    for option in command.params:
        if isinstance(option, click.Option) and not option.hidden:
            for name in option.opts:
                assert man.escape(name) in page, name
    assert "nocctl\\-alert\\fR(1)" in page  # SEE ALSO the parent
    assert "\\fB\\-h\\fR, \\fB\\-\\-help\\fR" in page  # the help option names of the root's context settings
    ingest = invoke("man", "ingest").stdout  # arguments are in the synopsis, not among the options
    assert "FILES" in ingest.split(".SH OPTIONS\n")[0]
    assert "FILES" not in ingest.split(".SH OPTIONS\n")[1].split(".SH COMMANDS")[0]


def test_an_unknown_command_is_a_usage_error():
    result = invoke("man", "alert", "nope")
    assert result.exit_code == 2
    assert "no such command: nocctl alert nope" in result.stderr


@needs_groff
@pytest.mark.parametrize("path", [p for p, _ in PAGES], ids=[" ".join(p) or "nocctl" for p, _ in PAGES])
def test_every_page_renders_without_warnings(path):
    ctx = dict(PAGES)[path]
    page = man.render(path, ctx, "0.0", "2026-03-10")
    text, warnings = groff(page)
    assert warnings == ""
    name = "-".join(("nocctl", *path))
    assert name.upper() in text.splitlines()[0]  # the header: NOCCTL-ALERT-LIST(1)
    for heading in ("NAME", "SYNOPSIS", "OPTIONS"):
        assert f"\n{heading}\n" in text
    flat = " ".join(text.split())
    for param in ctx.command.get_params(ctx):
        if isinstance(param, click.Option) and not param.hidden:
            assert all(opt in flat for opt in param.opts), param.opts


@needs_groff
def test_troff_special_characters_come_out_as_written():
    @click.command()
    @click.option("--dash-it", help="Backslash \\ and 'quoted' text; -x is an option.")
    def odd():
        """First line.

        .TH not a request
        'also not a request
        a \\fB backslash, an em dash — and → arrows.

        \b
        .verbatim  keeps   its spacing
        'and this
        """

    page = man.render(("odd",), click.Context(odd, info_name="odd"), "0.0", "2026-03-10")
    assert page.isascii()
    text, warnings = groff(page)
    assert warnings == ""
    flat = " ".join(text.split())
    assert ".TH not a request 'also not a request a \\fB backslash, an em dash — and → arrows." in flat
    assert ".verbatim  keeps   its spacing\n" in text and "'and this" in text  # no fill in a \b paragraph
    assert "Backslash \\ and 'quoted' text; -x is an option." in flat
    assert "--dash-it" in flat


def test_pages_are_written_one_per_command(tmp_path):
    out = tmp_path / "man" / "man1"
    result = invoke("man", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted("-".join(("nocctl", *path)) + ".1" for path, _ in PAGES)
    assert {"nocctl.1", "nocctl-alert.1", "nocctl-alert-list.1", "nocctl-ingest-rejects-list.1"} <= set(names)
    assert result.stdout.splitlines() == [str(out / f"{'-'.join(('nocctl', *path))}.1") for path, _ in PAGES]
    assert f"wrote {len(names)} man pages into {out}" in result.stderr
    # Documentation, not data: the usual mode (the test suite's umask), not nocctl's private 0600.
    mode = stat.S_IMODE((out / "nocctl.1").stat().st_mode)
    assert mode == 0o666 & ~_umask()
    assert (out / "nocctl-alert-list.1").read_text() == invoke("man", "alert", "list").stdout


def test_a_subtree_only(tmp_path):
    result = invoke("man", "alert", "-o", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    names = {p.name for p in tmp_path.iterdir()}
    assert "nocctl-alert.1" in names and "nocctl-alert-list.1" in names and "nocctl.1" not in names


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed")
def test_man_reads_a_written_page(tmp_path):
    invoke("man", "alert", "list", "-o", str(tmp_path))
    shown = subprocess.run(["man", "-l", str(tmp_path / "nocctl-alert-list.1")], capture_output=True, text=True,
                           env={"MANPAGER": "cat", "PAGER": "cat", "MANWIDTH": "100", "PATH": "/usr/bin:/bin"},
                           check=False)
    assert shown.returncode == 0, shown.stderr
    assert "nocctl alert list" in shown.stdout


def _umask() -> int:
    import os

    current = os.umask(0)
    os.umask(current)
    return current
