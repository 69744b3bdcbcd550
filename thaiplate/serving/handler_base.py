"""TorchServe's handler lifecycle without ``ts.torch_handler`` (which imports torch).

``handlers/*.py`` are tiny adapters over :class:`StageHandler`; everything they share lives here,
in the installed package, so an archive only needs its one handler file and the serving venv.

Contract with TorchServe 0.12 (``ts/service.py``): ``handle(data, context)`` gets one dict per queued
request (up to the model's ``batchSize``) and must return exactly one response per request, in order.
A response is bytes; its HTTP status and content type are set per request index on the context.

Response shape (same in every mode): a request carrying one image answers one JSON object; a request
carrying several (multipart files, ``{"images": [...]}``) answers a list in the same order. Bad input
answers ``{"error": {"code", "message"}}``: as the whole body for a request-level problem or a
single image (HTTP 4xx from ``ImageError.http_status``), or in place of that image in a list (the list
is HTTP 200 when at least one image was read, else the first error's status). An unexpected exception
is left to TorchServe, which logs it and answers 503 for that batch; the worker keeps running.

Telemetry (:mod:`thaiplate.serving.observe`): the handler whose ``report_as`` is set (the one writing
the final JSON) reports every request's metrics and JSON log line after shaping its reply.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, ClassVar

from thaiplate.errors import reply_status
from thaiplate.image import ImageError, load_request_images
from thaiplate.serving import observe

log = logging.getLogger(__name__)

JSON = "application/json"


@dataclass
class Work:
    """One request on its way through a handler: its images (or payload items) and their outcomes."""

    single: bool
    items: list[Any] = field(default_factory=list)  # stage inputs/outputs; an ImageError marks a bad item
    error: ImageError | None = None  # the whole request is bad (no image, bad envelope, ...)
    request_id: str = ""  # observe.request_id of the client request (DAG nodes: carried in the payload)


@dataclass(frozen=True)
class Reply:
    body: Any  # JSON-able, or bytes for an intermediate DAG node
    status: int = HTTPStatus.OK
    content_type: str = JSON


def json_default(o: Any) -> Any:
    """numpy scalars/arrays that may sit inside result dataclasses."""
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, default=json_default).encode("utf-8")


def error_item(err: ImageError) -> dict[str, Any]:
    return err.to_dict()


def error_from_dict(doc: dict[str, Any], status: int) -> ImageError:
    """Rebuild an upstream node's error (DAG payloads carry them as JSON)."""
    e = doc["error"]
    return ImageError(e["code"], e["message"], status)


def shape_reply(work: Work, results: list[Any]) -> Reply:
    """Per-image results (dicts, or ImageError) -> the response for one request (see module doc)."""
    if work.error is not None:
        return Reply(error_item(work.error), work.error.http_status)
    bodies = [error_item(r) if isinstance(r, ImageError) else r for r in results]
    status = reply_status([r.http_status if isinstance(r, ImageError) else None for r in results])
    return Reply(bodies[0] if work.single else bodies, status)


def request_content_type(context: Any, idx: int) -> str | None:
    """The Content-Type TorchServe recorded for request ``idx`` (per parameter, else request header)."""
    try:
        headers = context.get_all_request_header(idx) or {}
    except (AttributeError, IndexError, TypeError):
        return None
    for key in ("body", "data"):
        h = headers.get(key)
        if isinstance(h, dict) and h.get("content-type"):
            return str(h["content-type"])
    for k, v in headers.items():
        if isinstance(k, str) and k.lower() == "content-type" and isinstance(v, str):
            return v
    return None


def request_images(request: dict[str, Any], content_type: str | None, request_id: str = "") -> Work:
    """One TorchServe request dict -> its encoded images, or a request-level error."""
    try:
        images = load_request_images(request, content_type)
    except ImageError as e:
        return Work(single=True, error=e, request_id=request_id)
    return Work(single=len(images) == 1, items=list(images), request_id=request_id)


class StageHandler(ABC):
    """BaseHandler's lifecycle (initialize, preprocess, inference, postprocess, handle), no torch.

    Subclasses implement :meth:`load` (build the ONNX runners from the archive's ``model_dir``) and
    :meth:`inference`; they override :meth:`preprocess`/:meth:`postprocess` when their input or output
    is a DAG payload instead of an HTTP request / final JSON.
    """

    report_as: ClassVar[str | None] = None  # "pipeline"/"dag" on the handler that writes the final JSON

    def __init__(self) -> None:
        self.initialized = False
        self.context: Any = None
        self.model_dir: Path | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def initialize(self, context: Any) -> None:
        self.context = context
        self.model_dir = Path(context.system_properties["model_dir"])
        self.load(self.model_dir)
        self.initialized = True
        log.info("%s ready from %s", type(self).__name__, self.model_dir)

    @abstractmethod
    def load(self, model_dir: Path) -> None:
        """Open this stage's models from the unpacked archive."""

    def preprocess(self, data: list[dict[str, Any]]) -> list[Work]:
        """Default: HTTP requests -> encoded images per request."""
        return [
            request_images(req, request_content_type(self.context, i), observe.request_id(self.context, i))
            for i, req in enumerate(data)
        ]

    @abstractmethod
    def inference(self, works: list[Work]) -> list[Work]:
        """Run this stage on a batch of requests."""

    def postprocess(self, works: list[Work]) -> list[Reply]:
        """Default: items are final result dicts (or ImageError)."""
        return [shape_reply(w, w.items) for w in works]

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[bytes]:
        self.context = context
        works = self.inference(self.preprocess(data))
        replies = self.postprocess(works)
        if len(replies) != len(data):  # TorchServe would fail the batch with a vaguer message
            raise RuntimeError(f"{len(replies)} replies for {len(data)} requests")
        if self.report_as:
            for work, reply in zip(works, replies, strict=True):
                self.report(work, reply)
        return [self.emit(i, r) for i, r in enumerate(replies)]

    # -- helpers ---------------------------------------------------------------------------
    def report(self, work: Work, reply: Reply) -> None:
        """Metrics + JSON log line for one request whose ``work.items`` are final results."""
        outcomes = [] if work.error else [observe.ImageOutcome.of(r) for r in work.items]
        request_error = work.error.code if work.error else None
        model = str(getattr(self.context, "model_name", "") or "")
        record = observe.RequestRecord.of(
            work.request_id, str(self.report_as), model, reply.status, outcomes, request_error
        )
        observe.report(self.context, record, outcomes, request_error)

    def emit(self, idx: int, reply: Reply) -> bytes:
        """Set status + content type for request ``idx`` and serialise its body."""
        if reply.status != HTTPStatus.OK:
            self.context.set_response_status(int(reply.status), HTTPStatus(reply.status).phrase, idx)
        self.context.set_response_content_type(idx, reply.content_type)
        if isinstance(reply.body, bytes | bytearray):
            return bytes(reply.body)
        return dumps(reply.body)
