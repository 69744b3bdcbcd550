"""Client helpers for tests against ``conftest.torchserve_prod`` (production config, token auth on).

Shared by test_security, test_metrics_logs and test_disk_growth: authenticated inference calls, small
test images, a Prometheus text parser and the handlers' JSON log records.
"""

from __future__ import annotations

import functools
import io
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import requests
from PIL import Image

DAG = "/wfpredict/thaiplate"
PIPE = "/predictions/pipeline"
REAL_SMOKE = Path("/work/shared/real-smoke")
_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Labels = frozenset[tuple[str, str]]


def auth_headers(server, key: str = "inference") -> dict[str, str]:
    token = server.token.get(key)
    return {"Authorization": f"Bearer {token}"} if token else {}


def infer(server, path: str, body: bytes, *, headers: dict[str, str] | None = None, timeout: float = 60,
          content_type: str = "image/jpeg") -> requests.Response:  # fmt: skip
    """POST ``body`` to the inference API with the inference key."""
    all_headers = {"Content-Type": content_type, **auth_headers(server), **(headers or {})}
    return requests.post(server.inference_url + path, data=body, headers=all_headers, timeout=timeout)


@functools.cache
def small_jpeg(seed: int = 0, size: tuple[int, int] = (160, 96)) -> bytes:
    """A small picture: a real plate crop when ../shared/real-smoke exists (plates found), else noise."""
    crops = sorted(REAL_SMOKE.glob("*.jpg"))
    if crops:
        return crops[seed % len(crops)].read_bytes()
    rgb = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def scrape(server) -> dict[tuple[str, Labels], float]:
    """``GET :metrics/metrics`` -> {(sample name, labels without Hostname): value}."""
    r = requests.get(f"http://127.0.0.1:{server.ports.metrics}/metrics", timeout=10)
    r.raise_for_status()
    out: dict[tuple[str, Labels], float] = {}
    for line in r.text.splitlines():
        m = _SAMPLE.match(line.strip())
        if m and not line.startswith("#"):
            labels = frozenset((k, v) for k, v in _LABEL.findall(m.group(2) or "") if k != "Hostname")
            out[(m.group(1), labels)] = float(m.group(3))
    return out


def sample(metrics: dict[tuple[str, Labels], float], name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


def log_records(server) -> list[dict]:
    """Every ``thaiplate.request`` JSON line in the server's captured log (printed bare by log4j2.xml)."""
    records = []
    for line in Path(server.log_file).read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith('{"event":"thaiplate.request"'):
            records.append(json.loads(line))
    return records


def wait_for(check: Callable[[], object], timeout: float = 20.0, every: float = 0.3) -> object:
    """Poll until ``check()`` is truthy: worker stdout reaches the frontend asynchronously."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(every)
