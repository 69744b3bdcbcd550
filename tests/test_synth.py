"""Synthetic engine: grammar, coverage, determinism, YOLO labels, font errors."""

from __future__ import annotations

import csv
import dataclasses
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from thaiplate import labels
from thaiplate.labels import PlateType
from thaiplate.synth import fonts
from thaiplate.synth.augment import Degradation, augment_config, load_config
from thaiplate.synth.crops import ocr_sample, rectified_box
from thaiplate.synth.grammar import PlateSpec, confusable_letter, double_letter, sample_plate
from thaiplate.synth.render import render_plate
from thaiplate.synth.scene import make_scene, yolo_lines

ROOT = Path(__file__).resolve().parents[1]


def test_every_label_matches_its_grammar():
    for i in range(3000):
        spec = sample_plate(np.random.default_rng([7, i]))
        assert labels.pattern_for(spec.plate_type).match(spec.text), (spec.plate_type, spec.text)
        assert labels.is_valid_plate(spec.text)
        labels.encode(spec.text)  # every character is in the charset


def test_each_type_renders_with_its_own_layout():
    rng = np.random.default_rng(0)
    for pt in PlateType:
        spec = sample_plate(rng, pt)
        expected_lines = 3 if pt in (PlateType.MOTORCYCLE, PlateType.COMMERCIAL) else 2
        assert len(spec.lines) == expected_lines
        if pt is PlateType.COMMERCIAL:
            assert labels.PATTERNS["commercial"].match(spec.text)


def test_coverage_of_charset_and_provinces_in_5000():
    chars: Counter[str] = Counter()
    provs: Counter[str] = Counter()
    for i in range(5000):
        spec = sample_plate(np.random.default_rng([11, i]))
        chars.update(spec.text.replace(" ", ""))
        provs[spec.province_code] += 1
    assert set(labels.charset()) <= set(chars), set(labels.charset()) - set(chars)
    assert len(provs) == 78
    assert min(chars[c] for c in labels.CONSONANTS) >= 50  # every consonant appears often
    assert min(provs.values()) >= 20


def test_ocr_samples_are_deterministic_per_seed():
    cfg = augment_config(load_config())
    a, b = (ocr_sample(np.random.default_rng([5, 3]), cfg) for _ in range(2))
    c = ocr_sample(np.random.default_rng([6, 3]), cfg).image
    assert a.spec == b.spec and a.degradation == b.degradation and np.array_equal(a.image, b.image)
    assert a.image.shape != c.shape or not np.array_equal(a.image, c)
    assert a.image.dtype == np.uint8 and a.image.ndim == 3 and a.image.shape[2] == 3


def test_degradation_record_says_what_was_done():
    """The difficulty columns are true: a clean config records nothing; forced low-res, blur, noise and
    JPEG are recorded within their configured ranges, and the detail width shrinks with the down-sample."""
    cfg = augment_config(load_config())
    clean = dataclasses.replace(cfg, **{k: 0.0 for k in cfg.__dict__ if k.startswith("p_")})
    s = ocr_sample(np.random.default_rng(7), clean)
    assert s.degradation == Degradation() and s.detail_px == s.plate_px
    lo, hi = cfg.plate_width_px
    assert lo <= s.plate_px <= hi
    forced = dataclasses.replace(clean, p_low_res=1.0, p_defocus=1.0, p_noise=1.0, p_jpeg=1.0)
    for i in range(10):
        s = ocr_sample(np.random.default_rng([7, i]), forced)
        d = s.degradation
        assert cfg.low_res_factor[0] <= d.low_res <= cfg.low_res_factor[1]
        assert abs(s.detail_px - s.plate_px * d.low_res) < 1e-9 and s.detail_px < s.plate_px
        assert 0.3 <= d.blur_px <= cfg.max_blur_px
        assert cfg.noise_sd[0] <= d.noise_sd <= cfg.noise_sd[1]
        assert cfg.jpeg_quality[0] <= d.jpeg_q <= cfg.jpeg_quality[1]


