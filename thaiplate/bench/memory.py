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
    anon_kb: int = 0  # Anonymous: heaps and arenas, where a leak lives (unlike PSS, not shared with other servers)


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


@dataclass(frozen=True)
class MappingMemory:
    """One mapped object of a process (a shared library, ``[heap]``, anonymous memory, ...)."""

    mapping: str
    rss_kb: int
    pss_kb: int
    private_dirty_kb: int


def by_mapping(pid: int, top: int = 10, proc: Path = PROC) -> list[MappingMemory]:
    """Where a process's PSS is: ``/proc/PID/smaps`` grouped by file basename (anonymous memory as
    ``[anon]``), largest PSS first. Shows which libraries dominate a worker (cv2, ONNX Runtime, ...)."""
    try:
        lines = (proc / str(pid) / "smaps").read_text().splitlines()
    except OSError:
        return []
    sums: dict[str, list[int]] = {}
    cur: list[int] = [0, 0, 0]
    wanted = {"Rss:": 0, "Pss:": 1, "Private_Dirty:": 2}
    for line in lines:
        parts = line.split()
        if parts and not parts[0].endswith(":"):  # a header line: "start-end perms offset dev inode [path]"
            name = os.path.basename(parts[5]) if len(parts) > 5 else "[anon]"
            cur = sums.setdefault(name or parts[5], [0, 0, 0])
        elif parts and parts[0] in wanted:
            cur[wanted[parts[0]]] += int(parts[1])
    rows = [MappingMemory(k, *v) for k, v in sums.items()]
    return sorted(rows, key=lambda m: -m.pss_kb)[:top]


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
        out.append(ProcessMemory(pid, info[0], name, roll.get("Rss", 0), roll.get("Pss", 0), roll.get("Anonymous", 0)))
    return out


def total_pss_kb(procs: list[ProcessMemory]) -> int:
    return sum(p.pss_kb for p in procs)


PAGE = os.sysconf("SC_PAGE_SIZE")
PFN_MASK = (1 << 55) - 1
PRESENT = 1 << 63


def _pfns(pid: int, proc: Path = PROC) -> list[bytes]:
    """Raw ``/proc/PID/pagemap`` entries of every mapping of ``pid`` (8 bytes per virtual page)."""
    out = []
    try:
        maps = (proc / str(pid) / "maps").read_text().splitlines()
        with open(proc / str(pid) / "pagemap", "rb", buffering=0) as f:
            for line in maps:
                lo, hi = (int(x, 16) // PAGE for x in line.split(None, 1)[0].split("-"))
                if "[vsyscall]" in line:
                    continue
                f.seek(lo * 8)
                out.append(f.read((hi - lo) * 8))
    except (OSError, ValueError):
        pass
    return out


def unique_kb(pids: list[int], proc: Path = PROC) -> int | None:
    """Resident memory of a set of processes with every physical page counted ONCE (needs root).

    This is what the sum of PSS means inside a container where nothing else maps the same files; on a
    shared machine other servers running the same venv split the library pages with ours, and PSS then
    under-counts. Reads each process's ``pagemap`` (PFNs are visible to CAP_SYS_ADMIN only): ``None``
    when they are hidden.
    """
    import numpy as np

    chunks = [np.frombuffer(b, dtype=np.uint64) for pid in pids for b in _pfns(pid, proc) if b]
    if not chunks:
        return None
    entries = np.concatenate(chunks)
    present = entries[(entries & np.uint64(PRESENT)) != 0] & np.uint64(PFN_MASK)
    if present.size and not present.any():
        return None  # PFNs hidden (not root)
    return int(np.unique(present).size) * PAGE // 1024


@dataclass
class MemorySummary:
    """What a run reports: the tree's PSS at the start (idle), its peak and mean, and the processes at
    the peak sample."""

    samples: int = 0
    idle_pss_mb: float = 0.0
    peak_pss_mb: float = 0.0
    mean_pss_mb: float = 0.0
    idle_unique_mb: float | None = None  # see :func:`unique_kb`; None unless root
    peak_unique_mb: float | None = None
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
        self,
        root_pid: int,
        interval: float = 0.5,
        names: Mapping[int, str] | None = None,
        proc: Path = PROC,
        unique: bool = False,
        unique_every: int = 0,
    ) -> None:
        """``unique``: also read :func:`unique_kb` at the first and the last sample, and at every
        ``unique_every``-th one if > 0 (tens of ms per process: too slow for every sample)."""
        self.root_pid, self.interval, self.names, self.proc = root_pid, interval, names, proc
        self.unique, self.unique_every = unique, unique_every
        self.uniques: list[tuple[int, int]] = []  # (unique kB, PSS kB) of the same sample
        self.totals: list[int] = []
        self.last: list[ProcessMemory] = []  # the latest sample's processes
        self._peak: list[ProcessMemory] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self, unique: bool = False) -> int:
        procs = snapshot(self.root_pid, self.names, self.proc)
        total = total_pss_kb(procs)
        if procs:
            self.last = procs
            if not self.totals or total > max(self.totals):
                self._peak = procs
            self.totals.append(total)
            u = unique_kb([p.pid for p in procs], self.proc) if unique else None
            if u is not None:
                self.uniques.append((u, total))
        return total

    def start(self) -> PssSampler:
        self.sample(self.unique)
        self._thread = threading.Thread(target=self._loop, name="pss-sampler", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        n = 0
        while not self._stop.wait(self.interval):
            n += 1
            self.sample(self.unique and self.unique_every > 0 and n % self.unique_every == 0)

    def stop(self) -> MemorySummary:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample(self.unique)
        return self.summary()

    def summary(self) -> MemorySummary:
        """``peak_unique_mb``: the largest unique sample when there were samples during the run (a
        lower bound of the true peak); with only the first and last, an estimate: peak PSS plus
        (unique - PSS) of the last sample, since what PSS misses is library pages other servers also
        map (other servers starting and stopping during the run make that estimate noisy)."""
        if not self.totals:
            return MemorySummary()
        mb = 1024.0
        return MemorySummary(
            samples=len(self.totals),
            idle_pss_mb=self.totals[0] / mb,
            peak_pss_mb=max(self.totals) / mb,
            mean_pss_mb=sum(self.totals) / len(self.totals) / mb,
            idle_unique_mb=self.uniques[0][0] / mb if self.uniques else None,
            peak_unique_mb=self._peak_unique() / mb if self.uniques else None,
            peak_processes=list(self._peak),
        )

    def _peak_unique(self) -> int:
        if len(self.uniques) > 2:
            return max(u for u, _ in self.uniques)
        return max(self.totals) + self.uniques[-1][0] - self.uniques[-1][1]

    def __enter__(self) -> PssSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
