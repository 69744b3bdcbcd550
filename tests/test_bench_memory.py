"""Memory tooling without a server: smaps breakdown, page-unique totals, levers, ORT options."""

from __future__ import annotations

import os

import pytest

from thaiplate.bench import memory, memory_levers
from thaiplate.bench.memory_cli import MemoryReport
from thaiplate.runtime import OrtOptions, session_options


def test_by_mapping_of_own_process():
    rows = memory.by_mapping(os.getpid(), top=5)
    assert 0 < len(rows) <= 5
    assert [r.pss_kb for r in rows] == sorted((r.pss_kb for r in rows), reverse=True)
    assert memory.by_mapping(2**22 + 12345) == []


def test_unique_counts_each_page_once():
    me = memory.unique_kb([os.getpid()])
    if me is None:
        pytest.skip("PFNs hidden (not root)")
    rss = memory.read_rollup(os.getpid())["Rss"]
    assert abs(me - rss) < 0.05 * rss  # one process: every resident page once = RSS
    assert memory.unique_kb([os.getpid(), os.getpid()]) == pytest.approx(me, rel=0.05)


def test_lever_rewrites_vmargs_and_env(tmp_path):
    prod = "-Xmx96m -Xss512k -XX:+UseSerialGC"
    lv = memory_levers.Lever("x", "y", drop_vm=("-Xmx",), add_vm=("-Xmx48m",), config={"a": "1"})
    assert lv.overrides(prod) == {"a": "1", "vmargs": "-Xss512k -XX:+UseSerialGC -Xmx48m"}
    assert memory_levers.Lever("x", "y", drop_vm=("*",)).overrides(prod) == {"vmargs": ""}
    assert memory_levers.BASELINE.overrides(prod) == {}
    env = memory_levers.Lever("x", "y", preload=("cv2",), env={"K": "v"}).environ(tmp_path)
    assert env["K"] == "v" and env["PYTHONPATH"].split(os.pathsep)[0] == str(tmp_path)
    assert (tmp_path / "sitecustomize.py").read_text() == "import cv2\n"


def test_select_levers():
    assert memory_levers.select("all") == list(memory_levers.LEVERS)
    assert [lv.name for lv in memory_levers.select("ORT: arena on,jvm: G1")] == ["ORT: arena on", "jvm: G1"]
    with pytest.raises(ValueError, match="unknown"):
        memory_levers.select("no such lever")
    with pytest.raises(ValueError, match="ambiguous"):
        memory_levers.select("jvm")


def _report(mode: str, idle: float, peak: float, p50: float) -> MemoryReport:
    return MemoryReport(mode, 10, 4, 0, idle, peak, [], [], None, 3, idle + 10, peak + 10, p50)


def test_lever_table_deltas_against_first_baseline():
    base, lever = memory_levers.BASELINE, memory_levers.LEVERS[0]
    runs = [
        memory_levers.LeverRun(base, "dag", _report("dag", 300, 350, 100)),
        memory_levers.LeverRun(lever, "dag", _report("dag", 280, 320, 110)),
        memory_levers.LeverRun(base, "dag", _report("dag", 301, 352, 100)),
    ]
    lines = memory_levers.table(runs).splitlines()
    assert len(lines) == 2 + 3
    assert lines[3].startswith(f"| {lever.name} |") and "| 330 | -30 | 1.10 |" in lines[3]
    assert lines[4].startswith("| baseline (again, last) |") and "| +2 |" in lines[4]


def test_ort_options_from_env():
    assert OrtOptions.from_env({}) == OrtOptions()
    o = OrtOptions.from_env(
        {"THAIPLATE_ORT_ARENA": "0", "THAIPLATE_ORT_THREADS": "2", "THAIPLATE_ORT_OPT": "basic"}
    )
    assert (o.mem_arena, o.threads, o.optimization) == (False, 2, "basic")
    assert o.but(threads=None, mem_arena=True) == OrtOptions(threads=2, mem_arena=True, optimization="basic")
    pytest.importorskip("onnxruntime")
    so = session_options(OrtOptions(mem_arena=False, mem_pattern=False, prepacking=False))
    assert so.enable_cpu_mem_arena is False and so.enable_mem_pattern is False
    assert so.get_session_config_entry("session.disable_prepacking") == "1"
