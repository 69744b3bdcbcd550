"""The load driver: N client threads, each with one keep-alive connection, bounded in count and time.

Why a thread pool over ``http.client`` and not locust or an async client:

- locust (headless) is the well-kept tool, but it is heavy (gevent, greenlet, flask, pyzmq: ~15 MB of
  wheels next to its 1.5 MB own) and gevent monkey-patches sockets and threads process-wide, which
  would also patch the in-process baseline and the TorchServe start/stop in the same run; its
  percentiles are rounded into buckets, so they could not match numpy's. It must not go into the
  serving venv either, so it would need a third venv.
- At the concurrencies that matter here (1-8 in flight, <= a few hundred requests/s) one OS thread per
  in-flight request costs nothing measurable, and "concurrency" then means exactly "requests in
  flight", one connection each, which is what TorchServe's queue sees. ``http.client`` is the
  leanest client in the standard library (no dependency, ~0.1 ms of client CPU per request against
  ~0.5 ms for ``requests``), and an asyncio client would only add an event loop to the measurement.
- The client threads are pinned to other cores than the server (``pinned``), so the client's own CPU
  does not appear in the server's latency.

Closed loop by default (each thread sends its next request when the previous one answers); with
``rate`` the arrival times are fixed in advance (request i at ``i / rate`` s) and latency is measured
from the scheduled time, so a slow server is not hidden by the client waiting for it (coordinated
omission).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import itertools
import json
import math
import os
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from thaiplate.bench import stats
from thaiplate.bench.payloads import Payload

# ------------------------------------------------------------------------------ targets


class RemoteTargetError(ValueError):
    pass


def check_loopback(url: str, allow_remote: bool = False) -> None:
    """Refuse to load-test anything but this machine unless explicitly allowed.

    Only a literal loopback address or ``localhost`` passes: a DNS name could resolve elsewhere.
    """
    host = urllib.parse.urlsplit(url).hostname or ""
    if allow_remote:
        return
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise RemoteTargetError(f"{url}: not a loopback address; pass --allow-remote to load-test another host")


@dataclass(frozen=True)
class Target:
    url: str  # http://127.0.0.1:8080
    endpoint: str  # /wfpredict/thaiplate
    token: str | None = None
    timeout_s: float = 30.0


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer (connection error, timeout)
    ok: bool  # body is a plate result (or list of them)
    error: str | None = None


class Client(Protocol):
    def send(self, payload: Payload) -> Answer: ...

    def close(self) -> None: ...


def result_ok(body: bytes) -> bool:
    """A 2xx body is only a success if it is the result schema (a dict with ``plates``, or a list)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    items = doc if isinstance(doc, list) else [doc]
    return bool(items) and all(isinstance(d, dict) and "plates" in d for d in items)


class HttpClient:
    """One keep-alive connection; reconnects after an error."""

    def __init__(self, target: Target) -> None:
        parts = urllib.parse.urlsplit(target.url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.target = target
        self.headers = {"Authorization": f"Bearer {target.token}"} if target.token else {}
        self.conn: http.client.HTTPConnection | None = None
        self.last_body = b""  # of the last answer: callers that check more than the schema read it

    def send(self, payload: Payload) -> Answer:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.target.timeout_s)
        try:
            self.conn.request(
                "POST", self.target.endpoint, body=payload.data,
                headers={**self.headers, "Content-Type": payload.content_type},
            )  # fmt: skip
            resp = self.conn.getresponse()
            body = self.last_body = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.last_body = b""
            self.close()
            return Answer(None, False, f"{type(e).__name__}: {e}")
        if not 200 <= resp.status < 300:
            return Answer(resp.status, False, body[:200].decode(errors="replace"))
        ok = result_ok(body)
        return Answer(resp.status, ok, None if ok else f"bad body: {body[:200]!r}")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class InProcessClient:
    """The library called directly: ``Pipeline.run(bytes)`` + the JSON the handler would send."""

    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline

    def send(self, payload: Payload) -> Answer:
        try:
            body = json.dumps(self.pipeline.run(payload.data).to_dict(), ensure_ascii=False).encode()
        except Exception as e:  # noqa: BLE001 - any failure is an error of this request
            return Answer(None, False, f"{type(e).__name__}: {e}")
        return Answer(200, result_ok(body))

    def close(self) -> None:
        pass


# ------------------------------------------------------------------------------- driver


@dataclass(frozen=True)
class Record:
    index: int
    payload: str
    size: str
    start_s: float  # since the level started
    latency_ms: float
    status: int | None
    ok: bool
    error: str | None = None


@dataclass
class LevelRun:
    concurrency: int
    records: list[Record]
    wall_s: float
    rate: float | None = None


