"""``scripts/measure-memory --levers``: what each memory lever saves, every lever in isolation.

A lever is a change to the production server: config lines (``config.prod.properties`` keys, e.g.
``number_of_netty_threads``), JVM flags added to or removed from its ``vmargs``, or environment
variables (glibc, OpenBLAS, ``THAIPLATE_ORT_*`` for :class:`thaiplate.runtime.OrtOptions`). Each
lever runs as its own server next to a baseline (the production config as committed) in the same
run, so the deltas are read against numbers from the same minutes; the baseline runs first and last,
and the difference between those two is the noise floor. PSS is robust to the CPU load of others
(it counts pages, not time); the p50 and req/s columns are not.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from thaiplate.bench.memory_cli import MemoryReport

ROOT = Path(__file__).resolve().parents[2]
PROD_CONFIG = ROOT / "config.prod.properties"


@dataclass(frozen=True)
class Lever:
    name: str
    what: str
    config: dict[str, str] = field(default_factory=dict)  # extra config lines (win over the file's)
    add_vm: tuple[str, ...] = ()  # JVM flags appended to the production vmargs
    drop_vm: tuple[str, ...] = ()  # prefixes of production JVM flags to remove ("*": all of them)
    env: dict[str, str] = field(default_factory=dict)
    preload: tuple[str, ...] = ()  # modules every Python process imports at start (via sitecustomize)

    def overrides(self, prod_vmargs: str) -> dict[str, str]:
        """Config overrides for this lever, with ``vmargs`` rewritten when it touches JVM flags."""
        out = dict(self.config)
        if self.add_vm or self.drop_vm:
            kept = [
                f for f in prod_vmargs.split() if not any(d == "*" or f.startswith(d) for d in self.drop_vm)
            ]
            out["vmargs"] = " ".join([*kept, *self.add_vm])
        return out

    def environ(self, tmp: Path) -> dict[str, str]:
        """``env``, plus a ``sitecustomize.py`` in ``tmp`` put first on ``PYTHONPATH`` for ``preload``."""
        if not self.preload:
            return dict(self.env)
        (tmp / "sitecustomize.py").write_text(
            "".join(f"import {m}\n" for m in self.preload), encoding="utf-8"
        )
        path = os.pathsep.join(p for p in (str(tmp), os.environ.get("PYTHONPATH", "")) if p)
        return {**self.env, "PYTHONPATH": path}


def _env(name: str, what: str, **env: str) -> Lever:
    return Lever(name, what, env=env)


BASELINE = Lever("baseline", "production config as committed")

# Levers against the production config; those adopted (server.PROD_ENV: no ORT arena + fixed glibc mmap
# threshold; -Xms8m) appear as their reversal. Measured results: docs/benchmarks/MEMORY.md.

LEVERS: tuple[Lever, ...] = (
    Lever("jvm: no flags", "TorchServe's default JVM (no vmargs at all)", drop_vm=("*",)),
    Lever("jvm: default heap", "without -Xmx96m", drop_vm=("-Xmx",)),
    Lever("jvm: -Xmx48m", "heap capped at 48 MiB instead of 96", drop_vm=("-Xmx",), add_vm=("-Xmx48m",)),
    Lever("jvm: G1", "without -XX:+UseSerialGC (G1, the default)", drop_vm=("-XX:+UseSerialGC",)),
    Lever("jvm: C2", "without -XX:TieredStopAtLevel=1", drop_vm=("-XX:TieredStopAtLevel",)),
    Lever("jvm: code cache", "without -XX:ReservedCodeCacheSize=32m", drop_vm=("-XX:ReservedCodeCacheSize",)),
    Lever("jvm: stacks", "without -Xss512k", drop_vm=("-Xss",)),
    Lever("jvm: metaspace", "without -XX:MaxMetaspaceSize=64m", drop_vm=("-XX:MaxMetaspaceSize",)),
    Lever("jvm: -Xshare:off", "no class-data sharing archive", add_vm=("-Xshare:off",)),
    Lever(
        "jvm: heap shrink",
        "-XX:MinHeapFreeRatio=10 -XX:MaxHeapFreeRatio=20 (return heap after GC)",
        add_vm=("-XX:MinHeapFreeRatio=10", "-XX:MaxHeapFreeRatio=20"),
    ),
    Lever(
        "jvm: netty 1 arena",
        "Netty pooled allocator with 1 heap + 1 direct arena",
        add_vm=("-Dio.netty.allocator.numHeapArenas=1", "-Dio.netty.allocator.numDirectArenas=1"),
    ),
    Lever(
        "jvm: no -Xms8m", "initial heap left to the JVM (1/64 of the host's RAM, <= -Xmx)", drop_vm=("-Xms",)
    ),
    Lever("jvm: -Xmx64m", "heap capped at 64 MiB instead of 96", drop_vm=("-Xmx",), add_vm=("-Xmx64m",)),
    Lever(
        "netty: 1+1 threads",
        "number_of_netty_threads=1, netty_client_threads=1 (prod: 2+2)",
        config={"number_of_netty_threads": "1", "netty_client_threads": "1"},
    ),
    _env("MALLOC_ARENA_MAX=2", "glibc: at most 2 malloc arenas per process", MALLOC_ARENA_MAX="2"),
    _env("OpenBLAS 1 thread", "numpy's and cv2's BLAS pools", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1"),
    _env(
        "ORT: arena on",
        "enable_cpu_mem_arena=True (prod: off, with server.PROD_ENV)",
        THAIPLATE_ORT_ARENA="1",
    ),
    _env("ORT: no mem pattern", "enable_mem_pattern=False", THAIPLATE_ORT_MEM_PATTERN="0"),
    _env("ORT: no prepacking", "session.disable_prepacking=1", THAIPLATE_ORT_PREPACK="0"),
    _env(
        "ORT: extended opt",
        "graph optimisation EXTENDED (no NCHWc layouts; prod: ALL)",
        THAIPLATE_ORT_OPT="extended",
    ),
    _env("ORT: default threads", "intra_op_num_threads=0 (ORT picks; prod: 1)", THAIPLATE_ORT_THREADS="0"),
    Lever(
        "eager OpenCV", "every worker imports cv2 at start (the DAG's later nodes do not)", preload=("cv2",)
    ),
)


def prod_vmargs(path: Path = PROD_CONFIG) -> str:
    m = re.search(r"(?m)^vmargs=(.*)$", path.read_text(encoding="utf-8"))
    return m.group(1).strip() if m else ""


def select(names: str) -> list[Lever]:
    """``all`` or a comma-separated list of lever names (or unique prefixes of them); the whole list is
    checked before anything runs."""
    if names == "all":
        return list(LEVERS)
    out = []
    for want in (n.strip() for n in names.split(",") if n.strip()):
        hits = [lv for lv in LEVERS if lv.name == want] or [lv for lv in LEVERS if lv.name.startswith(want)]
        if len(hits) != 1:
            raise ValueError(
                f"lever {want!r}: {'ambiguous' if hits else 'unknown'}; known: {[lv.name for lv in LEVERS]}"
            )
        out.append(hits[0])
    return out


@dataclass
class LeverRun:
    lever: Lever
    mode: str
    report: MemoryReport

    def to_dict(self) -> dict:
        return {"lever": asdict(self.lever), "mode": self.mode, "report": self.report.to_dict()}


def run_all(
    levers: Sequence[Lever],
    modes: Sequence[str],
    measure: Callable[..., MemoryReport],
    log: Callable[[str], None] = print,
) -> list[LeverRun]:
    """Baseline, each lever, baseline again, per mode; ``measure(mode, overrides=, environ=)``."""
    vm = prod_vmargs()
    runs = []
    for mode in modes:
        for lever in (BASELINE, *levers, BASELINE):
            with tempfile.TemporaryDirectory(prefix="thaiplate-lever-") as tmp:
                rep = measure(mode, overrides=lever.overrides(vm), environ=lever.environ(Path(tmp)))
            runs.append(LeverRun(lever, mode, rep))
            log(
                f"{mode:8s} {lever.name:28s} PSS idle {rep.idle_total_mb:6.1f} peak {rep.peak_total_mb:6.1f}  "
                f"unique idle {rep.idle_unique_mb or 0:6.1f} peak {rep.peak_unique_mb or 0:6.1f} MB  "
                f"p50 {rep.p50_ms:6.1f} ms  {rep.throughput_rps:5.1f} req/s  errors {rep.errors}"
            )
    return runs


COLUMNS = ("idle PSS", "peak PSS", "idle uniq", "peak uniq", "Δ peak uniq", "p50 ×")


def _cells(rep: MemoryReport | None, base: MemoryReport) -> list[str]:
    if rep is None:
        return ["–"] * len(COLUMNS)
    nan = float("nan")
    peak_u, base_u = rep.peak_unique_mb or nan, base.peak_unique_mb or nan
    return [
        f"{rep.idle_total_mb:.0f}",
        f"{rep.peak_total_mb:.0f}",
        f"{rep.idle_unique_mb or nan:.0f}",
        f"{peak_u:.0f}",
        f"{peak_u - base_u:+.0f}",
        f"{rep.p50_ms / base.p50_ms:.2f}",
    ]


def _pick(runs: list[LeverRun], name: str, mode: str, index: int = 0) -> MemoryReport | None:
    reps = [r.report for r in runs if r.lever.name == name and r.mode == mode]
    return reps[index] if reps else None


def table(runs: list[LeverRun]) -> str:
    """One row per lever and per mode: idle/peak PSS, idle/peak unique MB (every page once, see
    :func:`thaiplate.bench.memory.unique_kb`), the peak delta against the first baseline and the p50
    ratio to it; the last row is the baseline run again (its delta is the noise floor)."""
    modes = list(dict.fromkeys(r.mode for r in runs))
    what = {r.lever.name: r.lever.what for r in runs}
    base = {m: _pick(runs, BASELINE.name, m) for m in modes}
    head = "| lever | what | " + " | ".join(f"{m} {c}" for m in modes for c in COLUMNS) + " |"
    rows = [head, "|" + "---|" * (2 + len(COLUMNS) * len(modes))]
    keys = [(n, 0, n) for n in what] + [(BASELINE.name, -1, "baseline (again, last)")]
    for name, index, label in keys:
        cells = [c for m in modes if base[m] for c in _cells(_pick(runs, name, m, index), base[m])]
        rows.append(f"| {label} | {what[name]} | " + " | ".join(cells) + " |")
    return "\n".join(rows)
