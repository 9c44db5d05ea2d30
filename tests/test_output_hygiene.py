"""Output hygiene (DESIGN §3a, issue 14): control characters of the data never reach a
terminal — table cells, `show` output, error lines, notes and console log lines show them
escaped — while JSON keeps the data exact; CSV cells a spreadsheet would run as a formula
are neutralised the OWASP way.

The terminal tests run nocctl as a real process whose stdout and stderr are a pseudo-
terminal (`os.openpty`), and read what the terminal would have received, byte for byte."""
from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import random
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from ingest_helpers import ORG, alert, ndjson
from nocctl import log, output

ESC_CLEAR = "\x1b[2J"  # erase the screen
OSC52 = "\x1b]52;c;ZXZpbA==\x07"  # write "evil" to the clipboard
C1_CSI = "\x9b"  # the one-byte CSI: `\x9b31m` turns text red on terminals that take C1
HOSTILE = f"disk full {ESC_CLEAR}then {OSC52} and {C1_CSI}31m red, DEL\x7f BS\x08 end"
SHOWN = "disk full \\x1b[2Jthen \\x1b]52;c;ZXZpbA==\\x07 and \\x9b31m red, DEL\\x7f BS\\x08 end"
TITLE = f"router down {OSC52}{ESC_CLEAR}"
TITLE_SHOWN = "router down \\x1b]52;c;ZXZpbA==\\x07\\x1b[2J"
# What must never reach the terminal: C0 but tab, newline and CR (the pty turns "\n" into
# "\r\n"), DEL, and C1 — raw, or UTF-8 encoded (U+0080-U+009F is \xc2\x80-\xc2\x9f).
RAW = [bytes([b]) for b in range(0x20) if b not in (0x09, 0x0a, 0x0d)] + [b"\x7f"] + \
      [bytes([0xc2, b]) for b in range(0x80, 0xa0)]


def leaks(data: bytes) -> list[bytes]:
    return [raw for raw in RAW if raw in data]