def run_level(
    make_client: Callable[[], Client],
    payloads: Sequence[Payload],
    concurrency: int,
    max_requests: int,
    max_duration_s: float,
    rate: float | None = None,
    stop: threading.Event | None = None,
) -> LevelRun:
    """Send up to ``max_requests`` requests (payloads in order, cycling) from ``concurrency`` threads,
    stopping early when ``max_duration_s`` has passed or ``stop`` is set (no new request starts then;
    ``stop`` ends a load whose length depends on what happens meanwhile, e.g. a fault recovery)."""
    if concurrency < 1 or max_requests < 1:
        raise ValueError("concurrency and max_requests must be >= 1")
    if not payloads:
        raise ValueError("no payloads")
    counter = itertools.count()
    lock = threading.Lock()
    records: list[Record] = []
    t0 = time.perf_counter()
    deadline = t0 + max_duration_s

    def worker() -> None:
        client = make_client()
        try:
            while True:
                with lock:
                    i = next(counter)
                if i >= max_requests:
                    return
                scheduled = t0 + i / rate if rate else None
                if scheduled is not None and scheduled > time.perf_counter():
                    time.sleep(scheduled - time.perf_counter())
                start = time.perf_counter()
                if start >= deadline or (stop is not None and stop.is_set()):
                    return
                p = payloads[i % len(payloads)]
                ans = client.send(p)
                end = time.perf_counter()
                origin = scheduled if scheduled is not None else start
                rec = Record(i, p.name, p.size, start - t0, (end - origin) * 1000.0, ans.status, ans.ok, ans.error)
                with lock:
                    records.append(rec)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, name=f"load-{k}", daemon=True) for k in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    records.sort(key=lambda r: r.index)
    return LevelRun(concurrency, records, wall, rate)


@contextlib.contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Run the calling thread (and the threads it starts) on ``cpus``; restore afterwards.

    Linux applies ``sched_setaffinity(0, ...)`` to the calling thread only, and new threads inherit it,
    so this pins the client threads of a level without touching other threads of the process.
    """
    if not cpus or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


# ----------------------------------------------------------------------- server metrics


MetricKey = tuple[str, str]  # (metric name, model_name)
SCRAPED = ("ts_inference_latency_microseconds", "ts_queue_latency_microseconds", "ts_inference_requests_total")


def parse_prometheus(text: str, names: Sequence[str] = SCRAPED) -> dict[MetricKey, float]:
    """``{(name, model_name): value}`` for the given metrics of a Prometheus text exposition."""
    out: dict[MetricKey, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition("{")
        if name not in names or "}" not in rest:
            continue
        labels, _, value = rest.rpartition("}")
        model = ""
        for part in labels.split(","):
            k, _, v = part.partition("=")
            if k.strip() == "model_name":
                model = v.strip().strip('"')
        with contextlib.suppress(ValueError):
            out[(name, model)] = out.get((name, model), 0.0) + float(value.split()[0])
    return out


def scrape(metrics_url: str | None, timeout: float = 5.0) -> dict[MetricKey, float]:
    """One scrape of TorchServe's metrics API; empty when there is none (log mode answers nothing)."""
    if not metrics_url:
        return {}
    try:
        with urllib.request.urlopen(metrics_url, timeout=timeout) as r:
            return parse_prometheus(r.read().decode("utf-8", errors="replace"))
    except OSError:
        return {}


@dataclass(frozen=True)
class ModelTime:
    """TorchServe's own view of one model during a level (means per job, ms).

    ``queue_ms``: job created -> taken by a worker (``ts_queue_latency_microseconds``);
    ``model_ms``: taken by a worker -> answered, i.e. batch window + worker round trip + handler
    (``ts_inference_latency_microseconds`` minus the queue part: the frontend's inference latency
    counts from job creation, so it includes the queue).
    """

    jobs: float
    queue_ms: float
    model_ms: float


def model_times(
    before: Mapping[MetricKey, float], after: Mapping[MetricKey, float], requests_sent: int
) -> dict[str, ModelTime]:
    """Per-model means between two scrapes.

    TorchServe 0.12 counts ``ts_inference_requests_total`` for models called directly but not for
    workflow nodes; a node runs once per workflow request, so the requests sent are its job count
    then (a DAG retry after a timeout makes that a slight under-count, visible as stalls anyway).
    """
    delta = stats.counter_delta(before, after)
    out = {}
    models = {m for (name, m), v in delta.items() if name == "ts_inference_latency_microseconds" and v > 0}
    for m in sorted(models):
        jobs = delta.get(("ts_inference_requests_total", m), 0.0) or float(requests_sent)
        infer = stats.mean_from_counters(delta[("ts_inference_latency_microseconds", m)], jobs) / 1000.0
        queue = stats.mean_from_counters(delta.get(("ts_queue_latency_microseconds", m), 0.0), jobs) / 1000.0
        out[m] = ModelTime(jobs, queue, infer - queue)
    return out


# --------------------------------------------------------------------------- level result


