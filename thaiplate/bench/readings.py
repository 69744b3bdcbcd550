"""What a *correct* answer is when the models are imperfect: the image's own reading.

The committed models misread many plates, so "correct" cannot mean "the truth text". It means the
answer the same server gave to the same image on its own (a reference pass, one request at a time).
Under concurrency or after a worker restart the answer must still be that one: this catches crossed
responses (request A gets B's result), a half-initialised worker and a corrupted batch. The image
size is part of the reading, so images of distinct sizes make a crossed answer unmistakable.

Confidences are left out and boxes are rounded to whole pixels: DAG nodes batch the crops of
concurrent requests (``batch-size: 4``), and ONNX Runtime's numbers for a batch differ from batch 1
in the last float digits.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from thaiplate.bench.load import Answer, HttpClient, Target
from thaiplate.bench.payloads import Payload

Plate = tuple[str, str | None, tuple[int, ...]]  # text, province code, box (px)


@dataclass(frozen=True)
class Reading:
    width: int
    height: int
    plates: tuple[Plate, ...]

    @property
    def texts(self) -> list[str]:
        return [p[0] for p in self.plates]


def reading(body: bytes) -> Reading | None:
    """The comparable part of one result document; None for anything else (error body, list, junk)."""
    try:
        doc = json.loads(body)
        plates = tuple(
            (str(p["text"]), (p.get("province") or {}).get("code"), tuple(round(float(b)) for b in p["box"]))
            for p in doc["plates"]
        )
        return Reading(int(doc["image"]["width"]), int(doc["image"]["height"]), plates)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def references(target: Target, payloads: Sequence[Payload]) -> dict[str, Reading]:
    """Each payload's reading, one request at a time; raises if one gets no result document."""
    client = HttpClient(target)
    try:
        out = {}
        for p in payloads:
            ans = client.send(p)
            ref = reading(client.last_body) if ans.ok else None
            if ref is None:
                raise RuntimeError(f"reference request {p.name} to {target.endpoint} failed: {ans.error}")
            out[p.name] = ref
        return out
    finally:
        client.close()


@dataclass(frozen=True)
class Outcome:
    """One request as a fault/soak driver sees it (``time.monotonic`` seconds)."""

    payload: str
    sent: float
    done: float
    ok: bool
    error: str | None


class CheckedClient:
    """A :class:`~thaiplate.bench.load.Client` whose success means "this image's reference reading";
    every outcome is also appended to ``log`` so a driver can watch the load while it runs."""

    def __init__(self, target: Target, expected: Mapping[str, Reading], log: list[Outcome], lock: threading.Lock):
        self.http, self.expected, self.log, self.lock = HttpClient(target), expected, log, lock

    def send(self, payload: Payload) -> Answer:
        sent = time.monotonic()
        ans = self.http.send(payload)
        if ans.ok and reading(self.http.last_body) != self.expected[payload.name]:
            ans = Answer(ans.status, False, f"wrong reading for {payload.name}: {self.http.last_body[:160]!r}")
        with self.lock:
            self.log.append(Outcome(payload.name, sent, time.monotonic(), ans.ok, ans.error))
        return ans

    def close(self) -> None:
        self.http.close()
