"""Pure parts of the reliability tools: soak growth arithmetic and the reading an answer is judged by."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from thaiplate.bench import readings, soak, stats


def test_growth_averages_the_ends_of_the_window_only():
    times = [0, 10, 20, 30, 40, 50, 60, 70]
    values = [50, 100, 100, 102, 101, 103, 104, 105]  # warm-up step at the start must not count
    g = stats.growth(times, values, from_s=20, k=2)
    assert g.samples == 6 and g.start == pytest.approx(101) and g.end == pytest.approx(104.5)
    assert g.pct == pytest.approx(100 * 3.5 / 101)
    assert g.slope_per_s == pytest.approx(0.0943, abs=1e-3)


def test_growth_of_too_short_a_window_is_nan():
    g = stats.growth([0, 10], [1.0, 2.0], from_s=5)
    assert g.samples == 1 and math.isnan(g.pct) and math.isnan(g.slope_per_s)


def test_reading_ignores_confidences_and_subpixel_boxes():
    doc = {
        "plates": [{"box": [1.2, 2.6, 100.4, 40.0], "text": "1กข 1234", "text_confidence": 0.5,
                    "province": {"code": "TH-10", "confidence": 0.9}}],
        "image": {"width": 320, "height": 240}, "timings_ms": {"total": 3.0},
    }  # fmt: skip
    a = readings.reading(json.dumps(doc).encode())
    doc["plates"][0].update(text_confidence=0.51, box=[1.4, 2.7, 100.3, 40.1])
    doc["timings_ms"]["total"] = 9.0
    assert a == readings.reading(json.dumps(doc).encode())
    assert a.texts == ["1กข 1234"] and a.plates[0][1] == "TH-10" and (a.width, a.height) == (320, 240)
    doc["image"]["width"] = 321  # another request's answer
    assert a != readings.reading(json.dumps(doc).encode())


@pytest.mark.parametrize("body", [b"", b"{}", b'{"error": {"code": "empty"}}', b"[]", b"not json"])
def test_reading_of_a_non_result_is_none(body):
    assert readings.reading(body) is None


def _fake_process(proc: Path, pid: int, ppid: int, argv: list[str], anon_kb: int) -> None:
    d = proc / str(pid)
    d.mkdir(parents=True)
    (d / "stat").write_text(f"{pid} ({Path(argv[0]).name[:15]}) S {ppid} 1 1 0 -1\n")
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    (d / "smaps_rollup").write_text(
        f"00400000-7fff0000 ---p 00000000 00:00 0 [rollup]\nRss: {2 * anon_kb} kB\nPss: {anon_kb} kB\n"
        f"Anonymous: {anon_kb} kB\n"
    )


def test_soak_sampler_splits_the_jvm_from_the_python_processes(tmp_path):
    """The leak verdict is on the Python side; the JVM (dev config: lazily growing G1 heap) is reported apart."""
    _fake_process(tmp_path, 100, 1, ["/venv/bin/python", "-m", "thaiplate.serving.server"], 1000)
    _fake_process(tmp_path, 101, 100, ["/usr/bin/java", "-cp", "ts.jar"], 5000)
    _fake_process(
        tmp_path,
        102,
        101,
        ["/venv/bin/python", "ts/model_service_worker.py", "--sock-name", "/tmp/.ts.sock.9000"],
        3000,
    )
    _fake_process(tmp_path, 200, 1, ["/usr/bin/java", "-cp", "other.jar"], 9999)  # not in the tree
    sampler = soak.TimedSampler(100, 1.0, proc=tmp_path)
    sampler.sample()
    assert sampler.anon_kb == [9000] and sampler.jvm_anon_kb == [5000]
