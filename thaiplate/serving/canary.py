"""Canary: the same labelled plates through a candidate version and the current default, compared.

Why both versions are called explicitly (``/predictions/NAME/VERSION``, the default resolved first):
a default that changes mid-run would otherwise be scored as itself. Why the image set is fixed by a
seed: the two versions, and two canaries a day apart, must read exactly the same pixels.

What is sent depends on the model's input:

- a model that takes images (``pipeline``): each plate crop as a JPEG (a crop without a detection is
  read whole, see ``Pipeline.detect_crops``); the reading is the first plate's ``text``;
- a workflow's recogniser node (``thaiplate__recognizer``): it takes the detector node's payload, so the
  crop is packed as the detector would pack it (one full-crop detection); the reading is its ``text``.

The detector and classifier nodes produce no plate text and are refused.
"""

from __future__ import annotations

import csv
import json
import mimetypes
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from thaiplate.eval.textmetrics import cer, compact
from thaiplate.results import Detection
from thaiplate.serving import payload
from thaiplate.serving.management import ApiError, Client

TEXT_NODES = ("recognizer",)
NO_TEXT_NODES = ("detector", "classifier")


@dataclass(frozen=True)
class Sample:
    name: str
    text: str
    rgb: np.ndarray
    data: bytes  # encoded image (the file's own bytes for a folder)
    content_type: str


def _jpeg(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def synthetic_set(n: int, seed: int) -> list[Sample]:
    """``n`` degraded synthetic crops with known text (sample ``i`` uses ``default_rng([seed, i])``,
    the training data's own recipe and defaults, so it is a held-out set for any ``seed`` not trained on)."""
    from thaiplate.synth.augment import augment_config, load_config
    from thaiplate.synth.crops import ocr_sample

    cfg = augment_config(load_config())
    out = []
    for i in range(n):
        s = ocr_sample(np.random.default_rng([seed, i]), cfg)
        out.append(Sample(f"synthetic-{seed}-{i:04d}", s.spec.text, s.image, _jpeg(s.image), "image/jpeg"))
    return out


def folder_set(folder: Path, limit: int | None = None) -> list[Sample]:
    """``folder/labels.csv`` (``file`` and ``text`` or ``plate_text``); rows without text are skipped."""
    from thaiplate.image import decode_image

    with open(folder / "labels.csv", encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if (r.get("text") or r.get("plate_text") or "").strip()]
    out = []
    for r in rows[:limit]:
        data = (folder / r["file"]).read_bytes()
        kind = mimetypes.guess_type(r["file"])[0] or "application/octet-stream"
        text = (r.get("text") or r.get("plate_text") or "").strip()
        out.append(Sample(r["file"], text, decode_image(data), data, kind))
    return out


def input_kind(model: str) -> str:
    """``"payload"`` for a workflow's recogniser node, ``"image"`` for a model that takes images."""
    node = model.rsplit("__", 1)[-1] if "__" in model else ""
    if node in NO_TEXT_NODES:
        raise ValueError(f"{model}: a {node} node returns no plate text; canary the recognizer or the pipeline")
    return "payload" if node in TEXT_NODES else "image"


def request_body(sample: Sample, kind: str) -> tuple[bytes, str]:
    if kind == "image":
        return sample.data, sample.content_type
    h, w = sample.rgb.shape[:2]
    det = payload.to_json(Detection((0.0, 0.0, float(w), float(h)), 1.0))
    item = {"image": {"width": w, "height": h}, "detections": [det], "crops": [0], "crop_widths": [w], "timings_ms": {}, "models": {}}
    doc = {"single": True, "error": None, "status": 200, "items": [item]}
    return payload.pack(doc, [sample.rgb]), "application/octet-stream"


def reading(body: bytes, kind: str) -> tuple[str, dict[str, str]]:
    """(plate text, ``models`` versions) from one answer; ``""`` when nothing was read."""
    if kind == "payload":
        item = payload.unpack(body)[0]["items"][0]
        texts = [r["text"] for r in item.get("readings", [])]
        return (texts[0] if texts else ""), item.get("models", {})
    doc = json.loads(body)
    plates = doc.get("plates", [])
    return (plates[0]["text"] if plates else ""), doc.get("models", {})


@dataclass
class Score:
    """One version's result on the set."""

    version: str
    role: str  # "candidate" | "default"
    n: int = 0
    correct: int = 0
    failed: int = 0  # HTTP errors and unreadable answers (also counted as wrong)
    cer: float = 0.0
    p50_ms: float = 0.0
    served_by: dict[str, str] | None = None  # the ``models`` field of the first answer

    @property
    def exact(self) -> float:
        return self.correct / max(1, self.n)


def score(client: Client, model: str, version: str, role: str, samples: list[Sample]) -> Score:
    kind = input_kind(model)
    s = Score(version, role, n=len(samples))
    pairs, times = [], []
    for sample in samples:
        body, ctype = request_body(sample, kind)
        t0 = time.perf_counter()
        status, answer = client.predict(model, version, body, ctype)
        times.append((time.perf_counter() - t0) * 1000.0)
        text = ""
        try:
            if status != 200:
                raise ApiError(status, answer.decode(errors="replace")[:200])
            text, models = reading(answer, kind)
            s.served_by = s.served_by or models
        except (ApiError, ValueError, KeyError, IndexError):
            s.failed += 1
        pairs.append((sample.text, text))
        s.correct += compact(text) == compact(sample.text)
    s.cer = round(cer(pairs), 4)
    s.p50_ms = round(statistics.median(times), 1) if times else 0.0
    return s


@dataclass
class Report:
    model: str
    source: str
    candidate: Score
    default: Score
    tolerance: float

    @property
    def delta(self) -> float:
        return self.candidate.exact - self.default.exact

    @property
    def worse(self) -> bool:
        """Fewer exact readings than the default beyond ``tolerance``, or more failed requests."""
        return self.delta < -self.tolerance - 1e-12 or self.candidate.failed > self.default.failed

    def to_dict(self) -> dict[str, Any]:
        scores = {s.role: {**asdict(s), "exact": round(s.exact, 4)} for s in (self.candidate, self.default)}
        return {"model": self.model, "set": self.source, **scores, "delta_exact": round(self.delta, 4),
                "tolerance": self.tolerance, "worse": self.worse}  # fmt: skip

    def table(self) -> str:
        lines = [
            f"canary {self.model}: candidate v{self.candidate.version} vs default v{self.default.version} "
            f"on {self.candidate.n} plates ({self.source})",
            f"{'version':<12}{'role':<11}{'n':>5}{'exact':>9}{'CER':>8}{'failed':>8}{'p50 ms':>9}",
        ]
        for s in (self.candidate, self.default):
            lines.append(
                f"{s.version:<12}{s.role:<11}{s.n:>5}{s.exact:>9.1%}{s.cer:>8.3f}{s.failed:>8}{s.p50_ms:>9.1f}"
            )
        verdict = "WORSE than the default" if self.worse else "not worse than the default"
        lines.append(f"delta exact {self.delta * 100:+.1f} pp (tolerance {self.tolerance * 100:.1f} pp): {verdict}")
        return "\n".join(lines)


def run(client: Client, model: str, version: str, samples: list[Sample], source: str, tolerance: float = 0.0) -> Report:
    """Score ``version`` and the current default of ``model`` on ``samples``."""
    input_kind(model)  # refuse a node without text before sending anything
    default = client.default_version(model)
    candidate = score(client, model, version, "candidate", samples)
    return Report(model, source, candidate, score(client, model, default, "default", samples), tolerance)