def test_soft_optics_fade_and_blur_at_detail_resolution_and_are_recorded():
    """Forced soft optics lower the contrast and record a blur in image pixels (sigma / down-sample);
    at 0 they draw no random number, so the same seed gives the same crop as before the option."""
    cfg = augment_config(load_config())
    clean = dataclasses.replace(cfg, **{k: 0.0 for k in cfg.__dict__ if k.startswith("p_")},
                                contrast=(1.0, 1.0), brightness=(1.0, 1.0))  # the draws shift; keep light fixed
    soft = dataclasses.replace(clean, p_soft_optics=1.0, p_low_res=1.0)
    lo, hi = cfg.soft_blur_px
    faded = 0
    for i in range(8):
        a = ocr_sample(np.random.default_rng([9, i]), clean)
        b = ocr_sample(np.random.default_rng([9, i]), soft)
        d = b.degradation
        assert lo <= d.blur_px * d.low_res <= hi  # sigma drawn at detail resolution, recorded in image px
        faded += b.image.astype(float).std() < a.image.astype(float).std()
    assert faded == 8
    assert clean.p_soft_optics == 0.0
    off = ocr_sample(np.random.default_rng(3), dataclasses.replace(cfg, p_soft_optics=0.0))
    assert np.array_equal(off.image, ocr_sample(np.random.default_rng(3), cfg).image)


def test_rectified_crops_cut_the_province_line_but_never_the_registration():
    """Deep insets are pulled back to the registration lines; the province line alone may be cut."""
    rng = np.random.default_rng(4)
    cut_province = 0
    for pt in PlateType:
        plate = render_plate(sample_plate(rng, pt), rng, px_per_mm=0.6)
        h, w = plate.rgb.shape[:2]
        x1, y1, x2, y2 = rectified_box(plate, (0.0, 0.0), w, h, [0.3, 0.3, 0.3, 0.3])
        assert x1 > 0 and x2 < w  # the insets still bite where nothing is printed
        for line, (bx1, by1, bx2, by2) in zip(plate.spec.lines, plate.text_boxes, strict=True):
            inside = x1 <= bx1 and y1 <= by1 and bx2 <= x2 and by2 <= y2
            if line == plate.spec.province_th or line.startswith("THAILAND"):
                cut_province += not inside
            else:
                assert inside, (pt, line)
    assert cut_province >= 3  # car-style plates print the province at the bottom edge
    cfg = dataclasses.replace(augment_config(load_config()), p_rectified=1.0)
    img = ocr_sample(np.random.default_rng(1), cfg).image
    assert img.dtype == np.uint8 and img.shape[2] == 3 and img.shape[1] > img.shape[0]


def test_yolo_labels_inside_image_and_on_the_plate():
    cfg = load_config()
    for i in range(6):
        scene = make_scene(np.random.default_rng([2, i]), augment_config(cfg), cfg["scene"])
        h, w = scene.image.shape[:2]
        assert len(scene.boxes) == len(scene.specs) == len(yolo_lines(scene))
        for (x1, y1, x2, y2), line in zip(scene.boxes, yolo_lines(scene), strict=True):
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
            _, cx, cy, bw, bh = map(float, line.split())
            assert 0 < cx < 1 and 0 < cy < 1 and 0 < bw <= 1 and 0 < bh <= 1
            # the pasted plate is brighter / more contrasted than a random patch: check its box is not empty
            patch = scene.image[int(y1) : int(y2) + 1, int(x1) : int(x2) + 1]
            assert patch.size > 0 and patch.std() > 5