@dataclass
class LevelResult:
    mode: str
    endpoint: str
    concurrency: int
    requests: int
    errors: int
    error_rate: float
    wall_s: float
    throughput_rps: float
    latency: stats.LatencySummary
    p50_by_size: dict[str, float]
    stalls: stats.StallCount
    server: dict[str, ModelTime] = field(default_factory=dict)
    memory: dict | None = None  # MemorySummary.to_dict() of the server tree during the level
    error_samples: list[str] = field(default_factory=list)
    rate: float | None = None

    def to_dict(self) -> dict:
        return {
            "mode": self.mode,
            "endpoint": self.endpoint,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "wall_s": self.wall_s,
            "throughput_rps": self.throughput_rps,
            "rate": self.rate,
            "latency_ms": self.latency.to_dict(),
            "p50_ms_by_size": self.p50_by_size,
            "stalls": self.stalls.to_dict(),
            "server_ms": {m: vars(t) for m, t in self.server.items()},
            "memory": self.memory,
            "error_samples": self.error_samples,
        }


def summarize_level(
    mode: str,
    endpoint: str,
    run: LevelRun,
    timeouts_ms: Mapping[str, float],
    server: dict[str, ModelTime] | None = None,
    memory: dict | None = None,
) -> LevelResult:
    recs = run.records
    errors = stats.count_errors((r.status, r.ok) for r in recs)
    good = [r.latency_ms for r in recs if not stats.is_error(r.status, r.ok)]
    sizes: dict[str, list[float]] = {}
    for r in recs:
        if not stats.is_error(r.status, r.ok):
            sizes.setdefault(r.size, []).append(r.latency_ms)
    by_size = {s: stats.percentile(v, 50) for s, v in sorted(sizes.items()) if "x" in s and len(v) >= 3}
    # stalls are counted over every request that was answered late, errors included: a stall that
    # exhausted its retries is an error *and* a stall
    stall = stats.count_stalls([r.latency_ms for r in recs], timeouts_ms) if timeouts_ms else stats.StallCount(0, {})
    samples = list(dict.fromkeys(r.error for r in recs if r.error))[:3]
    return LevelResult(
        mode=mode,
        endpoint=endpoint,
        concurrency=run.concurrency,
        requests=len(recs),
        errors=errors,
        error_rate=stats.error_rate(errors, len(recs)),
        wall_s=run.wall_s,
        throughput_rps=stats.throughput(len(recs) - errors, run.wall_s),
        latency=stats.summarize(good),
        p50_by_size=by_size,
        stalls=stall,
        server=server or {},
        memory=memory,
        error_samples=samples,
        rate=run.rate,
    )


# ------------------------------------------------------------------------- server lookup


def listener_pid(port: int, proc: str = "/proc") -> int | None:
    """The pid owning the listening TCP socket on ``port`` (the TorchServe JVM for its HTTP port)."""
    inodes = set()
    for table in ("net/tcp", "net/tcp6"):
        try:
            with open(os.path.join(proc, table)) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 9 and f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{f[9]}]")
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir(proc)):
        fd_dir = os.path.join(proc, pid, "fd")
        with contextlib.suppress(OSError):
            for fd in os.listdir(fd_dir):
                with contextlib.suppress(OSError):
                    if os.readlink(os.path.join(fd_dir, fd)) in inodes:
                        return int(pid)
    return None


def mode_of(endpoint: str) -> str:
    if endpoint.startswith("/wfpredict/"):
        return "dag"
    if endpoint.startswith("/predictions/"):
        return endpoint.rstrip("/").rsplit("/", 1)[-1]
    return endpoint.strip("/").replace("/", "-") or "root"


def port_open(url: str, timeout: float = 2.0) -> bool:
    parts = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80), timeout=timeout):
            return True
    except OSError:
        return False


def finite(x: float) -> float | None:
    """JSON has no NaN: missing numbers become null."""
    return None if isinstance(x, float) and math.isnan(x) else x


def measure_level(
    mode: str,
    endpoint: str,
    make_client: Callable[[], Client],
    payloads: Sequence[Payload],
    concurrency: int,
    max_requests: int,
    max_duration_s: float,
    *,
    rate: float | None = None,
    timeouts_ms: Mapping[str, float] | None = None,
    metrics_url: str | None = None,
    server_pid: int | None = None,
    worker_names: Mapping[int, str] | None = None,
    client_cpus: set[int] | None = None,
) -> LevelResult:
    """One level with everything around it: metrics scrape before/after, PSS sampled during."""
    from thaiplate.bench.memory import PssSampler

    before = scrape(metrics_url)
    sampler = PssSampler(server_pid, names=worker_names).start() if server_pid else None
    try:
        with pinned(client_cpus):
            run = run_level(make_client, payloads, concurrency, max_requests, max_duration_s, rate)
    finally:
        mem = sampler.stop().to_dict() if sampler else None
    after = scrape(metrics_url)
    server = model_times(before, after, len(run.records)) if metrics_url else {}
    return summarize_level(mode, endpoint, run, timeouts_ms or {}, server, mem)
