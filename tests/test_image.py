"""Bytes -> RGB and request unwrapping: every bad input gets its stable error code, good ones decode right."""

from __future__ import annotations

import base64
import io
import json
import time

import numpy as np
import pytest
from PIL import Image

from thaiplate.image import ImageError, decode_base64, decode_image, load_request_images
from thaiplate.testing.badinputs import (
    EMPTY_RESULT,
    encode,
    exif_rotated_jpeg,
    huge_png,
    make_bad_inputs,
    multipart,
    png16_rgb,
)

CASES = make_bad_inputs()


def _decode_request(body, content_type):
    return [decode_image(f) for f in load_request_images(body, content_type)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_corpus(name: str) -> None:
    body, ctype, expected = CASES[name]
    if expected == EMPTY_RESULT:
        images = _decode_request(body, ctype)
        assert images and all(i.dtype == np.uint8 and i.ndim == 3 and i.shape[2] == 3 for i in images)
    else:
        with pytest.raises(ImageError) as err:
            _decode_request(body, ctype)
        assert err.value.code == expected, err.value.message
        assert err.value.http_status in (400, 413)
        assert err.value.message


def test_error_shape_and_status() -> None:
    with pytest.raises(ImageError) as err:
        decode_image(b"x" * 100, max_bytes=10)
    e = err.value
    assert isinstance(e, ValueError)
    assert e.http_status == 413
    assert e.to_dict() == {"error": {"code": "too_large", "message": e.message}}
    assert "100" in e.message and "10" in e.message


def test_pixel_bomb_rejected_from_header_without_decoding() -> None:
    bomb = huge_png(20_000, 20_000)  # 400 Mpx, a few kB on the wire
    t0 = time.perf_counter()
    with pytest.raises(ImageError) as err:
        decode_image(bomb)
    assert err.value.code == "too_many_pixels" and err.value.http_status == 413
    assert time.perf_counter() - t0 < 0.2  # decoding 400 Mpx would take seconds


def test_own_limits_are_stricter_than_pillows() -> None:
    png = huge_png(5000, 4000)  # 20 Mpx: fine for Pillow, over a 10 Mpx budget
    with pytest.raises(ImageError) as err:
        decode_image(png, max_pixels=10_000_000)
    assert err.value.code == "too_many_pixels"
    with pytest.raises(ImageError) as err:
        decode_image(huge_png(9000, 10), max_side=8000)
    assert err.value.code == "too_many_pixels"


def test_exif_orientation_is_applied() -> None:
    raw = exif_rotated_jpeg()
    assert Image.open(io.BytesIO(raw)).size == (64, 32)  # stored landscape
    img = decode_image(raw)
    assert img.shape == (64, 32, 3)  # displayed portrait (Orientation 6 = rotate 90 cw)


def test_exif_rotation_direction() -> None:
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :20] = (255, 0, 0)  # left half red, right half blue
    a[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise -> left half ends on top
    img = decode_image(encode(Image.fromarray(a), "PNG", exif=exif))
    assert img.shape == (40, 20, 3)
    assert img[5, 10, 0] > 200 and img[35, 10, 2] > 200


def test_alpha_composited_on_white() -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255  # red
    rgba[:2, ..., 3] = 0  # top half fully transparent
    rgba[2:, ..., 3] = 255
    img = decode_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert img[0, 0].tolist() == [255, 255, 255]
    assert img[3, 0].tolist() == [255, 0, 0]


def test_palette_transparency_and_la() -> None:
    p = Image.new("P", (4, 4), 1)
    p.putpalette([0, 0, 0, 0, 128, 0] + [0] * 762)
    img = decode_image(encode(p, "PNG", transparency=1))
    assert img[0, 0].tolist() == [255, 255, 255]
    la = Image.fromarray(np.dstack([np.full((4, 4), 50, np.uint8), np.full((4, 4), 255, np.uint8)]), "LA")
    assert decode_image(encode(la, "PNG"))[0, 0].tolist() == [50, 50, 50]


def test_16bit_png_scaled_not_clipped() -> None:
    a = np.array([[0, 257 * 100, 65535, 65535]], np.uint16)
    img = decode_image(encode(Image.fromarray(a), "PNG"))
    assert img[0, :, 0].tolist() == [0, 100, 255, 255]
    assert (img[..., 0] == img[..., 2]).all()
    rgb = decode_image(png16_rgb())
    assert rgb.shape == (48, 64, 3) and rgb[..., 0].max() > 200  # 16-bit RGB keeps its range


@pytest.mark.parametrize(
    ("array", "mode", "expected"),
    [
        (np.array([[0, 1000, 65535]], np.int32), "I", [0, 4, 255]),  # looks 16-bit
        (np.array([[0, 128, 255]], np.int32), "I", [0, 128, 255]),  # already 8-bit range
        (np.array([[0.0, 0.5, 1.0]], np.float32), "F", [0, 128, 255]),  # unit float
        (np.array([[-1.0, 0.0, 1.0]], np.float32), "F", [0, 128, 255]),  # min-max stretched
    ],
)
def test_high_depth_modes(array: np.ndarray, mode: str, expected: list[int]) -> None:
    from thaiplate.image import _to_rgb

    img = _to_rgb(Image.fromarray(array, mode))
    assert img[0, :, 1].tolist() == expected


def test_cmyk_and_grayscale_colours() -> None:
    red = Image.new("RGB", (16, 16), (220, 30, 30))
    out = decode_image(encode(red.convert("CMYK"), "JPEG", quality=95))
    assert out[8, 8, 0] > 180 and out[8, 8, 1] < 80
    gray = decode_image(encode(Image.new("L", (8, 8), 77), "PNG"))
    assert gray[0, 0].tolist() == [77, 77, 77]


def test_animated_gif_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), (250, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 250))]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert decode_image(gif)[0, 0, 0] > 200


