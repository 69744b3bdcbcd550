"""``thaiplate bench`` against the REAL TorchServe of the session (tests/conftest.py ``torchserve``).

A smoke run, not a benchmark: 2 warm-up + 2 x 20 requests to the DAG (<= 50 in all), then the report
must exist and be sane. No timing thresholds: the machine is shared.
"""

from __future__ import annotations

import json

import pytest

from thaiplate.cli import main

pytestmark = pytest.mark.server


def test_bench_smoke_dag(torchserve, tmp_path):
    out = tmp_path / "bench"
    rc = main([
        "bench", "--url", torchserve.inference_url, "--endpoint", "/wfpredict/thaiplate",
        "--concurrency", "1,4", "--requests", "20", "--duration", "120", "--warmup", "2",
        "--scenes", "4", "--metrics-url", f"http://127.0.0.1:{torchserve.ports.metrics}/metrics",
        "--out", str(out), "--fail-on-error",
    ])  # fmt: skip
    assert rc == 0
    assert (out / "report.md").read_text().count("| dag |") == 2
    assert (out / "latency.png").stat().st_size > 1000
    doc = json.loads((out / "report.json").read_text())
    assert doc["server_pid"] == torchserve.java_pid()  # found as the owner of the inference port
    assert [lv["concurrency"] for lv in doc["levels"]] == [1, 4]
    for lv in doc["levels"]:
        lat = lv["latency_ms"]
        assert lv["requests"] == 20 and lv["errors"] == 0 and lv["error_rate"] == 0
        assert lv["throughput_rps"] > 0
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert lat["mean"] <= lat["max"]
        assert lv["memory"]["peak_pss_mb"] >= lv["memory"]["idle_pss_mb"] > 0
        roles = {p["name"] for p in lv["memory"]["peak_processes"]}
        assert "java" in roles and sum(r.startswith("worker") for r in roles) >= 3
        assert lv["stalls"]["total"] >= 0
