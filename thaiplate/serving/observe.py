"""Per-request telemetry: Prometheus metrics through TorchServe, and one JSON log line per request.

Why only the node that writes the final JSON (the pipeline worker, the DAG's classifier node) reports:
its result documents already carry every stage's ``timings_ms`` (DAG nodes pass theirs along in the
payload), its plates and its error codes, so a request is counted once, not once per node.

Metrics go through ``context.metrics`` (TorchServe 0.12's ``ts.metrics`` cache): the worker prints
them as ``[METRICS]`` lines and the frontend exports those declared in ``thaiplate/serving/metrics.yaml``
on the metrics port. The log line goes to the worker's stdout, which TorchServe forwards to its own
log (``log4j2.xml`` prints it as bare JSON, so Cloud Logging parses it as a structured entry).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from typing import Any

from thaiplate.image import ImageError

log = logging.getLogger("thaiplate.requests")

EVENT = "thaiplate.request"
REQUEST_ID_HEADER = "x-request-id"
STAGE_LATENCY = "thaiplate_stage_latency_seconds"
PLATES = "thaiplate_plates_per_image"
ERRORS = "thaiplate_errors_total"


@dataclass(frozen=True)
class ImageOutcome:
    """One image of a request: its plate count and stage timings, or the error code it got."""

    plates: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @classmethod
    def of(cls, result: dict[str, Any] | ImageError) -> ImageOutcome:
        if isinstance(result, ImageError):
            return cls(error=result.code)
        return cls(plates=len(result.get("plates", [])), timings_ms=dict(result.get("timings_ms", {})))


@dataclass(frozen=True)
class RequestRecord:
    """The JSON log line of one request (``severity``/``message`` are Cloud Logging's field names)."""

    request_id: str
    mode: str  # "pipeline" or "dag"
    model: str  # TorchServe model name of the reporting worker
    status: int  # the status the handler set (DAG clients always get 200 + the same error body)
    error: str | None  # request-level error code, else the first image's
    images: int
    plates: int
    timings_ms: dict[str, float]  # summed over the request's images

    @classmethod
    def of(cls, request_id: str, mode: str, model: str, status: int, outcomes: list[ImageOutcome],
           request_error: str | None = None) -> RequestRecord:  # fmt: skip
        timings: dict[str, float] = {}
        for o in outcomes:
            for stage, ms in o.timings_ms.items():
                timings[stage] = round(timings.get(stage, 0.0) + ms, 3)
        errors = [o.error for o in outcomes if o.error]
        return cls(request_id, mode, model, int(status), request_error or (errors[0] if errors else None),
                   len(outcomes), sum(o.plates for o in outcomes), timings)  # fmt: skip

    def to_json(self) -> str:
        severity = "INFO" if self.status < HTTPStatus.BAD_REQUEST else "WARNING"
        summary = (
            f"{self.mode} {self.status} {self.error or 'ok'}: {self.images} image(s), {self.plates} plate(s)"
        )
        total = self.timings_ms.get("total")
        message = summary + (f", {total:.1f} ms" if total is not None else "")
        doc = {"event": EVENT, "severity": severity, "message": message, **asdict(self)}
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def request_id(context: Any, idx: int) -> str:
    """The client's ``X-Request-Id`` when it sent one, else TorchServe's id for request ``idx``.

    TorchServe's id also appears in its own log lines ("Sending response for jobId ..."), so either
    way one id ties the frontend's lines to ours.
    """
    try:
        headers = context.get_all_request_header(idx) or {}
    except (AttributeError, IndexError, KeyError, TypeError):
        headers = {}
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == REQUEST_ID_HEADER and value:
            return str(value)[:128]  # client-controlled: bounded
    ids = getattr(context, "request_ids", None) or {}
    return str(ids.get(idx, "")) if isinstance(ids, dict) else ""


@functools.cache
def _metric_types() -> Any:
    """``ts.metrics`` types, imported only inside a TorchServe worker (the dev venv has no ``ts``)."""
    from ts.metrics.metric_type_enum import MetricTypes

    return MetricTypes


def _metric(metrics: Any, name: str, kind: str, unit: str, dimensions: list[str]) -> Any:
    types = _metric_types()
    try:
        return metrics.get_metric(name, types[kind])
    except Exception:  # noqa: BLE001 - not declared in the worker's metrics YAML: declare it here
        return metrics.add_metric_to_cache(name, unit, dimensions, types[kind])


def emit_metrics(metrics: Any, mode: str, outcomes: Iterable[ImageOutcome], request_error: str | None,
                 rid: str) -> None:  # fmt: skip
    """Observe stage latencies (seconds) and plates per image; count error codes (see metrics.yaml)."""
    latency = _metric(metrics, STAGE_LATENCY, "HISTOGRAM", "s", ["Stage", "Mode"])
    plates = _metric(metrics, PLATES, "HISTOGRAM", "count", ["Mode"])
    errors = _metric(metrics, ERRORS, "COUNTER", "count", ["Code", "Mode"])
    if request_error:
        errors.add_or_update(1, [request_error, mode], rid)
    for o in outcomes:
        if o.error:
            errors.add_or_update(1, [o.error, mode], rid)
            continue
        plates.add_or_update(o.plates, [mode], rid)
        for stage, ms in o.timings_ms.items():
            latency.add_or_update(ms / 1000.0, [stage, mode], rid)


def report(
    context: Any, record: RequestRecord, outcomes: list[ImageOutcome], request_error: str | None
) -> None:
    """Emit one request's metrics (inside TorchServe only) and its JSON log line.

    Telemetry must never fail a request: a metrics error is logged and swallowed.
    """
    metrics = getattr(context, "metrics", None)
    if metrics is not None:
        try:
            emit_metrics(metrics, record.mode, outcomes, request_error, record.request_id)
        except Exception:  # noqa: BLE001
            log.exception("thaiplate metrics failed for request %s", record.request_id)
    log.info(record.to_json())