def on_terminal(args: list[str], env: dict[str, str], rows: int = 50, columns: int = 200,
                timeout: float = 60) -> tuple[int, bytes]:
    """Run `nocctl ARGS` with stdout and stderr on a new pseudo-terminal of a real size;
    return its exit code and every byte the terminal received."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    process = subprocess.Popen([sys.executable, "-m", "nocctl", *args], stdin=subprocess.DEVNULL, stdout=slave,
                               stderr=slave, env=env, close_fds=True)
    os.close(slave)
    received = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the process has gone and closed the terminal
                break
            if not chunk:
                break
            received += chunk
        code = process.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    return code, bytes(received)


@pytest.fixture
def env(db_url):
    """The environment of a nocctl process on the test database; NO_COLOR, so that any
    escape sequence on the terminal is one that leaked (log colours would be nocctl's own)."""
    return {**os.environ, "NOC_DATABASE_URL": db_url, "NO_COLOR": "1"}


@pytest.fixture
def hostile(admin_cli):
    """Alerts whose message carries ESC, OSC 52 and C1 (one of them 20,000 characters long),
    and an incident whose title carries them."""
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    long_message = ("x" + HOSTILE) * (20_000 // (len(HOSTILE) + 1))
    records = ndjson(alert(entity="cam-01", message=HOSTILE), alert(entity="cam-02", message=long_message))
    result = admin_cli("ingest", "-", input=records)
    assert result.exit_code == 0, result.stderr
    ids = {row["message"]: row["id"] for row in json.loads(admin_cli("alert", "list", "--format", "json").stdout)}
    result = admin_cli("incident", "create", "--title", TITLE, "--alert", str(ids[HOSTILE]))
    assert result.exit_code == 0, result.stderr
    return {"message": HOSTILE, "long": long_message, "short_id": str(ids[HOSTILE]),
            "long_id": str(ids[long_message]), "incident_id": result.stdout.strip()}


# ---------------------------------------------------------------- on a real terminal

@pytest.mark.parametrize("args", [["alert", "list"], ["alert", "show", "short_id"], ["incident", "list"],
                                  ["incident", "show", "incident_id"]])
def test_control_characters_reach_the_terminal_escaped(hostile, env, args):
    code, received = on_terminal([hostile.get(a, a) for a in args], env)
    assert code == 0, received.decode(errors="replace")
    assert leaks(received) == []
    text = received.decode()
    if args[0] == "alert":
        assert SHOWN in text
    else:
        assert TITLE_SHOWN in text


def test_the_long_message_is_shown_whole_and_escaped(hostile, env):
    code, received = on_terminal(["alert", "show", hostile["long_id"]], env)
    assert code == 0 and leaks(received) == []
    shown = output.printable(hostile["long"])
    assert len(shown) > 20_000 and shown in received.decode()


def test_json_keeps_the_exact_data_and_is_terminal_safe_too(hostile, admin_cli, env):
    listed = json.loads(admin_cli("alert", "list", "--format", "json").stdout)
    assert {row["message"] for row in listed} == {hostile["message"], hostile["long"]}
    shown = json.loads(admin_cli("alert", "show", hostile["short_id"], "--format", "json").stdout)
    assert shown["message"] == hostile["message"]
    lines = admin_cli("alert", "list", "--format", "ndjson").stdout.splitlines()
    assert {json.loads(line)["message"] for line in lines} == {hostile["message"], hostile["long"]}
    incident = json.loads(admin_cli("incident", "show", hostile["incident_id"], "--format", "json").stdout)
    assert incident["title"] == TITLE
    assert json.loads(admin_cli("incident", "list", "--format", "json").stdout)[0]["title"] == TITLE
    # JSON writes every control character as an escape (\u001b, \u009b): exact once
    # decoded, and harmless on a terminal.
    code, received = on_terminal(["alert", "list", "--format", "json"], env)
    assert code == 0 and leaks(received) == []
    assert {row["message"] for row in json.loads(received.replace(b"\r\n", b"\n"))} == {
        hostile["message"], hostile["long"]}


def test_csv_on_a_terminal_is_escaped_and_exact_in_a_file(hostile, admin_cli, env, tmp_path):
    code, received = on_terminal(["alert", "list", "--format", "csv"], env)
    assert code == 0 and leaks(received) == []
    assert SHOWN in received.decode()
    target = tmp_path / "alerts.csv"
    assert admin_cli("alert", "list", "--format", "csv", "-o", str(target)).exit_code == 0
    with target.open(newline="", encoding="utf-8") as handle:
        assert {row["message"] for row in csv.DictReader(handle)} == {hostile["message"], hostile["long"]}


def test_error_lines_and_notes_carry_data_escaped(hostile, env, tmp_path):
    # The tenant name and the database path are in the messages as they were typed.
    code, received = on_terminal(["--tenant", f"t{ESC_CLEAR}x", "alert", "list"], env)
    assert code == 3 and leaks(received) == []
    assert b"nocctl: error: " in received and b"t\\x1b[2Jx" in received
    missing = tmp_path / f"no{OSC52}where" / "noc.db"
    code, received = on_terminal(["--db", f"sqlite:///{missing}", "alert", "list"], env)
    assert code == 3 and leaks(received) == []
    assert b"no\\x1b]52;c;ZXZpbA==\\x07where" in received
    # An ingest reject names the record's site; the console log line is on the terminal too.
    records = tmp_path / "bad.ndjson"
    records.write_text(ndjson(alert(site=f"S{ESC_CLEAR}{C1_CSI}", message=HOSTILE)))
    code, received = on_terminal(["--log-format", "console", "ingest", str(records)], env)
    # nocctl's own sequence: the progress line is cleared (CR, erase to the end of the line)
    assert code == 65 and leaks(received.replace(b"\r\x1b[K", b"\r")) == []
    assert b"rejected: unknown site 'S\\x1b[2J\\x9b'" in received and b"ingest summary" in received
    # A note naming the file it wrote (as typed: no repr of its own).
    target = tmp_path / f"mttr{ESC_CLEAR}{C1_CSI}.csv"
    code, received = on_terminal(["report", "mttr", "--days", "7", "-o", str(target)], env)
    assert code == 0 and target.exists() and leaks(received) == []
    assert b"nocctl: wrote the mttr report (csv) to " in received and b"mttr\\x1b[2J\\x9b.csv" in received


def test_result_lines_naming_data_are_escaped(admin_cli, env):
    org = {"clients": [{"code": "EVIL", "name": f"Evil {OSC52}Corp"}],
           "sites": [{"code": "EVIL-1", "name": f"Depot {ESC_CLEAR}", "client": "EVIL", "city": f"Pune{C1_CSI}",
                      "state": "Maharashtra"}]}
    result = admin_cli("org", "import", "-", input=json.dumps(org))
    assert result.exit_code == 0, result.stderr
    code, received = on_terminal(["org", "tree"], env)
    assert code == 0 and leaks(received) == []
    text = received.decode()
    assert "EVIL  Evil \\x1b]52;c;ZXZpbA==\\x07Corp" in text and "Pune\\x9b" in text and "Depot \\x1b[2J" in text


def test_an_error_line_stays_one_line(admin_cli):
    result = admin_cli("--tenant", "two\nlines\tand\rmore", "alert", "list")
    assert result.exit_code == 3
    [line] = result.stderr.splitlines()
    assert line.startswith("nocctl: error: ") and "two\\nlines\\tand\\rmore" in line


# ---------------------------------------------------------------- console log lines

def test_console_log_lines_escape_every_string(capsys):
    log.configure("console", 0)
    log.get().warning(f"refused {ESC_CLEAR}", record=HOSTILE, nested={"m": OSC52}, lines="a\nb")
    err = capsys.readouterr().err
    assert leaks(err.encode()) == [] and len(err.splitlines()) == 1
    # a value holding a control character is shown by its repr, quoted and escaped
    assert "refused \\x1b[2J" in err and f"record='{SHOWN}'" in err and "lines='a\\nb'" in err
    assert "nested={'m': '\\x1b]52;c;ZXZpbA==\\x07'}" in err


def test_json_log_lines_keep_the_data(capsys):
    log.configure("json", 0)
    log.get().warning("refused", record=HOSTILE)
    err = capsys.readouterr().err
    assert leaks(err.encode()) == [] and json.loads(err)["record"] == HOSTILE


# ---------------------------------------------------------------- the escape itself

def unescape(shown: str) -> str:
    """The reading `printable` promises: `\\\\` a backslash; `\\xHH`, `\\n`, `\\t`, `\\r`
    the character; any other backslash itself."""
    named = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    out, i = [], 0
    while i < len(shown):
        if shown[i] == "\\" and i + 1 < len(shown) and shown[i + 1] in named:
            out.append(named[shown[i + 1]])
            i += 2
        elif shown[i] == "\\" and i + 1 < len(shown) and shown[i + 1] == "x":
            out.append(chr(int(shown[i + 2:i + 4], 16)))
            i += 4
        else:
            out.append(shown[i])
            i += 1
    return "".join(out)


def test_every_control_character_is_escaped_and_nothing_else():
    for code in range(0xa0):
        char = chr(code)
        if char in "\t\n":
            assert output.printable(char) == char
            assert output.printable(char, one_line=True) == ("\\t" if char == "\t" else "\\n")
        elif code < 0x20 or code >= 0x7f:
            expected = "\\r" if char == "\r" else f"\\x{code:02x}"
            assert output.printable(char) == output.printable(char, one_line=True) == expected
            assert output.line(char) == expected
        else:
            assert output.printable(char) == char
    assert output.printable("Grüße, 東京, emoji 🚨, «quotes»") == "Grüße, 東京, emoji 🚨, «quotes»"


def test_backslashes_stay_readable_and_the_output_unambiguous():
    assert output.printable("C:\\Program Files\\nocctl") == "C:\\Program Files\\\\nocctl"
    assert output.printable("disk D:\\ full") == "disk D:\\ full"
    # the four characters \x1b are not shown as an escaped ESC
    assert output.printable("\\x1b") == "\\\\x1b" != output.printable("\x1b") == "\\x1b"
    assert output.printable("\\\x1b") == "\\\\\\x1b"
    # messages quote values Python-style already: their backslashes are left alone
    assert output.line(f"no client {'X' + ESC_CLEAR!r}") == "no client 'X\\x1b[2J'"
    rng = random.Random(14)
    alphabet = "\\xntr01ab \t\n\r\x1b\x07\x7f\x9b\x85é"
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        for one_line in (False, True):
            shown = output.printable(text, one_line=one_line)
            assert unescape(shown) == text, (text, shown)
            assert not any((ord(c) < 0x20 and c not in "\t\n") or 0x7f <= ord(c) < 0xa0 for c in shown)
            if one_line:
                assert "\n" not in shown and "\t" not in shown


def test_table_cells_are_one_line_and_show_keeps_lines():
    rows = [{"id": 1, "message": f"a{ESC_CLEAR}\nb\tc", "meta": {"k": C1_CSI}}]
    table = output.render_rows(rows, ("id", "message", "meta"), "table")
    # one line a row; a structure is its JSON (which escaped the C1 itself), not escaped twice
    assert len(table.splitlines()) == 3 and "a\\x1b[2J\\nb\\tc" in table and '{"k": "\\u009b"}' in table
    shown = output.render_object(rows[0], "table")
    assert shown == 'id       1\nmessage  a\\x1b[2J\n         b\tc\nmeta     {"k": "\\u009b"}\n'
    assert leaks(shown.encode()) == [] and leaks(table.encode()) == []


# ---------------------------------------------------------------- CSV (OWASP)

FORMULAS = ["=cmd|' /C calc'!A0", "+1", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1+1"]


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised():
    rows = [{"cell": value, "n": -5, "x": 2.5} for value in FORMULAS]
    rows += [{"cell": "-5", "n": 0, "x": -0.5}, {"cell": "safe =1", "n": 1, "x": None}]
    parsed = list(csv.reader(io.StringIO(output.render_rows(rows, ("cell", "n", "x"), "csv"), newline="")))
    assert [r[0] for r in parsed[1:]] == ["'" + v for v in FORMULAS] + ["'-5", "safe =1"]
    # numbers stay numbers
    assert [r[1] for r in parsed[1:]] == ["-5"] * len(FORMULAS) + ["0", "1"]
    assert [r[2] for r in parsed[1:]] == ["2.5"] * len(FORMULAS) + ["-0.5", ""]
    # only CSV: JSON and the table show the data as it is
    assert json.loads(output.render_rows(rows, ("cell",), "json"))[0]["cell"] == FORMULAS[0]
    assert "=cmd|' /C calc'!A0" in output.render_rows(rows, ("cell",), "table")


def test_csv_exports_of_alerts_and_people_are_neutralised(admin_cli, tmp_path):
    assert admin_cli("org", "import", str(ORG)).exit_code == 0
    entities = FORMULAS[:4]
    result = admin_cli("ingest", "-", input=ndjson(*(alert(entity=e, message=e) for e in entities)))
    assert result.exit_code == 0, result.stderr
    for name, formula in (("tab", FORMULAS[4]), ("cr", FORMULAS[5])):
        result = admin_cli("user", "add", name, "--name", formula)
        assert result.exit_code == 0, result.stderr
    target = tmp_path / "alerts.csv"
    assert admin_cli("alert", "list", "--format", "csv", "-o", str(target)).exit_code == 0
    with target.open(newline="", encoding="utf-8") as handle:
        exported = list(csv.DictReader(handle))
    assert sorted(r["entity_id"] for r in exported) == sorted("'" + e for e in entities)
    assert sorted(r["message"] for r in exported) == sorted("'" + e for e in entities)
    assert {r["duplicate_count"] for r in exported} == {"0"}
    people = {r["username"]: r for r in csv.DictReader(io.StringIO(
        admin_cli("user", "list", "--format", "csv").stdout, newline=""))}
    assert people["tab"]["name"] == "'" + FORMULAS[4] and people["cr"]["name"] == "'" + FORMULAS[5]
    listed = json.loads(admin_cli("alert", "list", "--format", "json").stdout)
    assert sorted(r["entity_id"] for r in listed) == sorted(entities)  # the data itself is untouched


def test_report_csv_cells_are_neutralised():
    from nocctl.reporting.flat import _cell

    assert _cell("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert _cell(-3) == -3 and _cell(0.5) == 0.5 and _cell(None) == "" and _cell("ACME") == "ACME"
