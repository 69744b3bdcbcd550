"""``thaiplate predict IMAGE... [--json] [--draw OUT] [--models DIR]``: the serving pipeline on files.

Same code path as TorchServe (``Pipeline.run`` on the file bytes), so what you see here is what the
API answers. A bad file prints a clear message on stderr, the other images are still processed, and
the exit code is 1 if any image failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from thaiplate.results import PipelineResult

THAI_FONTS = (
    "/usr/share/fonts/truetype/tlwg/Loma.ttf",
    "/usr/share/fonts/truetype/tlwg/Garuda.ttf",
    "/usr/share/fonts/truetype/tlwg/Kinnari.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansThai-Regular.ttf",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict",
        help="read plates in image files with the serving pipeline",
        description="Detect, read and classify the plates in each image (the TorchServe code path).",
    )
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--json", action="store_true", help="one compact JSON line per image")
    p.add_argument(
        "--draw",
        type=Path,
        metavar="OUT",
        help="write a copy with boxes and readings: a file for one image, else a folder",
    )
    p.add_argument(
        "--models", type=Path, default=None, help="models folder (default $THAIPLATE_MODELS or models/)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from thaiplate.image import ImageError, decode_image
    from thaiplate.pipeline import Pipeline

    try:
        pipeline = Pipeline.from_dir(args.models)
    except (FileNotFoundError, ImportError, ValueError) as e:  # ValueError: a bad setting, e.g. THAIPLATE_CROP
        print(f"thaiplate predict: cannot start: {e}", file=sys.stderr)
        return 2
    failed = 0
    for path in args.images:
        try:
            data = path.read_bytes()
            result = pipeline.run(data)
        except (OSError, ImageError) as e:
            failed += 1
            print(f"{path}: {getattr(e, 'message', None) or e}", file=sys.stderr)
            continue
        record = {"file": str(path), **result.to_dict()}
        print(json.dumps(record, ensure_ascii=False, indent=None if args.json else 2), flush=True)
        if args.draw:
            out = draw_target(args.draw, path, len(args.images))
            draw_result(decode_image(data), result).save(out)
    return 1 if failed else 0


def draw_target(out: Path, src: Path, n_images: int) -> Path:
    """``OUT`` itself for a single image (unless it is a folder), else ``OUT/<stem>.plates.jpg``."""
    if n_images == 1 and not out.is_dir() and out.suffix:
        out.parent.mkdir(parents=True, exist_ok=True)
        return out
    out.mkdir(parents=True, exist_ok=True)
    return out / f"{src.stem}.plates.jpg"


def thai_font(size: int):
    """A Thai-capable TrueType font, else Pillow's default (Thai then shows as boxes, nothing fails)."""
    from PIL import ImageFont

    for path in THAI_FONTS:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default()


def draw_result(image: np.ndarray, result: PipelineResult):
    """RGB array + result -> PIL image with each plate's box, text and province."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(image)
    draw = ImageDraw.Draw(img)
    size = max(14, round(min(img.size) / 40))
    font = thai_font(size)
    width = max(2, size // 8)
    for p in result.plates:
        x1, y1, x2, y2 = p.box
        draw.rectangle((x1, y1, x2, y2), outline=(0, 255, 0), width=width)
        label = f"{p.text} {p.text_confidence:.2f}"
        if p.province:
            label += f" {p.province.name_th}"
        tx, ty = x1, max(0.0, y1 - size * 1.5)
        bbox = draw.textbbox((tx, ty), label, font=font)
        draw.rectangle(bbox, fill=(0, 0, 0))
        draw.text((tx, ty), label, fill=(255, 255, 0), font=font)
    return img