# ---------------------------------------------------------------------------- request envelopes

JPEG = encode(Image.new("RGB", (32, 16), (1, 2, 3)), "JPEG")
PNG = encode(Image.new("RGB", (10, 10), (9, 9, 9)), "PNG")


def test_raw_bytes_pass_through() -> None:
    assert load_request_images(JPEG, "image/jpeg") == [JPEG]
    assert load_request_images(bytearray(JPEG), None) == [JPEG]


def test_multipart_many_files_any_field_text_fields_ignored() -> None:
    body, ctype = multipart(
        [
            ("file", "a.jpg", "image/jpeg", JPEG),
            ("threshold", None, "text/plain", b"0.5"),
            ("photo", "b.png", "image/png", PNG),
        ]
    )
    assert load_request_images(body, ctype) == [JPEG, PNG]
    assert load_request_images(body, None) == [JPEG, PNG]  # boundary sniffed from the body


def test_multipart_without_boundary_or_cut_short() -> None:
    body, ctype = multipart([("file", "a.jpg", "image/jpeg", JPEG)])
    for b, c in ((body, "multipart/form-data"), (body[: len(body) // 2], ctype)):
        with pytest.raises(ImageError) as err:
            load_request_images(b, c)
        assert err.value.code == "bad_multipart"


def test_json_single_and_many_and_data_url() -> None:
    b64 = base64.b64encode(JPEG).decode()
    assert load_request_images(json.dumps({"image": b64}).encode(), "application/json") == [JPEG]
    doc = {"images": [b64, "data:image/png;base64," + base64.b64encode(PNG).decode()]}
    assert load_request_images(json.dumps(doc), "text/plain") == [JPEG, PNG]
    assert load_request_images(doc, None) == [JPEG, PNG]
    # no content type: JSON is sniffed from the leading brace
    assert load_request_images(json.dumps({"image": b64}).encode(), None) == [JPEG]


def test_base64_variants() -> None:
    s = base64.urlsafe_b64encode(PNG).decode().rstrip("=")
    assert decode_base64(s) == PNG
    assert decode_base64("\n".join([s[:20], s[20:]])) == PNG
    with pytest.raises(ImageError) as err:
        decode_base64("data:image/png,notbase64")
    assert err.value.code == "bad_base64"
    with pytest.raises(ImageError) as err:
        decode_base64("A" * 2000, max_bytes=100)
    assert err.value.code == "too_large"


@pytest.mark.parametrize(
    ("doc", "code"),
    [
        ({"img": "abc"}, "empty"),
        ({"images": "abc"}, "bad_json"),
        ({"image": 12}, "bad_json"),
        ({"image": "%%%"}, "bad_base64"),
    ],
)
def test_json_shape_errors(doc: dict, code: str) -> None:
    with pytest.raises(ImageError) as err:
        load_request_images(doc, "application/json")
    assert err.value.code == code


def test_json_array_body_rejected() -> None:
    with pytest.raises(ImageError) as err:
        load_request_images(b"[1, 2]", "application/json")
    assert err.value.code == "bad_json"


def test_torchserve_request_dicts() -> None:
    """The shapes ``ts.service.retrieve_data_for_inference`` builds (TorchServe 0.12)."""
    b64 = base64.b64encode(JPEG).decode()
    # plain POST: "body" holds bytes, or a dict for application/json, or str for text/*
    assert load_request_images({"body": JPEG}) == [JPEG]
    assert load_request_images({"body": {"image": b64}}) == [JPEG]
    assert load_request_images({"body": b64}, "text/plain") == [JPEG]
    # multipart: one key per form field; query-string parameters arrive as short bytes values
    row = {"model_name": b"thaiplate", "file": JPEG, "threshold": b"0.4", "second": PNG}
    assert load_request_images(row) == [JPEG, PNG]
    with pytest.raises(ImageError) as err:
        load_request_images({"model_name": b"thaiplate"})
    assert err.value.code == "empty"


def test_empty_and_too_many() -> None:
    for body in (None, b"", "", {"body": b""}):
        with pytest.raises(ImageError) as err:
            load_request_images(body, None)
        assert err.value.code == "empty"
    body, ctype = multipart([("f", f"{i}.png", "image/png", PNG) for i in range(3)])
    with pytest.raises(ImageError) as err:
        load_request_images(body, ctype, max_images=2)
    assert err.value.code == "too_many_images" and err.value.http_status == 413
