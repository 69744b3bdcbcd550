"""The bytes passed between DAG nodes (detector -> recognizer -> classifier).

Why npz: a TorchServe workflow hands each node the previous node's response as one opaque byte
string. Plate crops are uint8 arrays of varying shapes, so they travel as raw arrays in an
uncompressed ``.npz`` (no base64, no re-encoding, ~36 KB per typical crop) next to one JSON
document holding everything else. ``allow_pickle=False`` on load: a node never unpickles bytes.

Document layout (``v`` = 1)::

    {"v": 1, "single": bool, "error": {...} | null, "status": int,
     "items": [ {"error": {...}, "status": 4xx}
              | {"image": {...}, "detections": [...], "crops": [array index, ...],
                 "crop_widths": [px before shrinking, ...], "readings": [...], "timings_ms": {...},
                 "models": {...}} ]}
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from typing import Any

import numpy as np

from thaiplate.results import Candidate, Detection, ProvinceGuess, TextReading

VERSION = 1
_DOC = "doc"


class PayloadError(ValueError):
    """The bytes are not a payload from an upstream thaiplate node (wrong DAG wiring or version)."""


def pack(doc: dict[str, Any], arrays: list[np.ndarray]) -> bytes:
    buf = io.BytesIO()
    named = {f"a{i}": np.ascontiguousarray(a) for i, a in enumerate(arrays)}
    meta = np.frombuffer(json.dumps({**doc, "v": VERSION}).encode("utf-8"), dtype=np.uint8)
    np.savez(buf, **{_DOC: meta}, **named)
    return buf.getvalue()


def unpack(data: bytes | bytearray) -> tuple[dict[str, Any], list[np.ndarray]]:
    try:
        with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as z:
            doc = json.loads(z[_DOC].tobytes().decode("utf-8"))
            arrays = [z[f"a{i}"] for i in range(len(z.files) - 1)]
    except Exception as e:  # noqa: BLE001 - anything unreadable is the same wiring error
        raise PayloadError(f"not a thaiplate DAG payload ({type(e).__name__}: {e})") from None
    if doc.get("v") != VERSION:
        raise PayloadError(f"payload version {doc.get('v')!r}, this node reads {VERSION}")
    return doc, arrays


# ------------------------------------------------------------- result dataclasses <-> JSON


def to_json(obj: Any) -> Any:
    """Dataclass (or list of them) -> plain JSON-able structure (tuples become lists)."""
    if isinstance(obj, list):
        return [to_json(o) for o in obj]
    return json.loads(json.dumps(asdict(obj), default=_tolist))


def _tolist(o: Any) -> Any:
    if hasattr(o, "tolist"):  # numpy scalars and arrays
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def detection(d: dict[str, Any]) -> Detection:
    corners = d.get("corners")
    return Detection(
        box=tuple(d["box"]),  # type: ignore[arg-type]
        confidence=d["confidence"],
        corners=tuple(tuple(c) for c in corners) if corners is not None else None,
    )


def reading(d: dict[str, Any]) -> TextReading:
    return TextReading(**{**d, "candidates": [Candidate(**c) for c in d["candidates"]]})


def province(d: dict[str, Any]) -> ProvinceGuess:
    return ProvinceGuess(**d)
