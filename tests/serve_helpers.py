"""Helpers of the `nocctl serve` tests: a real server process on a free port, plain HTTP
requests to it, and a load client run as a separate process
(`python tests/serve_helpers.py URL KEY PREFIX COUNT SITE`)."""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

NOCCTL = [sys.executable, "-m", "nocctl"]
ROOT = Path(__file__).resolve().parent.parent


def clean_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOC_")}
    env.update(NOC_CONFIG=os.devnull, XDG_DATA_HOME=str(tmp / "data"), XDG_CONFIG_HOME=str(tmp / "config"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`nocctl serve` as a child process; its stderr (the JSON log) goes to a file."""

    def __init__(self, db_url: str, tmp: Path, *args: str, port: int | None = None):
        self.db_url, self.tmp, self.args = db_url, tmp, args
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp / f"serve-{self.port}-{time.monotonic_ns()}.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> Server:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child holds it; closed with the file object's end
        self.process = subprocess.Popen(
            [*NOCCTL, "--db", self.db_url, "serve", "--listen", f"127.0.0.1:{self.port}", *self.args],
            stdout=subprocess.DEVNULL, stderr=log, env=clean_env(self.tmp))
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"nocctl serve exited {self.process.returncode}: {self.log()}")
            try:
                if request(self.port, "GET", "/-/ready", timeout=2)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"nocctl serve not ready after {timeout} s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[dict]:
        out = []
        for line in self.log().splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def request(port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
            timeout: float = 30) -> tuple[int, dict[str, str], Any]:
    """(status, headers, body parsed as JSON when it is) of one request on a new connection."""
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        try:
            parsed: Any = json.loads(data)
        except ValueError:
            parsed = data.decode(errors="replace")
        return response.status, {k.lower(): v for k, v in response.getheaders()}, parsed
    finally:
        conn.close()


# Load events are 11 minutes apart (back from now), beyond the correlation window of each
# other: an event then has at most a few alerts to correlate with. (All at once at one site,
# an alert storm, each batch's correlation reads every active alert of the site within the
# window: `correlation.plan`.)
SPACING = timedelta(minutes=11)


def pd_event(key: str, dedup_key: str, site: str, i: int = 0, at: datetime | None = None) -> dict:
    payload = {"summary": f"load {dedup_key}", "severity": "warning", "source": f"dev-{i}", "group": site,
               "class": "LOAD_TEST"}
    if at is not None:
        payload["timestamp"] = at.isoformat()
    return {"routing_key": key, "event_action": "trigger", "dedup_key": dedup_key, "payload": payload}


def load_client(url: str, key: str, prefix: str, count: int, site: str) -> None:
    """Send `count` single-event PagerDuty requests (dedup keys PREFIX-0 …) on one
    keep-alive connection; print `ok KEY` for each answered 2xx, `status N KEY` for other
    answers, and stop at the first connection error (the server went away)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    out = []
    now = datetime.now(UTC)
    for i in range(count):
        dedup_key = f"{prefix}-{i}"
        body = json.dumps(pd_event(key, dedup_key, site, i, now - i * SPACING))
        try:
            conn.request("POST", "/v2/enqueue", body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            out.append(f"error {type(exc).__name__} {dedup_key}")
            break
        out.append(f"ok {dedup_key}" if 200 <= response.status < 300 else f"status {response.status} {dedup_key}")
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
    sys.stdout.write("\n".join(out) + "\n")


def spawn_clients(server: Server, key: str, prefix: str, clients: int, count: int, site: str,
                  same_keys: bool = False) -> list:
    """`clients` load client processes at once; each its own keys (PREFIXn-i) unless `same_keys`."""
    script = str(Path(__file__).resolve())
    return [subprocess.Popen([sys.executable, script, server.url, key, prefix if same_keys else f"{prefix}{n}",
                              str(count), site],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(server.tmp))
            for n in range(clients)]


def client_results(procs: list, timeout: float = 120) -> tuple[set[str], list[str]]:
    """(dedup keys answered 2xx, the other lines) of the load clients."""
    accepted: set[str] = set()
    other: list[str] = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err
        for line in out.splitlines():
            if line.startswith("ok "):
                accepted.add(line[3:])
            elif line:
                other.append(line)
    return accepted, other


if __name__ == "__main__":
    load_client(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
