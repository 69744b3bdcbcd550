"""Memory of a process tree from ``/proc``: the one sampler used by ``thaiplate bench``,
``scripts/benchmark`` and ``scripts/measure-memory``.

Why PSS and not RSS: the TorchServe workers are separate Python processes that map the same shared
libraries (numpy, OpenCV, ONNX Runtime) and the JVM maps its own; RSS counts every shared page once
per process, so summing RSS over the tree over-counts. PSS splits each shared page between its
sharers, so the sum of PSS over the tree is what the tree really costs (what a container limit sees,
up to page cache). ``smaps_rollup`` gives it in one read per process (Linux >= 4.14).

The tree is re-walked at every sample: TorchServe restarts a crashed worker with a new pid, and a
worker that is missing from a sample would make memory look lower than it is.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    ppid: int
    name: str  # short role: "java", "worker:<model>", or the executable name
    rss_kb: int
    pss_kb: int


def _ppid_and_comm(pid: int, proc: Path = PROC) -> tuple[int, str] | None:
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    # comm is in parentheses and may contain spaces or ')'; the fields after the last ')' are fixed
    close = stat.rfind(")")
    comm = stat[stat.find("(") + 1 : close]
    rest = stat[close + 2 :].split()
    return int(rest[1]), comm


def process_tree(root: int, proc: Path = PROC) -> list[int]:
    """``root`` and all its live descendants (one scan of ``/proc``), root first."""
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        info = _ppid_and_comm(int(entry.name), proc)
        if info:
            children.setdefault(info[0], []).append(int(entry.name))
    if not (proc / str(root)).exists():
        return []
    out, seen, stack = [], set(), [root]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        out.append(pid)
        stack.extend(sorted(children.get(pid, []), reverse=True))
    return out


def read_rollup(pid: int, proc: Path = PROC) -> dict[str, int]:
    """``/proc/PID/smaps_rollup`` as ``{field: kB}`` (empty if the process is gone or unreadable)."""
    try:
        text = (proc / str(pid) / "smaps_rollup").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
            out[parts[0][:-1]] = int(parts[1])
    return out


def role(pid: int, proc: Path = PROC) -> str:
    """A readable name: the JVM, a TorchServe worker and its model, or the executable name."""
    try:
        argv = (proc / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    args = [a.decode(errors="replace") for a in argv if a]
    if not args:
        return "?"
    exe = os.path.basename(args[0])
    if exe == "java":
        return "java"
    if any(a.endswith("model_service_worker.py") for a in args):
        # workers are started with the model's socket name only; the model name is in the log, so
        # fall back to the socket port (stable for the worker's life)
        for i, a in enumerate(args):
            if a == "--sock-name" and i + 1 < len(args):
                return f"worker:{os.path.basename(args[i + 1])}"
        return "worker"
    if any("model_server.py" in a or a.endswith("torchserve") for a in args):
        return "torchserve-launcher"
    return exe


def snapshot(root: int, names: Mapping[int, str] | None = None, proc: Path = PROC) -> list[ProcessMemory]:
    """RSS and PSS of every live process in the tree under ``root``; ``names`` overrides roles by pid
    (e.g. TorchServe worker pid -> model name from the management API)."""
    out = []
    for pid in process_tree(root, proc):
        roll = read_rollup(pid, proc)
        info = _ppid_and_comm(pid, proc)
        if not roll or info is None:
            continue  # exited between the walk and the read
        name = f"worker:{names[pid]}" if names and pid in names else role(pid, proc)
        out.append(ProcessMemory(pid, info[0], name, roll.get("Rss", 0), roll.get("Pss", 0)))
    return out


def total_pss_kb(procs: list[ProcessMemory]) -> int:
    return sum(p.pss_kb for p in procs)


@dataclass
class MemorySummary:
    """What a run reports: the tree's PSS at the start (idle), its peak and mean, and the processes at
    the peak sample."""

    samples: int = 0
    idle_pss_mb: float = 0.0
    peak_pss_mb: float = 0.0
    mean_pss_mb: float = 0.0
    peak_processes: list[ProcessMemory] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["peak_processes"] = [asdict(p) for p in self.peak_processes]
        return d


class PssSampler:
    """Samples the tree's total PSS every ``interval`` s in a daemon thread, between start() and stop().

    The first sample is taken synchronously in :meth:`start`, so ``idle_pss_mb`` is the tree before the
    load (call ``start`` while the server is idle). Reading ``smaps_rollup`` walks the page tables of
    each process (~1 ms for a 300 MB worker), so the default 0.5 s interval costs < 1 % of a core.
    """

    def __init__(
        self, root_pid: int, interval: float = 0.5, names: Mapping[int, str] | None = None, proc: Path = PROC
    ) -> None:
        self.root_pid, self.interval, self.names, self.proc = root_pid, interval, names, proc
        self.totals: list[int] = []
        self._peak: list[ProcessMemory] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> int:
        procs = snapshot(self.root_pid, self.names, self.proc)
        total = total_pss_kb(procs)
        if procs:
            if not self.totals or total > max(self.totals):
                self._peak = procs
            self.totals.append(total)
        return total

    def start(self) -> PssSampler:
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="pss-sampler", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> MemorySummary:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()
        return self.summary()

    def summary(self) -> MemorySummary:
        if not self.totals:
            return MemorySummary()
        mb = 1024.0
        return MemorySummary(
            samples=len(self.totals),
            idle_pss_mb=self.totals[0] / mb,
            peak_pss_mb=max(self.totals) / mb,
            mean_pss_mb=sum(self.totals) / len(self.totals) / mb,
            peak_processes=list(self._peak),
        )

    def __enter__(self) -> PssSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

