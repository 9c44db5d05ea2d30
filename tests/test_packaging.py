"""The wheel is what ops hosts install: it must carry the migrations and templates and run
from any directory."""
from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "-w", str(out), str(ROOT)],
        check=True,
    )
    (built,) = out.glob("nocctl-*.whl")
    return built


def test_wheel_carries_migrations_and_templates(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "nocctl/_data/alembic/env.py" in names
    assert any(n.startswith("nocctl/_data/alembic/versions/0001_") for n in names)
    assert "nocctl/_data/templates/report.html" in names
    assert "nocctl/_data/examples/org.json" in names  # the demo's organisation
    assert "nocctl/_data/examples/feeds/tickets.ndjson" in names  # the README's feed examples
    assert "nocctl/cli/__init__.py" in names


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed. Its dependencies are taken
    from this interpreter's site-packages (so the test needs no network)."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)], check=True)
    target = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, capture_output=True, text=True).stdout.strip())
    here = {sysconfig.get_paths()["purelib"], *site.getsitepackages()}
    (target / "zz_test_dependencies.pth").write_text("\n".join(sorted(here)) + "\n")
    return venv


def test_installed_wheel_runs_from_outside_the_checkout(installed, tmp_path):
    # Nothing from this run's environment may point Python back at a checkout (PYTHONPATH).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOC_", "PYTHON"))}
    # PATH without this nocctl (and without any other): the demo must say how to run it.
    env.update(XDG_DATA_HOME=str(tmp_path / "data"), NOC_CONFIG=str(tmp_path / "none.toml"), PATH="/usr/bin:/bin")
    (tmp_path / "none.toml").write_text("")
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    nocctl = str(installed / "bin" / "nocctl")

    def run(*args):
        return subprocess.run([nocctl, *args], cwd=workdir, env=env, capture_output=True, text=True)

    where = subprocess.run(
        [str(installed / "bin" / "python"), "-c",
         "import nocctl, nocctl.resources as r; print(nocctl.__file__); print(r.alembic_dir())"],
        cwd=workdir, env=env, capture_output=True, text=True, check=True,
    ).stdout.split()
    assert all(str(installed) in p for p in where), where  # the installed copy, not the checkout

    init = run("init", "--format", "json")
    assert init.returncode == 0, init.stderr
    assert json.loads(init.stdout)["tenant_created"] is True
    assert (tmp_path / "data" / "nocctl" / "noc.db").exists()

    # The README's path: there is no examples/ here, so the copy inside the wheel is read.
    imported = run("org", "import", "examples/org.json", "--json")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["created"] == {"person": 9, "client": 3, "site": 12}
    shipped = installed / "lib"
    assert imported.stderr.startswith(f"nocctl: examples/org.json is not in {workdir}: reading the example shipped "
                                      f"with nocctl, {shipped}"), imported.stderr
    assert imported.stderr.rstrip().endswith("/nocctl/_data/examples/org.json")
    feed = run("ingest", "--kind", "ticket", "examples/feeds/tickets.ndjson", "--json")
    assert feed.returncode == 0, feed.stderr
    assert json.loads(feed.stdout)["inserted"] > 0
    missing = run("org", "import", "examples/nope.json")
    assert missing.returncode == 3 and missing.stderr == "nocctl: error: no such file: examples/nope.json\n"

    page = run("man", "alert", "list")
    assert page.returncode == 0 and page.stdout.splitlines()[1].startswith('.TH "NOCCTL\\-ALERT\\-LIST" 1')

    tree = run("org", "tree")
    assert tree.returncode == 0 and "INITECH-HYD" in tree.stdout

    # The demo needs the templates and the example organisation from the installed copy.
    demo = run("--db", f"sqlite:///{tmp_path / 'demo.db'}", "demo", "--days", "2", "--html", str(tmp_path / "w.html"))
    assert demo.returncode == 0, demo.stderr
    assert "<svg" in (tmp_path / "w.html").read_text() and "Weekly" in demo.stdout
    # Not on PATH: the next steps name the installed script by its path.
    assert f"\n  {nocctl} --db sqlite:///{tmp_path / 'demo.db'} status\n" in demo.stderr, demo.stderr

    module = subprocess.run([str(installed / "bin" / "python"), "-m", "nocctl", "--version"],
                            cwd=workdir, env=env, capture_output=True, text=True)
    assert module.returncode == 0 and "nocctl, version" in module.stdout
