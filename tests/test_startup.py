"""`--help`, `--version` and shell completion must stay instant: no SQLAlchemy, no Jinja2."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import sys
from nocctl.cli import cli
try:
    cli.main({args!r}, prog_name="nocctl")
except SystemExit as exit:
    code = exit.code
heavy = sorted(m for m in ("sqlalchemy", "jinja2", "alembic", "psycopg", "tabulate") if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
sys.exit(code or 0)
"""


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["org", "--help"], ["user", "grant", "--help"],
                                  ["ingest", "--help"], ["alert", "list", "--help"],
                                  ["maintenance", "add", "--help"]])
def test_help_and_version_import_nothing_heavy(args):
    done = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True,
                          env={**os.environ, "NOC_CONFIG": os.devnull})
    assert done.returncode == 0, done.stderr
    assert "HEAVY=\n" in done.stderr, done.stderr
    assert done.stdout.strip()


def test_shell_completion_script_is_offered():
    done = subprocess.run([sys.executable, "-m", "nocctl"], capture_output=True, text=True,
                          env={**os.environ, "_NOCCTL_COMPLETE": "bash_source"})
    assert done.returncode == 0
    assert "_nocctl_completion" in done.stdout
