"""thaiplate.bench without a server: driver bounds, loopback guard, metrics parsing, PSS sampling."""

from __future__ import annotations

import math
import os
import socket
import threading

import pytest

from thaiplate.bench import load, memory, report
from thaiplate.bench.payloads import Payload

# verbatim shape of TorchServe 0.12 `GET :8082/metrics` with metrics_mode=prometheus (trimmed)
PROM = """\
# HELP ts_inference_latency_microseconds Cumulative inference duration in microseconds
# TYPE ts_inference_latency_microseconds counter
ts_inference_latency_microseconds{model_name="thaiplate__detector",model_version="default",hostname="vm",} 71031.588
ts_inference_latency_microseconds{model_name="pipeline",model_version="default",hostname="vm",} 69261.937
# TYPE ts_inference_requests_total counter
ts_inference_requests_total{model_name="pipeline",model_version="default",hostname="vm",} 3.0
# TYPE ts_queue_latency_microseconds counter
ts_queue_latency_microseconds{model_name="thaiplate__detector",model_version="default",hostname="vm",} 15632.758000000002
ts_queue_latency_microseconds{model_name="pipeline",model_version="default",hostname="vm",} 231.716
PredictionTime{ModelName="pipeline",Level="Model",Hostname="vm",} 9.14
"""

PAYLOADS = [Payload("a", b"x", 1280, 720), Payload("b", b"y", 640, 480)]


class FakeClient:
    """Answers 200 with a fixed body; every third request of payload "b" fails with 503."""

    calls = 0
    lock = threading.Lock()

    def send(self, payload: Payload) -> load.Answer:
        with self.lock:
            FakeClient.calls += 1
            n = FakeClient.calls
        if payload.name == "b" and n % 3 == 0:
            return load.Answer(503, False, "busy")
        return load.Answer(200, True)

    def close(self) -> None:
        pass


def test_parse_prometheus_and_model_times():
    before = {}
    after = load.parse_prometheus(PROM)
    assert after[("ts_inference_latency_microseconds", "thaiplate__detector")] == pytest.approx(71031.588)
    assert ("PredictionTime", "pipeline") not in after
    times = load.model_times(before, after, requests_sent=3)
    assert set(times) == {"pipeline", "thaiplate__detector"}
    # pipeline: its own request counter; the DAG node: the requests sent (no counter for nodes in 0.12)
    assert times["pipeline"].jobs == 3.0
    assert times["pipeline"].queue_ms == pytest.approx(231.716 / 3 / 1000)
    assert times["pipeline"].model_ms == pytest.approx((69261.937 - 231.716) / 3 / 1000)
    assert times["thaiplate__detector"].jobs == 3.0


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:8080", "http://127.9.9.9"])
def test_loopback_allowed(url):
    load.check_loopback(url)


@pytest.mark.parametrize("url", ["http://10.0.0.5:8080", "http://example.com", "https://0.0.0.0:8080"])
def test_remote_refused_unless_allowed(url):
    with pytest.raises(load.RemoteTargetError):
        load.check_loopback(url)
    load.check_loopback(url, allow_remote=True)


def test_result_ok():
    assert load.result_ok(b'{"plates": []}')
    assert load.result_ok(b'[{"plates": []}, {"plates": [1]}]')
    assert not load.result_ok(b'{"error": {"code": "x"}}')
    assert not load.result_ok(b"not json")
    assert not load.result_ok(b"[]")


def test_run_level_is_bounded_by_count_and_summarised():
    FakeClient.calls = 0
    run = load.run_level(FakeClient, PAYLOADS, concurrency=3, max_requests=30, max_duration_s=60)
    assert len(run.records) == 30
    assert [r.index for r in run.records] == list(range(30))
    assert [r.payload for r in run.records[:4]] == ["a", "b", "a", "b"]  # payloads cycle in order
    res = load.summarize_level("fake", "/x", run, {"n": 2000.0})
    assert res.requests == 30 and res.errors == sum(1 for r in run.records if not r.ok) > 0
    assert res.throughput_rps > 0 and res.latency.n == 30 - res.errors
    assert res.stalls.total == 0
    assert "1280x720" in res.p50_by_size
    table = report.markdown_table([res])
    assert table.count("\n") == 2 and "| fake | 3 | 30 |" in table


def test_run_level_is_bounded_by_time():
    run = load.run_level(FakeClient, PAYLOADS, concurrency=2, max_requests=10**9, max_duration_s=0.2)
    assert 0 < len(run.records) < 10**9


def test_in_process_errors_are_counted():
    class Broken:
        def run(self, data: bytes):
            raise ValueError("bad image")

    ans = load.InProcessClient(Broken()).send(PAYLOADS[0])
    assert ans.status is None and not ans.ok and "bad image" in (ans.error or "")


def test_pss_of_own_process_tree():
    procs = memory.snapshot(os.getpid())
    assert procs and procs[0].pid == os.getpid()
    assert all(p.pss_kb > 0 and p.rss_kb >= p.pss_kb for p in procs)
    with memory.PssSampler(os.getpid(), interval=0.05) as s:
        _ = bytearray(8 << 20)
    summary = s.summary()
    assert summary.samples >= 2 and summary.peak_pss_mb >= summary.idle_pss_mb > 0
    assert memory.process_tree(2**22 + 12345) == []


def test_listener_pid_finds_our_socket():
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        assert load.listener_pid(srv.getsockname()[1]) == os.getpid()


def test_report_json_has_no_nan(tmp_path):
    report.write_json(tmp_path / "r.json", {"a": math.nan, "b": [1.0, math.nan]})
    assert (tmp_path / "r.json").read_text().split() == ['{', '"a":', 'null,', '"b":', '[', '1.0,', 'null', ']', '}']
