"""Memory of a whole process tree, sampled from /proc (Linux; no dependency).

`TreeSampler(pid)` walks the tree under `pid` (its children, as the kernel lists them in
/proc/PID/task/*/children, recursively) every `interval` seconds and keeps the peak of the
sum of RSS, the peak of the sum of PSS (/proc/PID/smaps_rollup: a page shared by n
processes counts 1/n in each, so a forked child's copy-on-write pages are not counted twice
as RSS does), and per process the peaks of RSS, PSS and the kernel's own high-water mark
(VmHWM, which also sees a peak between two samples). `run_measured` runs a command under a
sampler and returns its exit code, wall time, rusage (os.wait4: ru_maxrss is the largest
single process among it and the children it reaped, and on Linux it also counts the
forked copy of the caller before the exec, so it overstates a small command) and the
machine's load meanwhile.

Used by benchmarks/ingest.py.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def children(pid: int) -> list[int]:
    """The direct children of `pid` (every thread's), [] when it is gone."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        with contextlib.suppress(OSError):
            found.extend(int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split())
    return found


def tree(root: int) -> list[int]:
    """`root` and all its descendants, root first."""
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in pids:
            continue
        pids.append(pid)
        todo.extend(children(pid))
    return pids


def _fields(path: str, wanted: tuple[str, ...]) -> dict[str, int]:
    """kB values of `Name:   123 kB` lines; {} when the process is gone or a zombie."""
    values: dict[str, int] = {}
    try:
        with open(path) as handle:
            for line in handle:
                name, _, rest = line.partition(":")
                if name in wanted:
                    values[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return {}
    return values


def memory(pid: int) -> dict[str, int] | None:
    """RSS, VmHWM, PSS (and its anonymous and file parts) of one process in kB."""
    status = _fields(f"/proc/{pid}/status", ("VmRSS", "VmHWM"))
    if "VmRSS" not in status:
        return None  # gone, or a zombie
    rollup = _fields(f"/proc/{pid}/smaps_rollup", ("Pss", "Pss_Anon", "Pss_File", "Pss_Shmem"))
    return {"rss": status["VmRSS"], "hwm": status.get("VmHWM", 0), "pss": rollup.get("Pss", 0),
            "pss_anon": rollup.get("Pss_Anon", 0), "pss_file": rollup.get("Pss_File", 0)}


@dataclass
class ProcessPeak:
    pid: int
    label: str
    first_seen: float
    rss: int = 0
    pss: int = 0
    hwm: int = 0


@dataclass
class TreePeaks:
    samples: int = 0
    rss: int = 0  # kB, peak of the sum
    pss: int = 0  # kB, peak of the sum
    rss_at: float = 0.0  # seconds after the start
    pss_at: float = 0.0
    pss_anon_at_peak: int = 0
    pss_file_at_peak: int = 0
    processes_at_peak: int = 0
    max_processes: int = 0
    load_max: float = 0.0  # 1-minute load average, highest seen
    processes: dict[int, ProcessPeak] = field(default_factory=dict)
    series: list[tuple[float, int, int, int]] = field(default_factory=list)  # (t, sum rss, sum pss, n)


class TreeSampler(threading.Thread):
    def __init__(self, root: int, interval: float = 0.05, label: str = "root", child_label: str = "child"):
        super().__init__(daemon=True, name="tree-sampler")
        self.root, self.interval, self.label, self.child_label = root, interval, label, child_label
        self.started = time.perf_counter()
        self.peaks = TreePeaks()
        self.halt = threading.Event()

    def sample(self) -> None:
        now = time.perf_counter() - self.started
        p = self.peaks
        total = {"rss": 0, "pss": 0, "pss_anon": 0, "pss_file": 0}
        alive = 0
        for pid in tree(self.root):
            m = memory(pid)
            if m is None:
                continue
            alive += 1
            for k in total:
                total[k] += m[k]
            peak = p.processes.get(pid)
            if peak is None:
                label = self.label if pid == self.root else f"{self.child_label} (pid {pid})"
                peak = p.processes[pid] = ProcessPeak(pid, label, now)
            peak.rss, peak.pss, peak.hwm = max(peak.rss, m["rss"]), max(peak.pss, m["pss"]), max(peak.hwm, m["hwm"])
        if not alive:
            return
        p.samples += 1
        p.max_processes = max(p.max_processes, alive)
        p.series.append((now, total["rss"], total["pss"], alive))
        if total["rss"] > p.rss:
            p.rss, p.rss_at = total["rss"], now
        if total["pss"] > p.pss:
            p.pss, p.pss_at = total["pss"], now
            p.pss_anon_at_peak, p.pss_file_at_peak, p.processes_at_peak = total["pss_anon"], total["pss_file"], alive
        with contextlib.suppress(OSError):
            p.load_max = max(p.load_max, float(Path("/proc/loadavg").read_text().split()[0]))

    def run(self) -> None:
        while not self.halt.is_set():
            started = time.perf_counter()
            self.sample()
            self.halt.wait(max(0.0, self.interval - (time.perf_counter() - started)))

    def stop(self) -> TreePeaks:
        self.halt.set()
        self.join()
        return self.peaks


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already in user
    return total - idle, total


@dataclass
class Measured:
    returncode: int
    elapsed: float
    rusage: object  # resource.struct_rusage of the command (and the children it reaped)
    peaks: TreePeaks
    load_before: str
    load_after: str
    machine_busy_cores: float  # average over the run, every process on the machine
    tree_cpu_seconds: float  # user + system of the command and its reaped children


def run_measured(argv: list[str], interval: float = 0.05, label: str = "root", child_label: str = "child",
                 **popen) -> Measured:
    """Run `argv` (Popen keyword arguments as given), sampling its tree until it exits."""
    load_before = Path("/proc/loadavg").read_text().strip()
    busy0, total0 = cpu_times()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, **popen)
    sampler = TreeSampler(proc.pid, interval, label, child_label)
    sampler.started = started
    sampler.start()
    try:
        _, status, rusage = os.wait4(proc.pid, 0)  # reaps it: the sampler then sees it gone
    except BaseException:
        proc.kill()
        proc.wait()
        sampler.stop()
        raise
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    peaks = sampler.stop()
    busy1, total1 = cpu_times()
    cores = os.cpu_count() or 1
    return Measured(proc.returncode, elapsed, rusage, peaks, load_before, Path("/proc/loadavg").read_text().strip(),
                    cores * (busy1 - busy0) / max(total1 - total0, 1), rusage.ru_utime + rusage.ru_stime)