def test_scene_records_each_plates_optics_without_changing_the_scene():
    cfg = load_config()
    looks = []
    for i in range(12):
        scene = make_scene(np.random.default_rng([4, i]), augment_config(cfg), cfg["scene"])
        assert len(scene.optics) == len(scene.boxes)
        looks += [(spec is None, look) for spec, look in zip(scene.specs, scene.optics, strict=True)]
    blur, fade = cfg["scene"]["plate_blur_px"], cfg["scene"]["plate_fade"]
    assert all(look == (0.0, 0.0) for native, look in looks if native)  # real plates: no pasted optics
    soft = [look for native, look in looks if not native and look != (0.0, 0.0)]
    assert soft and all(blur[0] <= b <= blur[1] and fade[0] <= f <= fade[1] for b, f in soft)
    crisp = {**cfg["scene"], "p_plate_optics": 0.0}
    scene = make_scene(np.random.default_rng([4, 0]), augment_config(cfg), crisp)
    assert set(scene.optics) <= {(0.0, 0.0)}


def test_cli_ocr_is_deterministic_and_writes_labels(tmp_path):
    for name in ("a", "b"):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "thaiplate.cli",
                "synth",
                "ocr",
                "--n",
                "12",
                "--seed",
                "4",
                "--workers",
                "2",
                "--out",
                str(tmp_path / name),
            ],
            check=True,
            capture_output=True,
        )
    rows_a, rows_b = (
        list(csv.DictReader((tmp_path / n / "labels.csv").open(encoding="utf-8"))) for n in "ab"
    )
    assert rows_a == rows_b and len(rows_a) == 12
    assert list(rows_a[0]) == ["file", "text", "province_code", "plate_type", "detail_px", "blur_px", "noise_sd", "jpeg_q"]
    for r in rows_a:
        assert (tmp_path / "a" / r["file"]).read_bytes() == (tmp_path / "b" / r["file"]).read_bytes()


