"""thaiplate.bench.stats on known inputs: percentiles agree with numpy, errors, stalls, ratios."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from thaiplate.bench import stats

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "values",
    [[5.0], [1.0, 2.0], [3.0, 1.0, 2.0, 10.0], list(np.random.default_rng(0).gamma(2.0, 10.0, 257))],
)
@pytest.mark.parametrize("q", [0, 1, 25, 50, 90, 99, 99.9, 100])
def test_percentile_matches_numpy_linear(values, q):
    assert stats.percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)


def test_percentile_known_values_and_bounds():
    xs = [10.0, 20.0, 30.0, 40.0, 50.0]
    assert stats.percentile(xs, 50) == 30.0
    assert stats.percentile(xs, 90) == pytest.approx(46.0)  # pos 3.6 -> 40 + 0.6 * 10
    assert math.isnan(stats.percentile([], 50))
    with pytest.raises(ValueError):
        stats.percentile(xs, 101)


def test_summarize():
    s = stats.summarize([float(v) for v in range(1, 101)])  # 1..100
    assert (s.n, s.mean, s.max) == (100, 50.5, 100.0)
    assert s.p50 == pytest.approx(50.5)
    assert s.p90 == pytest.approx(90.1)
    assert s.p99 == pytest.approx(99.01)
    assert s.p50 <= s.p90 <= s.p99 <= s.max
    empty = stats.summarize([])
    assert empty.n == 0 and math.isnan(empty.p50)


def test_error_counting_and_rate():
    outcomes = [(200, True), (200, False), (503, True), (None, True), (204, True), (400, True)]
    assert [stats.is_error(s, ok) for s, ok in outcomes] == [False, True, True, True, False, True]
    assert stats.count_errors(outcomes) == 4
    assert stats.error_rate(4, 6) == pytest.approx(2 / 3)
    assert stats.error_rate(0, 0) == 0.0
    with pytest.raises(ValueError):
        stats.error_rate(3, 2)


def test_throughput():
    assert stats.throughput(50, 2.0) == 25.0
    assert stats.throughput(10, 0.0) == 0.0


def test_node_timeouts_from_the_real_workflow_yaml():
    spec = yaml.safe_load((ROOT / "archive" / "workflow.yaml").read_text(encoding="utf-8"))
    timeouts = stats.node_timeouts(spec)
    assert set(timeouts) == {"detector", "recognizer", "classifier"}
    default = float(spec["models"]["timeout-ms"])
    for node, t in timeouts.items():
        assert t == float(spec["models"][node].get("timeout-ms", default))


def test_node_timeouts_override_and_default():
    spec = {"models": {"timeout-ms": 2000, "batch-size": 4, "a": {"url": "a.mar", "timeout-ms": 3000}, "b": {"url": "b.mar"}}}
    assert stats.node_timeouts(spec) == {"a": 3000.0, "b": 2000.0}
    assert stats.node_timeouts({"models": {"c": {"url": "c.mar"}}}) == {"c": stats.DEFAULT_TIMEOUT_MS}


def test_stall_detection_band_and_above():
    t = {"detector": 3000.0, "recognizer": 2000.0, "classifier": 2000.0}
    assert stats.stall_node(40.0, t) is None
    assert stats.stall_node(1699.0, t) is None
    assert stats.stall_node(1700.0, t) in {"recognizer", "classifier"}  # -15 % edge of the 2 s band
    assert stats.stall_node(2300.0, t) in {"recognizer", "classifier"}  # +15 % edge
    assert stats.stall_node(2400.0, t) == "above"  # past 2 s, between the bands
    assert stats.stall_node(2550.0, t) == "detector"
    assert stats.stall_node(3100.0, t) == "detector"
    assert stats.stall_node(9000.0, t) == "above"
    assert stats.stall_node(5000.0, {}) is None


def test_count_stalls():
    t = {"detector": 3000.0, "recognizer": 2000.0}
    lat = [30.0, 35.0, 2010.0, 41.0, 3020.0, 1990.0, 7000.0, 1000.0]
    c = stats.count_stalls(lat, t)
    assert c.total == 4
    assert c.by_node == {"above": 1, "detector": 1, "recognizer": 2}
    assert stats.count_stalls([], t).total == 0


def test_ratios():
    assert stats.ratio(30.0, 20.0) == 1.5
    assert math.isnan(stats.ratio(1.0, 0.0))
    assert math.isnan(stats.ratio(math.nan, 2.0))
    r = stats.overhead_ratios({"inprocess": 20.0, "dag": 30.0, "pipeline": 24.0}, "inprocess")
    assert r == {"dag": 1.5, "pipeline": 1.2}


def test_counter_delta_and_mean():
    before = {"a": 100.0, "b": 5.0}
    after = {"a": 160.0, "b": 5.0, "c": 7.0}
    assert stats.counter_delta(before, after) == {"a": 60.0, "b": 0.0, "c": 7.0}
    assert stats.mean_from_counters(60_000.0, 3.0) == 20_000.0
    assert math.isnan(stats.mean_from_counters(10.0, 0.0))
