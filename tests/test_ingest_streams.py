"""Standard input of real length, the way cron and scripts feed it: through a pipe from
another process, a redirect and a FIFO, each several batches long, counted in the database."""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading

import pytest

from ingest_helpers import ORG, alert, rows

pytestmark = pytest.mark.slow
NOCCTL = shlex.join([sys.executable, "-m", "nocctl"])
SITES = ["ACME-BLR-WF", "ACME-MYS", "GLOBEX-PNQ", "INITECH-HYD"]
COUNT = 50_000  # ten batches at the default batch size


def env() -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NOC_")}
    clean["NOC_CONFIG"] = os.devnull
    return clean


def shell(command: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(command, shell=True, capture_output=True, text=True, env=env(), timeout=timeout)


@pytest.fixture
def org_db(db_url):
    for args in (["init"], ["org", "import", str(ORG)]):
        done = shell(f"{NOCCTL} --db {shlex.quote(db_url)} {shlex.join(args)}")
        assert done.returncode == 0, done.stderr
    return db_url


@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    """50,000 distinct alerts, every one with its own key and time."""
    path = tmp_path_factory.mktemp("streams") / "alerts.ndjson"
    with path.open("w") as out:
        for i in range(COUNT):
            out.write(json.dumps(alert(site=SITES[i % 4], entity=f"dev-{i}",
                                       at=f"2026-03-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z")) + "\n")
    return path


def check_all_stored(db_url: str, done: subprocess.CompletedProcess) -> None:
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["received"] == summary["created"] == COUNT
    assert rows(db_url, "SELECT count(*), count(DISTINCT dedup_key) FROM alert") == [(COUNT, COUNT)]


def test_a_pipe_from_another_process_of_many_batches_is_stored_whole(org_db, big_file):
    done = shell(f"cat {shlex.quote(str(big_file))} | {NOCCTL} --db {shlex.quote(org_db)} ingest --json")
    check_all_stored(org_db, done)


PRODUCER = """
import sys, time
data = open(sys.argv[1], "rb").read()
for i, at in enumerate(range(0, len(data), 65521)):
    sys.stdout.buffer.write(data[at:at + 65521])
    sys.stdout.flush()
    if i % 40 == 0:
        time.sleep(0.001)
"""


def test_a_producer_writing_slowly_into_the_pipe_is_stored_whole(org_db, big_file, tmp_path):
    """A Python producer writes in odd-sized pieces, so reads see partial lines and short reads."""
    script = tmp_path / "producer.py"
    script.write_text(PRODUCER)
    done = shell(f"{shlex.quote(sys.executable)} {script} {shlex.quote(str(big_file))}"
                 f" | {NOCCTL} --db {shlex.quote(org_db)} ingest - --json --batch-size 2000")
    check_all_stored(org_db, done)


def test_a_redirected_file_is_stored_whole(org_db, big_file):
    done = shell(f"{NOCCTL} --db {shlex.quote(org_db)} ingest --json < {shlex.quote(str(big_file))}")
    check_all_stored(org_db, done)


def test_a_fifo_is_stored_whole(org_db, big_file, tmp_path):
    fifo = tmp_path / "alerts.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "wb") as out, open(big_file, "rb") as data:
            out.write(data.read())

    writer = threading.Thread(target=feed)
    writer.start()
    done = shell(f"{NOCCTL} --db {shlex.quote(org_db)} ingest --json {shlex.quote(str(fifo))}")
    writer.join(timeout=60)
    check_all_stored(org_db, done)


def test_stdin_among_files_is_read_in_order(org_db, big_file, tmp_path):
    """`ingest first.ndjson - last.ndjson`: all three sources, the pipe in the middle."""
    first, last = tmp_path / "first.ndjson", tmp_path / "last.ndjson"
    first.write_text(json.dumps(alert(entity="first-one")) + "\n")
    last.write_text(json.dumps(alert(entity="last-one")) + "\n")
    done = shell(f"cat {shlex.quote(str(big_file))} | {NOCCTL} --db {shlex.quote(org_db)} ingest --json"
                 f" {shlex.quote(str(first))} - {shlex.quote(str(last))}")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["created"] == COUNT + 2
    assert rows(org_db, "SELECT count(*) FROM alert WHERE entity_id IN ('first-one', 'last-one')") == [(2,)]


MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1], shell=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # KiB: the largest process of the pipeline
sys.exit(done.returncode)
"""

HUGE_LINE = """
import json, sys
out = sys.stdout.buffer
out.write(json.dumps({"alert_type": "A", "severity": "HIGH", "site": "ACME-MYS", "message": "first"}).encode() + b"\\n")
out.write(b'{"alert_type": "A", "severity": "HIGH", "site": "ACME-MYS", "message": "')
chunk = b"x" * (1 << 20)
for _ in range(300):  # a 300 MB line, written as a runaway exporter would
    out.write(chunk)
out.write(b'"}\\n')
out.write(json.dumps({"alert_type": "B", "severity": "HIGH", "site": "ACME-MYS", "message": "last"}).encode() + b"\\n")
"""


def test_a_300_mb_line_on_a_pipe_is_one_reject_and_memory_stays_flat(org_db, tmp_path):
    producer, measure = tmp_path / "producer.py", tmp_path / "measure.py"
    producer.write_text(HUGE_LINE)
    measure.write_text(MEASURE)
    pipeline = f"{shlex.quote(sys.executable)} {producer} | {NOCCTL} --db {shlex.quote(org_db)} ingest --json"
    done = subprocess.run([sys.executable, str(measure), pipeline], capture_output=True, text=True, env=env(),
                          timeout=600)
    assert done.returncode == 65, done.stderr
    summary_line, peak_kib = done.stdout.splitlines()
    assert json.loads(summary_line)["created"] == 2 and json.loads(summary_line)["rejected"] == 1
    assert "larger than the 1 MiB limit" in done.stderr
    (raw_length, line), = rows(org_db, "SELECT length(raw), line FROM ingest_reject")
    assert (raw_length, line) == (1024 * 1024, 2)
    assert int(peak_kib) < 150 * 1024, f"peak RSS {int(peak_kib) // 1024} MiB while reading a 300 MB line"


@pytest.mark.parametrize("indent", [None, 2], ids=["one-line", "pretty"])
def test_a_json_array_of_many_batches_whose_strings_hold_brackets_is_stored_whole(org_db, big_file, tmp_path, indent):
    """A 50,000-element array (Alertmanager's /api/v2/alerts shape, or an export) is read in
    64 KiB pieces: the piece boundaries fall inside strings that hold } and ], and inside
    numbers and literals; every element is read once."""
    records = [json.loads(line) for line in big_file.read_text().splitlines()]
    for i, record in enumerate(records):
        record["message"] = f'down}}] at {i} ["quoted \\" }}" ]'
        record["metadata"] = {"ratio": i / 7, "ok": i % 2 == 0, "none": None}
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps(records, indent=indent))
    assert path.stat().st_size > 100 * 65536
    done = shell(f"cat {shlex.quote(str(path))} | {NOCCTL} --db {shlex.quote(org_db)} ingest --json")
    check_all_stored(org_db, done)
    assert rows(org_db, "SELECT count(*) FROM alert WHERE message LIKE 'down}] at %'") == [(COUNT,)]
