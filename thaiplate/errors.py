"""Client-error codes -> HTTP status, shared by the handlers and the HTTP front (stdlib only).

Kept apart from :mod:`thaiplate.image` so the front, which runs in the light supervisor process, can
map a DAG answer's error code to its status without importing numpy, OpenCV or Pillow.
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus

# Request bodies above this are refused before decoding (20 MiB images; base64/multipart overhead on top).
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_REQUEST_BYTES = 28 * 1024 * 1024

STATUS_BY_CODE: dict[str, int] = {
    "too_large": HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    "too_many_pixels": HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    "too_many_images": HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
}


def reply_status(item_statuses: Sequence[int | None]) -> int:
    """A request's status from its items' (``None`` = a result): the first error's status only when every
    item failed, else 200 (a batch with one good image is a success). One rule for handlers and front."""
    if item_statuses and all(s is not None for s in item_statuses):
        return int(item_statuses[0])  # type: ignore[arg-type]
    return int(HTTPStatus.OK)


def http_status(code: str) -> int:
    """Status for an error ``code``: 413 where listed, else 400 (every other code is a bad request)."""
    return int(STATUS_BY_CODE.get(code, HTTPStatus.BAD_REQUEST))
