"""`thaiplate synth ocr|detect|preview`: deterministic, multiprocess dataset generation.

Sample ``i`` of a run is drawn from ``numpy.random.default_rng([seed, i])``, so the output depends
only on ``--seed`` and ``--n``, never on the number of worker processes.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections.abc import Callable, Iterable
from functools import cache, partial
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np

from thaiplate.labels import PlateType
from thaiplate.synth import fonts
from thaiplate.synth.augment import AugmentConfig, augment_config, load_config

OCR_FIELDS = ["file", "text", "province_code", "plate_type"]
# how hard each crop was made (thaiplate.synth.augment.Degradation): `thaiplate eval ocr` reads accuracy
# against them; detail_px = plate width in pixels of real detail (after any down-sampling)
DIFFICULTY_FIELDS = ["detail_px", "blur_px", "noise_sd", "jpeg_q"]
# one row per plate (an image without plates: one row, empty fields); plate_blur_px / plate_fade are the
# pasted plate's own optics (scene._optics), which `thaiplate eval e2e` splits results by
SCENE_FIELDS = ["file", "plate_text", "province_code", "x1", "y1", "x2", "y2", "plate_blur_px", "plate_fade"]


def _write_jpg(path: Path, rgb: np.ndarray, quality: int = 95) -> None:
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])


@cache
def _configs(config: str | None) -> tuple[AugmentConfig, dict]:
    """Parsed once per worker process: re-reading the YAML per sample cost ~1.7 ms of a ~6 ms crop."""
    raw = load_config(config)
    return augment_config(raw), raw["scene"]


def _ocr_item(i: int, seed: int, out: str, config: str | None, plate_type: PlateType | None = None) -> list[str]:
    from thaiplate.synth.crops import ocr_sample

    s = ocr_sample(np.random.default_rng([seed, i]), _configs(config)[0], plate_type=plate_type)
    name = f"images/{i:06d}.jpg"
    _write_jpg(Path(out) / name, s.image)
    d = s.degradation
    difficulty = [f"{s.detail_px:.1f}", f"{d.blur_px:.2f}", f"{d.noise_sd:.1f}", str(d.jpeg_q)]
    return [name, s.spec.text, s.spec.province_code, s.spec.plate_type.value, *difficulty]


def _scene_item(i: int, seed: int, out: str, config: str | None, n_val: int) -> list[list[str]]:
    from thaiplate.synth.scene import make_scene, yolo_lines

    scene = make_scene(np.random.default_rng([seed, i]), *_configs(config))
    split = "val" if i < n_val else "train"
    stem = f"{i:06d}"
    _write_jpg(Path(out) / "images" / split / f"{stem}.jpg", scene.image, 92)
    (Path(out) / "labels" / split / f"{stem}.txt").write_text("\n".join(yolo_lines(scene)) + ("\n" if scene.boxes else ""))
    file = f"images/{split}/{stem}.jpg"
    if not scene.boxes:
        return [[file] + [""] * (len(SCENE_FIELDS) - 1)]
    return [[file, s.text if s else "", s.province_code if s else "", *(f"{v:.1f}" for v in b), f"{blur:.2f}", f"{fade:.2f}"]
            for s, b, (blur, fade) in zip(scene.specs, scene.boxes, scene.optics, strict=True)]


def _run_parallel(fn: Callable[[int], object], n: int, workers: int, desc: str) -> Iterable:
    from tqdm import tqdm

    start = time.perf_counter()
    with Pool(workers) as pool:
        yield from tqdm(pool.imap(fn, range(n), chunksize=16), total=n, desc=desc, unit="img", file=sys.stderr)
    dt = time.perf_counter() - start
    print(f"{desc}: {n} in {dt:.1f} s = {n / max(dt, 1e-9):.0f}/s with {workers} processes", file=sys.stderr)


def cmd_ocr(args: argparse.Namespace) -> int:
    out = Path(args.out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    fn = partial(_ocr_item, seed=args.seed, out=str(out), config=args.config, plate_type=args.plate_type)
    with open(out / "labels.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(OCR_FIELDS + DIFFICULTY_FIELDS)
        for row in _run_parallel(fn, args.n, args.workers, "synth ocr"):
            w.writerow(row)
    print(f"wrote {args.n} crops + labels.csv to {out}")
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve()
    for split in ("train", "val"):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    n_val = int(round(args.n * args.val_fraction))
    fn = partial(_scene_item, seed=args.seed, out=str(out), config=args.config, n_val=n_val)
    with open(out / "labels.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(SCENE_FIELDS)
        for rows in _run_parallel(fn, args.n, args.workers, "synth detect"):
            w.writerows(rows)
    (out / "data.yaml").write_text(
        f"# thaiplate synth detect --n {args.n} --seed {args.seed}\n"
        f"path: {out}\ntrain: images/train\nval: images/val\nnames:\n  0: plate\n")
    print(f"wrote {args.n} scenes ({n_val} val) to {out}; train with: thaiplate train detector --data {out}/data.yaml")
    return 0


def cmd_scene_crops(args: argparse.Namespace) -> int:
    from thaiplate.synth.scene_crops import cut_scene_crops

    root = Path(args.out)
    parts = [root / Path(d).name for d in args.data] if len(args.data) > 1 else [root]
    total = 0
    for i, (data, out) in enumerate(zip(args.data, parts, strict=True)):
        n = cut_scene_crops(data, out, subset=args.subset, copies=args.copies, jitter=args.jitter,
                            min_width=args.min_width, seed=args.seed + i)
        print(f"wrote {n} crops from {data} to {out}")
        total += n
    if len(parts) > 1:
        _merge_labels(parts, root)
        print(f"wrote {root}/labels.csv: {total} crops; train with: thaiplate train recognizer --data {root}")
    return 0


def _merge_labels(parts: list[Path], out: Path) -> None:
    """One labels.csv over several crop folders (files made relative to ``out``)."""
    rows: list[dict[str, str]] = []
    for part in parts:
        with open(part / "labels.csv", encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                rows.append({**row, "file": f"{part.relative_to(out).as_posix()}/{row['file']}"})
    with open(out / "labels.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["file", "text", "province_code"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def cmd_preview(args: argparse.Namespace) -> int:
    from thaiplate.synth.preview import contact_sheet

    sheet = contact_sheet(args.n, args.seed, args.config, real_dir=args.real, cols=args.cols, plate_type=args.plate_type)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(args.out, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out}")
    return 0


def _check_fonts(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            fonts.find_fonts()
        except fonts.FontsMissingError as e:
            print(f"error: {e}", file=sys.stderr)
            return 3
        return fn(args)

    return run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="generate synthetic Thai plates (OCR crops, detector scenes, previews)",
                       description="Generate synthetic Thai plate data. Deterministic for a given --seed.")
    s = p.add_subparsers(dest="synth_cmd", metavar="KIND", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    common.add_argument("--config", help="YAML overriding thaiplate/configs/synth.yaml")
    common.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")

    o = s.add_parser("ocr", parents=[common], help="plate crops + labels.csv (file,text,province_code,plate_type + difficulty: detail_px,blur_px,noise_sd,jpeg_q)")
    o.add_argument("--n", type=int, required=True, help="number of crops")
    o.add_argument("--out", required=True, help="output folder")
    o.add_argument("--plate-type", type=PlateType, choices=list(PlateType),
                   help="only this kind of plate (a test set for one look); default: the engine's mix")
    o.set_defaults(func=_check_fonts(cmd_ocr))

    d = s.add_parser("detect", parents=[common], help="scenes with 0-3 plates in YOLO format + data.yaml")
    d.add_argument("--n", type=int, required=True, help="number of scenes")
    d.add_argument("--out", required=True, help="output folder")
    d.add_argument("--val-fraction", type=float, default=0.15, help="share of scenes in the val split")
    d.set_defaults(func=_check_fonts(cmd_detect))

    c = s.add_parser(
        "scene-crops", help="recogniser crops cut from labelled scene sets with the serving crop code",
        description="Cut every text-labelled plate of the scene sets' train split with jittered boxes and "
                    "thaiplate.crop.rectify_plate, as serving does after the detector; writes labels.csv "
                    "(file,text,province_code,...) for `thaiplate train recognizer|classifier --data`.")
    c.add_argument("--data", nargs="+", required=True, help="scene folders (labels.csv from `synth detect`)")
    c.add_argument("--out", required=True, help="output folder (one subfolder per scene set when several)")
    c.add_argument("--subset", default="images/train/", help="only scenes under this prefix (default images/train/)")
    c.add_argument("--copies", type=int, default=2, help="jittered crops per plate (default 2)")
    c.add_argument("--jitter", type=float, default=0.05, help="box side jitter, fraction of width/height (default 0.05)")
    c.add_argument("--min-width", type=float, default=40.0, help="skip plates narrower than this in the scene (px)")
    c.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    c.set_defaults(func=cmd_scene_crops)

    v = s.add_parser("preview", parents=[common], help="contact-sheet PNG of synthetic crops (and real ones)")
    v.add_argument("--n", type=int, default=40, help="synthetic crops on the sheet")
    v.add_argument("--cols", type=int, default=5)
    v.add_argument("--real", help="folder of real crops with labels.csv to show side by side")
    v.add_argument("--out", default="synth-preview.png", help="PNG to write")
    v.add_argument("--plate-type", type=PlateType, choices=list(PlateType),
                   help="only this kind of plate (real crops: those whose text fits its grammar)")
    v.set_defaults(func=_check_fonts(cmd_preview))
