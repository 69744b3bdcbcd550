"""Pure statistics of a load run: no I/O, no clocks, so every number in a report is unit-testable.

Why these definitions:

- Percentiles use numpy's default ("linear") method, so a report can be checked with
  ``numpy.percentile`` and agrees with the other tools of the project; implemented here in plain
  Python so the serving venv and tests need nothing beyond the standard library.
- A *stall* is the signature of the upstream DagExecutor race (archive/workflow.yaml): a dropped node
  reply makes the request wait for exactly that node's ``timeout-ms`` before the retry, so its latency
  is the timeout plus one honest pass. A latency within +-15 % of any node timeout, or above one, is
  counted as a stall; the tolerance absorbs that honest pass. The rule is only as sharp as the gap
  between honest latency and the shortest timeout (3 s now; with the earlier 600 ms, honest queueing on
  one core reached that band somewhere past concurrency 8), so a report shows ``max`` next to the stall count
  and stalls are only meaningful where ``p99`` is well below the band.
- Throughput counts successful requests only: errors answered fast must not look like capacity.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

STALL_TOLERANCE = 0.15
DEFAULT_TIMEOUT_MS = 120_000.0  # TorchServe's workflow default when the YAML gives none


def percentile(values: Sequence[float], q: float) -> float:
    """``numpy.percentile(values, q)`` (method "linear"); ``q`` in [0, 100]. NaN for no values."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    if not values:
        return math.nan
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True)
class LatencySummary:
    """Milliseconds over the successful requests of one run."""

    n: int
    mean: float
    p50: float
    p90: float
    p99: float
    max: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def summarize(latencies_ms: Sequence[float]) -> LatencySummary:
    if not latencies_ms:
        return LatencySummary(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    return LatencySummary(
        n=len(latencies_ms),
        mean=sum(latencies_ms) / len(latencies_ms),
        p50=percentile(latencies_ms, 50),
        p90=percentile(latencies_ms, 90),
        p99=percentile(latencies_ms, 99),
        max=max(latencies_ms),
    )


def is_error(status: int | None, ok: bool = True) -> bool:
    """Any answer but HTTP 2xx, no answer at all (``status`` None: connection error/timeout), or a
    2xx whose body failed validation (``ok`` False)."""
    return status is None or not 200 <= status < 300 or not ok


def count_errors(outcomes: Iterable[tuple[int | None, bool]]) -> int:
    """Number of errors among ``(status, body_ok)`` pairs; see :func:`is_error`."""
    return sum(1 for status, ok in outcomes if is_error(status, ok))


def error_rate(errors: int, total: int) -> float:
    """Errors / total in [0, 1]; 0 for an empty run (nothing was sent, nothing failed)."""
    if errors < 0 or total < 0 or errors > total:
        raise ValueError(f"bad counts: {errors} errors of {total}")
    return errors / total if total else 0.0


def throughput(successes: int, wall_s: float) -> float:
    """Successful requests per second of wall time (0 when no time passed)."""
    return successes / wall_s if wall_s > 0 else 0.0


# --------------------------------------------------------------------------------- stalls


def node_timeouts(workflow_spec: Mapping) -> dict[str, float]:
    """``{node: timeout-ms}`` from a parsed TorchServe workflow YAML (``models:`` section).

    A node's own ``timeout-ms`` wins over the ``models:``-level default (TorchServe 0.12 semantics).
    """
    models = workflow_spec.get("models", {}) or {}
    default = float(models.get("timeout-ms", DEFAULT_TIMEOUT_MS))
    return {
        name: float(cfg.get("timeout-ms", default))
        for name, cfg in models.items()
        if isinstance(cfg, Mapping) and "url" in cfg
    }


def stall_node(latency_ms: float, timeouts_ms: Mapping[str, float], tolerance: float = STALL_TOLERANCE) -> str | None:
    """The node whose timeout explains this latency, ``"above"`` if it exceeds every band, else None.

    Within +-``tolerance`` of a node's timeout -> that node (the nearest one when bands overlap);
    above some timeout but in no band (e.g. two stacked stalls) -> ``"above"``.
    """
    if not timeouts_ms:
        return None
    bands = [(abs(latency_ms - t), name) for name, t in timeouts_ms.items() if abs(latency_ms - t) <= tolerance * t]
    if bands:
        return min(bands)[1]
    if latency_ms > min(timeouts_ms.values()):
        return "above"
    return None


def is_stall(latency_ms: float, timeouts_ms: Mapping[str, float], tolerance: float = STALL_TOLERANCE) -> bool:
    return stall_node(latency_ms, timeouts_ms, tolerance) is not None


@dataclass(frozen=True)
class StallCount:
    total: int
    by_node: dict[str, int]  # node name or "above" -> count

    def to_dict(self) -> dict[str, object]:
        return {"total": self.total, "by_node": dict(self.by_node)}


def count_stalls(
    latencies_ms: Iterable[float], timeouts_ms: Mapping[str, float], tolerance: float = STALL_TOLERANCE
) -> StallCount:
    by_node: dict[str, int] = {}
    for lat in latencies_ms:
        node = stall_node(lat, timeouts_ms, tolerance)
        if node is not None:
            by_node[node] = by_node.get(node, 0) + 1
    return StallCount(sum(by_node.values()), dict(sorted(by_node.items())))


# --------------------------------------------------------------------------------- ratios


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``; NaN when either is NaN or the denominator is 0 (no number to show)."""
    if math.isnan(numerator) or math.isnan(denominator) or denominator == 0:
        return math.nan
    return numerator / denominator


def overhead_ratios(p50_by_mode: Mapping[str, float], baseline: str) -> dict[str, float]:
    """``p50(mode) / p50(baseline)`` for every mode except the baseline itself."""
    base = p50_by_mode.get(baseline, math.nan)
    return {mode: ratio(v, base) for mode, v in p50_by_mode.items() if mode != baseline}


def counter_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """Per-key increase of monotonic counters between two scrapes (a key new in ``after`` counts from 0)."""
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def mean_from_counters(sum_delta: float, count_delta: float) -> float:
    """Mean of a quantity kept as a (sum, count) counter pair, e.g. TorchServe's latency counters."""
    return sum_delta / count_delta if count_delta > 0 else math.nan


# --------------------------------------------------------------------------------- growth


@dataclass(frozen=True)
class Growth:
    """How a series (memory of a soak) moved over its window ``t >= from_s``."""

    samples: int
    start: float  # mean of the window's first k samples
    end: float  # mean of its last k samples
    pct: float  # (end - start) / start, percent
    slope_per_s: float  # least squares over the whole window


def growth(times_s: Sequence[float], values: Sequence[float], from_s: float, k: int = 3) -> Growth:
    """Growth of ``values`` from ``from_s`` to the end; NaN where the window has < 2 samples.

    Each end is a mean of ``k`` samples (at most half the window), so one transient sample (a GC, an
    arena growing before it is reused) does not make or hide a leak; the slope uses every sample.
    """
    pts = [(t, v) for t, v in zip(times_s, values, strict=True) if t >= from_s]
    if len(pts) < 2:
        return Growth(len(pts), math.nan, math.nan, math.nan, math.nan)
    k = max(1, min(k, len(pts) // 2))
    start = sum(v for _, v in pts[:k]) / k
    end = sum(v for _, v in pts[-k:]) / k
    mt = sum(t for t, _ in pts) / len(pts)
    mv = sum(v for _, v in pts) / len(pts)
    var = sum((t - mt) ** 2 for t, _ in pts)
    slope = sum((t - mt) * (v - mv) for t, v in pts) / var if var > 0 else math.nan
    return Growth(len(pts), start, end, 100.0 * ratio(end - start, start), slope)
