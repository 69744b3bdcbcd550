"""Disk growth (issue 7): on Cloud Run the writable filesystem is RAM, so anything the server writes per
request is a memory leak that ends in an OOM restart. 1,000 mixed requests (DAG and pipeline; raw
JPEG, multipart, JSON base64, bad input) at concurrency 4 against the production config
(conftest.torchserve_prod) must leave the directories it writes to the size they had after warm-up.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from prod_client import DAG, PIPE, auth_headers, small_jpeg

REQUESTS = 1000
WARMUP = 40
CONCURRENCY = 4
TOLERANCE_BYTES = 64 * 1024  # a rewritten pid/config file or a lazily created small file, not a trend
TOLERANCE_FILES = 4


@dataclass(frozen=True)
class Usage:
    bytes: int
    files: int

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.bytes - other.bytes, self.files - other.files)


def usage(root: Path) -> Usage:
    """Allocated bytes (st_blocks, what a RAM filesystem costs) and file count below ``root``."""
    total = files = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue  # removed while walking
            total += st.st_blocks * 512
            files += 1
    return Usage(total, files)


def writable_dirs(server) -> dict[str, Path]:
    """Where a running server writes: its working directory (= run dir: key file, config, pid file),
    the temp dir TorchServe unpacks archives into, the logs dir, and the model store."""
    run = Path(server.run_dir)
    return {"run dir (cwd)": run, "tmp (unpacked archives)": run / "tmp", "logs": run / "logs",
            "model store": run.parent / "model_store"}  # fmt: skip


def request_mix(i: int) -> tuple[str, dict]:
    """Request ``i``: every other one DAG; mostly raw JPEGs, plus multipart, JSON and a bad body."""
    path, img = (DAG if i % 2 else PIPE), small_jpeg(i)
    kind = i % 10
    if kind == 7:
        return path, {"files": [("a", ("a.jpg", img, "image/jpeg")), ("b", ("b.jpg", small_jpeg(i + 1), "image/jpeg"))]}
    if kind == 8:
        body = json.dumps({"image": base64.b64encode(img).decode()}).encode()
        return path, {"data": body, "headers": {"Content-Type": "application/json"}}
    if kind == 9:
        return path, {"data": b"not an image " * 50, "headers": {"Content-Type": "image/jpeg"}}
    return path, {"data": img, "headers": {"Content-Type": "image/jpeg"}}


def server_cpu_seconds(server) -> float:
    """CPU time used so far by the server's Java frontend and Python workers (for the CI-time estimate)."""
    from conftest import server_processes

    total = 0
    for pid in server_processes(Path(server.run_dir)):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def send(server, indices: range) -> list[int]:
    local = threading.local()

    def one(i: int) -> int:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        path, kw = request_mix(i)
        headers = {**auth_headers(server), **kw.pop("headers", {})}
        return local.session.post(server.inference_url + path, headers=headers, timeout=60, **kw).status_code

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        return list(pool.map(one, indices))


@pytest.mark.server
def test_a_thousand_requests_do_not_grow_the_writable_dirs(torchserve_prod, capsys):
    dirs = writable_dirs(torchserve_prod)
    start = {name: usage(d) for name, d in dirs.items()}
    send(torchserve_prod, range(WARMUP))
    warm = {name: usage(d) for name, d in dirs.items()}
    cpu0, t0 = server_cpu_seconds(torchserve_prod), time.monotonic()
    statuses = send(torchserve_prod, range(WARMUP, WARMUP + REQUESTS))
    cpu, wall = server_cpu_seconds(torchserve_prod) - cpu0, time.monotonic() - t0
    after = {name: usage(d) for name, d in dirs.items()}
    bad = [s for s in statuses if s not in (200, 400)]
    assert not bad, f"{len(bad)} unexpected statuses: {sorted(set(bad))}"
    with capsys.disabled():
        print(f"\n{REQUESTS} requests in {wall:.0f} s wall, server CPU {cpu:.0f} s; disk (bytes allocated, files):")
        for name in dirs:
            grew = after[name] - warm[name]
            print(f"  {name:24} start {start[name].bytes:>11,} B  warm {warm[name].bytes:>11,} B  "
                  f"after {after[name].bytes:>11,} B  growth {grew.bytes:+,} B {grew.files:+} files")  # fmt: skip
    for name in dirs:
        grew = after[name] - warm[name]
        assert grew.bytes <= TOLERANCE_BYTES and grew.files <= TOLERANCE_FILES, (name, warm[name], after[name])