def test_cli_detect_writes_a_data_yaml(tmp_path):
    out = tmp_path / "scenes"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "thaiplate.cli",
            "synth",
            "detect",
            "--n",
            "6",
            "--seed",
            "1",
            "--workers",
            "1",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    with open(out / "labels.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["file", "plate_text", "province_code", "x1", "y1", "x2", "y2", "plate_blur_px", "plate_fade"]
    assert all(bool(r["x1"]) == bool(r["plate_blur_px"]) == bool(r["plate_fade"]) for r in rows)
    text = (out / "data.yaml").read_text()
    assert "train: images/train" in text and "val: images/val" in text and "0: plate" in text
    assert (
        len(list((out / "images" / "train").glob("*.jpg")))
        + len(list((out / "images" / "val").glob("*.jpg")))
        == 6
    )


def test_missing_fonts_give_install_instructions(tmp_path):
    env_code = (
        "import thaiplate.synth.fonts as f; f.FONT_DIRS[:] = []; f._index.cache_clear(); f.find_fonts.cache_clear();\n"
        f"from thaiplate.cli import main; raise SystemExit(main(['synth','ocr','--n','1','--out',{str(tmp_path)!r}]))"
    )
    r = subprocess.run(
        [sys.executable, "-c", env_code],
        capture_output=True,
        text=True,
        env={"THAIPLATE_FONT_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 3
    assert "apt-get install" in r.stderr and "fonts-thai-tlwg" in r.stderr


def test_unknown_config_key_is_an_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("augment:\n  rotation_degs: 5\n")
    with pytest.raises(ValueError, match="rotation_degs"):
        augment_config(load_config(bad))


def test_fonts_resolve_every_role():
    fs = fonts.find_fonts()
    for role in fonts.FACES:
        assert fs.choices(role)


DASHCAM = ROOT.parent / "shared" / "datasets" / "dashcam-plates-mit"


@pytest.mark.skipif(
    not (DASHCAM / "labels.csv").is_file(), reason="needs ../shared/datasets/dashcam-plates-mit"
)
@pytest.mark.parametrize("p_native", [0.0, 1.0])
def test_dashcam_plates_are_kept_or_replaced(p_native):
    """p_native_plate 1 keeps every real plate with its own box and no text; 0 pastes Thai plates."""
    from thaiplate.synth.scene import dashcam_index

    cfg = load_config()
    scene_cfg = {
        **cfg["scene"],
        "p_dashcam": 1.0,
        "p_empty": 0.0,
        "p_native_plate": p_native,
        "dashcam_dir": str(DASHCAM),
    }
    known = {b for _, boxes in dashcam_index(str(DASHCAM.resolve())) for b in boxes}
    for i in range(4):
        scene = make_scene(np.random.default_rng([11, i]), augment_config(cfg), scene_cfg)
        assert scene.boxes and len(scene.boxes) == len(scene.specs)
        if p_native:
            assert all(s is None for s in scene.specs) and all(b in known for b in scene.boxes)
        else:
            assert all(s is not None and s.text for s in scene.specs)


@pytest.mark.skipif(
    not (DASHCAM / "labels.csv").is_file(), reason="needs ../shared/datasets/dashcam-plates-mit"
)
def test_far_dashcam_scenes_shrink_whole_frames_and_their_labels():
    """p_far_dashcam 1: a grid of shrunk frames, every label inside the image and small, one spec per box;
    at 0 (the default) the same seed gives the same scene as before the option existed."""
    cfg = load_config()
    base = {**cfg["scene"], "p_dashcam": 1.0, "p_empty": 0.0, "dashcam_dir": str(DASHCAM)}
    widths = []
    for i in range(4):
        scene = make_scene(np.random.default_rng([12, i]), augment_config(cfg), {**base, "p_far_dashcam": 1.0})
        h, w = scene.image.shape[:2]
        assert len(scene.boxes) == len(scene.specs) == len(scene.optics) > 0
        for x1, y1, x2, y2 in scene.boxes:
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h and x2 - x1 >= 6
        widths += [b[2] - b[0] for b in scene.boxes]
    assert np.median(widths) < 60  # the dashcam plates are ~100 px at full size
    without = {k: v for k, v in base.items() if k != "p_far_dashcam"}
    a = make_scene(np.random.default_rng(3), augment_config(cfg), {**without, "p_far_dashcam": 0.0})
    b = make_scene(np.random.default_rng(3), augment_config(cfg), without)
    assert a.boxes == b.boxes and np.array_equal(a.image, b.image)


def test_dealer_frame_surrounds_the_plate_and_leaves_its_box_alone():
    """A framed plate keeps the label box of the bare plate; the frame shows in a ring just outside it."""
    from thaiplate.synth.scene import _paste

    cfg = load_config()
    spec = sample_plate(np.random.default_rng(5))
    bg = np.full((360, 640, 3), 128, np.uint8)
    out = {}
    for p_frame in (0.0, 1.0):
        scene_cfg = {**cfg["scene"], "p_plate_frame": p_frame}
        img, box = _paste(bg.copy(), spec, (320, 180), 160, augment_config(cfg), np.random.default_rng(7), (0, 0), scene_cfg)
        out[p_frame] = img, box
    (bare, box0), (framed, box1) = out[0.0], out[1.0]
    assert box0 is not None and box0 == box1
    x1, y1, x2, y2 = (int(v) for v in box0)
    ring = np.zeros(bg.shape[:2], bool)
    ring[y1 - 6 : y2 + 6, x1 - 6 : x2 + 6] = True
    ring[y1 - 1 : y2 + 2, x1 - 1 : x2 + 2] = False
    changed = np.abs(framed.astype(int) - bg).sum(-1) > 10
    assert changed[ring].mean() > 0.5  # the frame
    assert (np.abs(bare.astype(int) - bg).sum(-1) > 10)[ring].mean() < 0.3  # no frame: background around


def _free_when_off_other_mask_when_on(text: str, seed: int, field: str) -> np.ndarray:
    """Line-1 mask with the TextStyle ``field`` at 0 is the default one and draws no extra random number
    (old seeds hold); at 1 it is another mask, which is returned."""
    from thaiplate.synth.render import TextStyle, registration_mask

    off_a, off_b = np.random.default_rng(seed), np.random.default_rng(seed)
    plain = registration_mask(text, 40, off_a, TextStyle(**{field: 0.0}))
    assert np.array_equal(plain, registration_mask(text, 40, off_b))
    assert off_a.random() == off_b.random()
    on = registration_mask(text, 40, np.random.default_rng(seed), TextStyle(**{field: 1.0}))
    assert on.shape != plain.shape or not np.array_equal(on, plain)
    return on


def test_stroke_one_draws_plain_bars_and_is_free_when_off():
    """p_stroke_one 1 draws every 1 as a bar (a different mask); 0 draws no random number (old seeds hold)."""
    bars = _free_when_off_other_mask_when_on("1กข 1111", 4, "stroke_one")
    # sanity: the bars stand the full digit height (40 px) on the common baseline
    cols = (bars > 127).sum(axis=0)
    assert cols.max() >= 38


@pytest.mark.parametrize("p_weight", [0.0, 1.0])
def test_stroke_weight_thickens_or_thins_line_one(p_weight):
    """p_weight 1 with a fixed positive change adds ink, a negative one removes it; 0 leaves the face alone."""
    from thaiplate.synth.render import TextStyle, registration_mask

    def ink(weight: tuple[float, float]) -> float:
        style = TextStyle(p_weight=p_weight, weight=weight)
        return float((registration_mask("1กข 2345", 40, np.random.default_rng(9), style) > 127).sum())

    base = float((registration_mask("1กข 2345", 40, np.random.default_rng(9)) > 127).sum())
    heavy, light = ink((0.05, 0.05)), ink((-0.03, -0.03))
    if p_weight:
        assert heavy > 1.3 * base and light < 0.8 * base
    else:
        assert heavy == light == base


def test_chance_draws_nothing_at_zero_and_one_number_otherwise():
    """The guard every newer synthesis option goes through: at p 0 the generator is untouched, so old seeds
    keep their data; at p > 0 exactly one number is drawn."""
    from thaiplate.synth.chance import chance

    rng, ref = np.random.default_rng(5), np.random.default_rng(5)
    assert not chance(rng, 0.0)
    assert rng.bit_generator.state == ref.bit_generator.state
    first = ref.random()
    assert chance(rng, 1.0) and rng.bit_generator.state == ref.bit_generator.state
    assert chance(np.random.default_rng(5), first + 1e-9) and not chance(np.random.default_rng(5), first)


def test_double_letter_pairs_the_series_letters_on_every_line():
    rng = np.random.default_rng(3)
    for pt in PlateType:
        spec = sample_plate(rng, pt)
        d = double_letter(spec)
        letters = [c for c in spec.text if "ก" <= c <= "ฮ"]
        if pt is PlateType.COMMERCIAL or len(letters) < 2:
            assert d == spec
            continue
        first = letters[0]
        assert d.text.count(first * 2) >= 1 and len(d.text) == len(spec.text)
        assert any(first * 2 in line for line in d.lines) and d.province_th == spec.province_th
        assert labels.pattern_for(pt).fullmatch(d.text), (pt, d.text)
    cfg = augment_config(load_config())
    on = dataclasses.replace(cfg, p_double_letter=1.0)
    s = ocr_sample(np.random.default_rng(11), on, sample_plate(np.random.default_rng(11), PlateType.PRIVATE_CAR))
    assert any(a == b and "ก" <= a <= "ฮ" for a, b in zip(s.spec.text, s.spec.text[1:], strict=False))


def test_letter_rewrites_leave_the_province_line_alone():
    bkk = sample_plate(np.random.default_rng(0), PlateType.PRIVATE_CAR)
    spec = PlateSpec(PlateType.PRIVATE_CAR, "1กร 1234", bkk.province_code, "กรุงเทพมหานคร", ("1กร 1234", "กรุงเทพมหานคร"))
    assert double_letter(spec).lines == ("1กก 1234", "กรุงเทพมหานคร")
    swapped = confusable_letter(spec, np.random.default_rng(1), {"ฎฏ": 1.0})
    assert swapped.lines[1] == "กรุงเทพมหานคร" and swapped.text == swapped.lines[0]
    assert sum(a != b for a, b in zip(swapped.text, spec.text, strict=True)) == 1
    assert set(swapped.text) - set(spec.text) <= set("ฎฏ")


def test_confusable_letter_draws_look_alikes_by_group_weight():
    rng = np.random.default_rng(4)
    groups = {"ฎฏ": 3.0, "ซช": 1.0}
    seen = []
    for _ in range(400):
        spec = sample_plate(rng, PlateType.PRIVATE_CAR)
        out = confusable_letter(spec, rng, groups)
        assert labels.pattern_for(PlateType.PRIVATE_CAR).fullmatch(out.text), out.text
        assert out.text in out.lines and out.province_th in out.lines
        seen += [c for c in out.text if c in "ฎฏซช"]
    share = sum(c in "ฎฏ" for c in seen) / len(seen)
    assert 0.65 < share < 0.85, share  # 3:1 by weight, plus the odd letter the plate already had
    lta = sample_plate(rng, PlateType.COMMERCIAL)
    before = rng.bit_generator.state
    assert confusable_letter(lta, rng, groups) == lta and rng.bit_generator.state == before


def test_lta_number_line_has_plain_bar_ones_and_a_mid_height_hyphen():
    """The real-look LTA number: every 1 is a full-height bar, the hyphen a short bar at mid-height, and
    the digits are lighter than the bold registration faces (less ink per digit)."""
    from thaiplate.synth.render import lta_number_mask, registration_mask

    h = 60
    mask = lta_number_mask("11-1111", h, np.random.default_rng(3)) > 127
    cols = mask.sum(axis=0)
    full = cols >= h - 2  # columns inked over the whole digit height: the bars of the 1s
    runs = np.flatnonzero(np.diff(np.r_[0, full.astype(int), 0]) == 1)
    assert len(runs) == 6  # six 1s, six separate bars
    short = (cols > 0) & (cols < h // 4)  # the hyphen: a run of short columns between the bars
    rows = np.flatnonzero(mask[:, short].any(axis=1))
    centre = (rows.min() + rows.max()) / 2 - (mask.shape[0] - h) / 2
    assert abs(centre - h / 2) < h * 0.12
    # faces are drawn at random: compare the mean ink of 20 draws (measured ratio 0.57-0.66)
    light = np.mean([(lta_number_mask("80-8080", h, np.random.default_rng(i)) > 127).sum() for i in range(20)])
    bold = np.mean([(registration_mask("80-8080", h, np.random.default_rng(i)) > 127).sum() for i in range(20)])
    assert light < 0.8 * bold


def test_lta_light_redraws_only_commercial_plates_and_is_free_when_off():
    """p_lta_light 1 changes Land Transport Act plates (taller number line) and leaves other kinds and the
    random stream alone; at 0 the render is the committed engine's."""
    from thaiplate.synth.render import TextStyle

    rng = np.random.default_rng(11)
    lta, car = sample_plate(rng, PlateType.COMMERCIAL), sample_plate(rng, PlateType.PRIVATE_CAR)
    for spec in (lta, car):
        a, b = render_plate(spec, np.random.default_rng(2)), render_plate(spec, np.random.default_rng(2), style=TextStyle())
        assert np.array_equal(a.rgb, b.rgb)
    same = render_plate(car, np.random.default_rng(2), style=TextStyle(lta_light=1.0))
    assert np.array_equal(same.rgb, render_plate(car, np.random.default_rng(2)).rgb)
    old, new = render_plate(lta, np.random.default_rng(2)), render_plate(lta, np.random.default_rng(2), style=TextStyle(lta_light=1.0))
    number_h = [(p.text_boxes[1][3] - p.text_boxes[1][1]) / p.rgb.shape[0] for p in (old, new)]
    assert number_h[1] > number_h[0] and 0.38 < number_h[1] < 0.56
    assert len(new.text_boxes) == 3


def test_cli_ocr_plate_type_makes_a_one_kind_test_set(tmp_path):
    from thaiplate.cli import main

    out = tmp_path / "lta"
    config = ROOT / "thaiplate/configs/synth-ocr-v18.yaml"
    assert main(["synth", "ocr", "--n", "16", "--seed", "3", "--workers", "1", "--plate-type", "commercial",
                 "--config", str(config), "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "labels.csv").open(encoding="utf-8")))
    assert len(rows) == 16 and {r["plate_type"] for r in rows} == {"commercial"}
    assert all(labels.PATTERNS["commercial"].fullmatch(r["text"]) for r in rows)


def test_preview_keeps_one_kind_of_plate_on_both_sides(tmp_path):
    """--plate-type: synthetic tiles of that kind only, and real crops whose text fits its grammar."""
    import cv2

    from thaiplate.cli import main
    from thaiplate.synth.preview import real_rows

    real = tmp_path / "real"
    (real / "crops").mkdir(parents=True)
    texts = ["1กข 1234", "71-4080", "ฆฏ 6644", "31-9042"]
    for i, _ in enumerate(texts):
        cv2.imwrite(str(real / "crops" / f"{i}.png"), np.full((60, 135, 3), 200, np.uint8))
    (real / "labels.csv").write_text("file,text,province_code\n" + "".join(f"crops/{i}.png,{t},\n" for i, t in enumerate(texts)),
                                     encoding="utf-8")
    assert [r["text"] for r in real_rows(str(real), 8, PlateType.COMMERCIAL)] == ["71-4080", "31-9042"]
    assert len(real_rows(str(real), 8)) == 4 and len(real_rows(str(real), 2)) == 2
    out = tmp_path / "sheet.png"
    assert main(["synth", "preview", "--n", "4", "--cols", "2", "--plate-type", "commercial", "--real", str(real),
                 "--out", str(out)]) == 0
    sheet = cv2.imread(str(out))
    assert sheet.shape[0] == 2 * (90 + 22) and sheet.shape[1] == 2 * 2 * 200 + 12  # 2 rows; real | gap | synth


def test_packaged_ofl_faces_map_every_plate_consonant_and_match_their_checksums():
    """The shipped OFL faces are the files their README names (sha256), each with its licence, and each
    maps all 42 plate consonants to glyphs (its cmap; a missing one would draw the empty-glyph box)."""
    import hashlib
    import re

    ttlib = pytest.importorskip("fontTools.ttLib")
    readme = (fonts.PACKAGE_FONTS / "README.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"`([\w-]+\.woff)` \|[^|]+\|[^|]+\| `([0-9a-f]{64})`", readme))
    assert set(listed) == set(fonts.FACES["letters_ofl"]) and len(listed) == 4
    for name, digest in listed.items():
        path = fonts.PACKAGE_FONTS / name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
        assert (fonts.PACKAGE_FONTS / f"OFL-{name.removesuffix('-thai-700-normal.woff')}.txt").is_file()
        cmap = ttlib.TTFont(str(path)).getBestCmap()
        assert [ch for ch in labels.CONSONANTS if ord(ch) not in cmap] == [], name
        assert ord("5") not in cmap  # Thai subset: the digits come from the digit faces


def test_ofl_letters_change_the_letter_face_only_when_asked():
    """ofl_letters 1 draws the series letters in a packaged face (another mask); 0 draws no random number."""
    _free_when_off_other_mask_when_on("1กข 2345", 6, "ofl_letters")


def test_ofl_faces_hold_a_face_out():
    """ofl_faces keeps only the named files: a held-out face is never drawn, an unknown one is an error."""
    from thaiplate.synth.render import _pick

    only = ("kanit-thai-700-normal.woff", "prompt-thai-700-normal.woff")
    rng = np.random.default_rng(0)
    picked = {Path(_pick(rng, "letters_ofl", only)).name for _ in range(60)}
    assert picked == set(only)
    with pytest.raises(ValueError, match="letters_ofl"):
        _pick(rng, "letters_ofl", ("nope.woff",))
    cfg = augment_config(load_config(None) | {"augment": {**load_config(None)["augment"], "ofl_faces": list(only)}})
    assert cfg.text_style.ofl_faces == only


def test_elastic_letters_bend_only_the_letters_and_are_free_when_off():
    """p_elastic_letters 1 moves ink inside the series letters but keeps their amount (a bend, not a
    weight change) and leaves the digits as drawn; 0 draws no random number (old seeds hold)."""
    from thaiplate.synth.render import TextStyle, _elastic, registration_mask

    bent = _free_when_off_other_mask_when_on("1กข 2345", 8, "elastic_letters")
    plain = registration_mask("1กข 2345", 40, np.random.default_rng(8))
    digits = plain.shape[1] // 3  # "2345" fills the right third or more: its columns hold the same ink
    assert np.array_equal((bent[:, -digits:] > 0).sum(0), (plain[:, -digits:] > 0).sum(0))
    part = (np.zeros((40, 60), np.uint8), 30)
    part[0][8:32, 10:50] = 255
    mask, baseline = _elastic(part, 30, TextStyle(elastic_letters=1.0, elastic_amount=(0.08, 0.08)),
                              np.random.default_rng(1))
    pad = (mask.shape[0] - 40) // 2
    assert pad >= 3 and baseline == 30 + pad  # padded so bent strokes are not cut, baseline moved with it
    ink_before, ink_after = float(part[0].sum()), float(mask.sum())
    assert abs(ink_after - ink_before) < 0.05 * ink_before
    moved = mask[pad:-pad, pad:-pad] != part[0]
    assert moved.sum() > 20  # edges moved ...
    assert moved.sum() < 0.5 * (part[0] > 0).sum()  # ... but the block is still a block
    cfg = augment_config(load_config(None) | {"augment": {**load_config(None)["augment"], "p_elastic_letters": 0.5}})
    assert cfg.text_style.elastic_letters == 0.5


def test_balance_frame_takes_a_cameras_cast_out():
    """A grey street under a purple cast comes back with equal channel means (within the warmth asked for)."""
    from thaiplate.synth.scene import balance_frame

    rng = np.random.default_rng(3)
    grey = rng.uniform(40, 160, (90, 160, 1)).astype(np.float32)
    purple = np.clip(grey * np.array([1.25, 0.8, 1.35], np.float32), 0, 255).astype(np.uint8)
    means = balance_frame(purple, np.random.default_rng(0), warmth=0.0).reshape(-1, 3).mean(axis=0)
    assert np.ptp(means) < 2.0 < np.ptp(purple.reshape(-1, 3).mean(axis=0))
    warm = balance_frame(purple, np.random.default_rng(0), warmth=0.08).reshape(-1, 3).mean(axis=0)
    assert np.ptp(warm) <= 0.17 * warm.mean()


def test_oblique_plates_are_narrower_and_the_option_is_free_when_off():
    """p_oblique 1 foreshortens the pasted plate (box width x cos(yaw) or less, taller for its width);
    p_oblique 0 draws no random number, so old seeds give the same scenes."""
    from thaiplate.synth.scene import _paste, oblique_view

    cfg = load_config()
    off_rng, ref = np.random.default_rng(4), np.random.default_rng(4)
    assert oblique_view({**cfg["scene"], "p_oblique": 0.0}, off_rng) is None
    assert off_rng.random() == ref.random()
    spec = sample_plate(np.random.default_rng(5))
    bg = np.full((360, 640, 3), 128, np.uint8)
    boxes = {}
    for p in (0.0, 1.0):
        scene_cfg = {**cfg["scene"], "p_oblique": p, "oblique_yaw_deg": [50, 50], "oblique_slant_deg": [10, 10]}
        _, boxes[p] = _paste(bg.copy(), spec, (320, 180), 200, augment_config(cfg), np.random.default_rng(7), (0, 0), scene_cfg)
    (fx1, fy1, fx2, fy2), (sx1, sy1, sx2, sy2) = boxes[0.0], boxes[1.0]
    assert sx2 - sx1 < 0.75 * (fx2 - fx1)  # cos 50° = 0.64, plus the slope's few px
    assert (sy2 - sy1) / (sx2 - sx1) > 1.3 * (fy2 - fy1) / (fx2 - fx1)
