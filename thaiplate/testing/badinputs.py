"""A deterministic corpus of awkward requests, for the library tests and the TorchServe tests.

``make_bad_inputs()`` maps a name to ``(body, content_type, expected)`` where ``expected`` is the
:class:`thaiplate.image.ImageError` code the request must produce, or ``"empty_result"`` when it is a
valid picture that must give HTTP 200 with ``plates == []`` (these images contain no plate).

Everything is generated in memory in well under a second; nothing is random between runs.
"""

from __future__ import annotations

import base64
import io
import json
import random
import struct
import zlib

import numpy as np
from PIL import Image

EMPTY_RESULT = "empty_result"
Case = tuple[bytes, str | None, str]


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def huge_png(width: int = 10_000, height: int = 10_000) -> bytes:
    """A *valid* 1-bit greyscale PNG of ``width x height`` that compresses to a few kB (a pixel bomb)."""
    row = b"\x00" + bytes((width + 7) // 8)
    raw = zlib.compress(row * height, 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", raw) + png_chunk(b"IEND", b"")


def png16_rgb(width: int = 64, height: int = 48) -> bytes:
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one, so the chunks are built by hand)."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 1000, y * 1300, (x + y) * 500], axis=-1).astype(">u2")
    rows = b"".join(b"\x00" + rgb[i].tobytes() for i in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def scene(width: int = 320, height: int = 240) -> np.ndarray:
    """A smooth plate-free RGB gradient (sky over road); deterministic."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 90 + 60 * y / height
    g = 120 + 40 * x / width
    b = 200 - 120 * y / height
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def exif_rotated_jpeg() -> bytes:
    """A 64x32 JPEG whose EXIF Orientation=6 says "rotate 90° clockwise to display" (-> 32x64)."""
    img = Image.fromarray(scene(64, 32))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(img, "JPEG", exif=exif, quality=90)


def animated_gif() -> bytes:
    frames = [Image.fromarray(scene(80, 60)).convert("P"), Image.new("P", (80, 60), 3)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def multipart(
    parts: list[tuple[str, str | None, str, bytes]], boundary: str = "thaiplateBOUNDARY"
) -> tuple[bytes, str]:
    """``[(field, filename, content_type, data)]`` -> (body, Content-Type header value)."""
    out = b""
    for field, filename, ctype, data in parts:
        disp = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\nContent-Type: {ctype}\r\n\r\n".encode()
        out += data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def make_bad_inputs() -> dict[str, Case]:
    rng = random.Random(20240601)
    plain = Image.fromarray(scene())
    jpeg = encode(plain, "JPEG", quality=90)
    png = encode(plain, "PNG")
    cmyk = encode(plain.convert("CMYK"), "JPEG", quality=90)
    rgba = Image.fromarray(np.dstack([scene(), np.full((240, 320), 128, np.uint8)]), "RGBA")
    gray16 = Image.fromarray((np.asarray(plain.convert("L"), np.uint16) * 257).astype(np.uint16))
    bad_multipart = b'--wrongBoundary\r\nContent-Disposition: form-data; name="file"\r\n\r\n' + jpeg[:100]
    return {
        "empty_body": (b"", "image/jpeg", "empty"),
        "zero_bytes": (bytes(1024), "application/octet-stream", "not_an_image"),
        "random_bytes": (rng.randbytes(4096), "application/octet-stream", "not_an_image"),
        "truncated_jpeg": (jpeg[: len(jpeg) // 2], "image/jpeg", "truncated"),
        "truncated_png": (png[: len(png) // 2], "image/png", "truncated"),
        "pdf": (
            b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n",
            "application/pdf",
            "not_an_image",
        ),
        "svg": (
            b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50"><rect width="100" height="50"/></svg>',
            "image/svg+xml",
            "not_an_image",
        ),
        "animated_gif": (animated_gif(), "image/gif", EMPTY_RESULT),
        "one_pixel": (encode(Image.new("RGB", (1, 1), (200, 10, 10)), "PNG"), "image/png", EMPTY_RESULT),
        "huge_dimensions_png": (huge_png(), "image/png", "too_many_pixels"),
        "body_30mb": (b"\xff\xd8\xff\xe0" + bytes(30 * 1024 * 1024), "image/jpeg", "too_large"),
        "png_16bit_gray": (encode(gray16, "PNG"), "image/png", EMPTY_RESULT),
        "png_16bit_rgb": (png16_rgb(), "image/png", EMPTY_RESULT),
        "cmyk_jpeg": (cmyk, "image/jpeg", EMPTY_RESULT),
        "grayscale_jpeg": (encode(plain.convert("L"), "JPEG"), "image/jpeg", EMPTY_RESULT),
        "rgba_png": (encode(rgba, "PNG"), "image/png", EMPTY_RESULT),
        "exif_rotated_jpeg": (exif_rotated_jpeg(), "image/jpeg", EMPTY_RESULT),
        "malformed_multipart": (
            bad_multipart,
            "multipart/form-data; boundary=expectedBoundary",
            "bad_multipart",
        ),
        "malformed_base64_json": (
            json.dumps({"image": "not*base64!!"}).encode(),
            "application/json",
            "bad_base64",
        ),
        "malformed_json": (b'{"image": "abc', "application/json", "bad_json"),
        "no_plate_jpeg": (jpeg, "image/jpeg", EMPTY_RESULT),
        "no_plate_base64_json": (
            json.dumps({"image": base64.b64encode(jpeg).decode()}).encode(),
            "application/json",
            EMPTY_RESULT,
        ),
        "no_plate_multipart": (*multipart([("file", "car.jpg", "image/jpeg", jpeg)]), EMPTY_RESULT),
    }
