"""The request bodies of a benchmark: real image bytes, the same list for every mode of a run.

``synthetic``: street scenes from :func:`thaiplate.synth.scene.make_scene` (procedural backgrounds
only, so the set depends on the seed alone, not on which datasets are on this machine) at 320x240,
640x480, 1280x720 (twice: the size the latency goal is stated for) and 1920x1080, JPEG-encoded as a
phone or camera would send them, plus up to ``n_scenes // 2`` real plate crops of ``/work/shared/real-smoke`` when present (tiny
images: the cheapest real request; capped so they do not dominate the mix and flatter throughput). A directory: every ``.jpg``/``.jpeg``/``.png`` in it.

Each payload keeps its pixel size so a report can give the latency of one size class (``1280x720``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REAL_SMOKE = Path("/work/shared/real-smoke")
SCENE_SIZES: tuple[tuple[int, int], ...] = ((320, 240), (640, 480), (1280, 720), (1920, 1080), (1280, 720))
GOAL_SIZE = "1280x720"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class Payload:
    name: str
    data: bytes
    width: int
    height: int
    content_type: str = "image/jpeg"

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


def _image_size(data: bytes) -> tuple[int, int]:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return im.size


def from_dir(folder: Path, limit: int | None = None) -> list[Payload]:
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    out = []
    for p in files:
        data = p.read_bytes()
        w, h = _image_size(data)
        ctype = "image/png" if p.suffix.lower() == ".png" else "image/jpeg"
        out.append(Payload(p.name, data, w, h, ctype))
    return out


def synthetic(n_scenes: int = 20, seed: int = 7, quality: int = 90) -> list[Payload]:
    """``n_scenes`` scenes cycling through :data:`SCENE_SIZES`, deterministic in ``seed``."""
    return [p for p, _ in labelled(n_scenes, seed, quality)]


def labelled(
    n_scenes: int, seed: int = 7, quality: int = 90, sizes: Sequence[tuple[int, int]] = SCENE_SIZES
) -> list[tuple[Payload, list[str]]]:
    """Scenes cycling through ``sizes``, each with the texts of the plates painted in it. Distinct
    ``sizes`` give every image its own size, which every answer echoes (a crossed answer shows)."""
    import cv2

    from thaiplate.synth.augment import augment_config, load_config
    from thaiplate.synth.scene import make_scene

    raw = load_config()
    aug = augment_config(raw)
    out = []
    for i in range(n_scenes):
        w, h = sizes[i % len(sizes)]
        scene_cfg = {**raw["scene"], "size": [[w, h]], "p_dashcam": 0.0}
        scene = make_scene(np.random.default_rng([seed, i]), aug, scene_cfg)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        out.append((Payload(f"scene-{i:03d}-{w}x{h}.jpg", buf.tobytes(), w, h), [s.text for s in scene.specs if s]))
    return out


def of_size(payloads: list[Payload], size: str = GOAL_SIZE) -> list[Payload]:
    return [p for p in payloads if p.size == size]


def load(spec: str, n_scenes: int = 20, seed: int = 7, real: Path | None = REAL_SMOKE) -> list[Payload]:
    """``"synthetic"`` (scenes + real crops when present) or a directory of images.

    The list is interleaved (scenes and crops alternate) so a short run still sees every kind.
    """
    if spec != "synthetic":
        folder = Path(spec)
        if not folder.is_dir():
            raise FileNotFoundError(f"--images: {folder} is not a directory (or say 'synthetic')")
        found = from_dir(folder)
        if not found:
            raise FileNotFoundError(f"--images: no {'/'.join(IMAGE_SUFFIXES)} files in {folder}")
        return found
    scenes = synthetic(n_scenes, seed)
    crops = from_dir(real, limit=n_scenes // 2) if real is not None and real.is_dir() else []
    return interleave(scenes, crops)


def interleave(a: list[Payload], b: list[Payload]) -> list[Payload]:
    """a0 b0 a1 b1 ... then the rest of the longer list."""
    out: list[Payload] = []
    for i in range(max(len(a), len(b))):
        out += [x[i] for x in (a, b) if i < len(x)]
    return out
