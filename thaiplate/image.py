"""Request bytes -> RGB uint8 array, with clear client errors for everything a user can send.

Two entry points:

- :func:`load_request_images` unwraps the request envelope (raw bytes, multipart/form-data, JSON with
  base64, or the dict TorchServe builds from a request) into a list of encoded image files.
- :func:`decode_image` turns one encoded file into an ``(H, W, 3)`` uint8 RGB array.

Both raise :class:`ImageError` (a ``ValueError``) carrying a stable ``code``, a human ``message`` and the
HTTP status a server should answer with, so the CLI, the library and every TorchServe handler report bad
input the same way.

Decisions:

- Formats: JPEG (and MPO, which phone cameras write; Pillow's JPEG plugin opens it), PNG, WebP, BMP, GIF. Pillow only tries these
  plugins, which keeps TIFF/PSD/EPS/... parsers (bigger attack surface) out of the request path.
- Animated GIF/WebP/APNG are accepted and the **first frame** is used: a still from a clip is still a
  picture of a car, and refusing it helps nobody.
- Pixel limits are checked on the header Pillow reads in ``Image.open`` (lazy), *before* any pixel is
  decoded, so a 50 kB PNG claiming 100 000 x 100 000 pixels costs nothing.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import warnings
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from thaiplate.errors import MAX_IMAGE_BYTES
from thaiplate.errors import http_status as status_for

MAX_BYTES = MAX_IMAGE_BYTES
MAX_SIDE = 8000
MAX_PIXELS = 40_000_000
MAX_IMAGES = 16  # per request; a batch bigger than this is a client bug or an attack
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF")  # the JPEG plugin also opens MPO (phone cameras)

# magic prefixes of things people send that are not images we read, for a helpful message
_KNOWN_NON_IMAGES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"<svg", "an SVG drawing"),
    (b"<?xml", "an XML/SVG document"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
)


class ImageError(ValueError):
    """Bad client input. ``code`` is stable (tests and clients match on it), ``message`` is for humans."""

    def __init__(self, code: str, message: str, http_status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = status_for(code) if http_status is None else http_status

    def to_dict(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


# --------------------------------------------------------------------------------------- decoding


def decode_image(
    data: bytes | bytearray | memoryview,
    *,
    max_bytes: int = MAX_BYTES,
    max_side: int = MAX_SIDE,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """Encoded image file -> ``(H, W, 3)`` uint8 RGB, EXIF-rotated, alpha composited on white."""
    data = bytes(data)
    if not data:
        raise ImageError("empty", "the request contained no image data")
    if len(data) > max_bytes:
        raise ImageError("too_large", f"image is {len(data):,} bytes; the limit is {max_bytes:,} bytes")
    with warnings.catch_warnings():
        # DecompressionBombWarning -> exception; our own limits are stricter anyway
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = _open(data)
        _check_size(img, max_side, max_pixels)
        _load(img)
    img = _exif_transpose(img)
    return _to_rgb(img)


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=_formats())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError("too_many_pixels", f"image has too many pixels ({e})") from None
    except UnidentifiedImageError:
        if _has_image_magic(data):
            raise ImageError("truncated", "image header is truncated or corrupt") from None
        raise ImageError("not_an_image", _not_an_image_message(data)) from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        # header present but unreadable (e.g. a PNG cut inside its IHDR chunk)
        raise ImageError("truncated", f"image header is truncated or corrupt ({e})") from None


def _formats() -> tuple[str, ...]:
    Image.init()  # registers all plugins once; formats missing from this Pillow build are skipped
    return tuple(f for f in FORMATS if f in Image.OPEN)


def _has_image_magic(data: bytes) -> bool:
    return data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")) or (
        data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    )


def _not_an_image_message(data: bytes) -> str:
    head = data[:64].lstrip()
    for magic, what in _KNOWN_NON_IMAGES:
        if head.startswith(magic) or (magic == b"<svg" and b"<svg" in data[:1024]):
            return f"the data is {what}, not a supported image; send JPEG, PNG, WebP, BMP or GIF"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "HEIC/AVIF images are not supported; send JPEG, PNG, WebP, BMP or GIF"
    return "the data is not a recognisable image; send JPEG, PNG, WebP, BMP or GIF"


def _check_size(img: Image.Image, max_side: int, max_pixels: int) -> None:
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError("bad_dimensions", f"image has invalid dimensions {w}x{h}")
    if w > max_side or h > max_side:
        raise ImageError(
            "too_many_pixels", f"image is {w}x{h}; the longest side may be at most {max_side} px"
        )
    if w * h > max_pixels:
        raise ImageError(
            "too_many_pixels", f"image is {w}x{h} = {w * h:,} pixels; the limit is {max_pixels:,}"
        )


def _load(img: Image.Image) -> None:
    try:
        img.load()  # first frame only for animations
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError("too_many_pixels", f"image has too many pixels ({e})") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError) as e:
        text = str(e)
        if "truncat" in text.lower() or isinstance(e, EOFError):
            raise ImageError("truncated", f"image data is truncated ({text})") from None
        raise ImageError("corrupt", f"image data is corrupt ({text})") from None


def _exif_transpose(img: Image.Image) -> Image.Image:
    """Apply the EXIF Orientation tag; a broken EXIF block is ignored rather than failing the request."""
    try:
        return ImageOps.exif_transpose(img) or img
    except Exception:  # noqa: BLE001 - malformed EXIF must not reject a good picture
        return img


def _to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        gray = _scale_to_uint8(np.asarray(img), mode)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    rgb = img if img.mode == "RGB" else img.convert("RGB")  # L, 1, CMYK, YCbCr, ...
    return np.array(rgb, dtype=np.uint8)


def _scale_to_uint8(a: np.ndarray, mode: str) -> np.ndarray:
    """High-bit-depth grey -> 8 bit.

    ``I;16*`` is 0..65535 by definition, so it is divided by 257. ``I`` (32-bit int) and ``F`` (float)
    carry no declared range: values that fit 0..255 (or 0..1 for floats) are kept, values that fit
    0..65535 are treated as 16-bit, anything else is min-max stretched.
    """
    a = a.astype(np.float64)
    if mode.startswith("I;16"):
        return np.clip(np.round(a / 257.0), 0, 255).astype(np.uint8)
    finite = a[np.isfinite(a)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    a = np.nan_to_num(a, nan=0.0, posinf=hi, neginf=lo)
    if mode == "F" and lo >= 0.0 and hi <= 1.0:
        scaled = a * 255.0
    elif lo >= 0.0 and hi <= 255.0:
        scaled = a
    elif lo >= 0.0 and hi <= 65535.0:
        scaled = a / 257.0
    else:
        scaled = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- request envelopes


def load_request_images(
    body: bytes | bytearray | str | dict | None,
    content_type: str | None = None,
    *,
    max_images: int = MAX_IMAGES,
    max_bytes: int = MAX_BYTES,
) -> list[bytes]:
    """Unwrap one request into its encoded image files (not decoded yet).

    Accepts raw image bytes; ``multipart/form-data`` (every file part, any field name); JSON
    ``{"image": "<base64>"}`` or ``{"images": ["<base64>", ...]}`` (data URLs allowed) as bytes, text
    or an already-parsed dict; and the per-request dict TorchServe hands a handler (``{"body": ...}``
    for a plain POST, one key per form field for multipart, see ``docs`` in :func:`_from_mapping`).
    """
    if body is None:
        raise ImageError("empty", "the request contained no image data")
    if isinstance(body, dict):
        files = _from_mapping(body, content_type, max_bytes)
    elif isinstance(body, str):
        files = _from_text(body, max_bytes)
    else:
        files = _from_bytes(bytes(body), content_type, max_bytes)
    if not files:
        raise ImageError("empty", "the request contained no image data")
    if len(files) > max_images:
        raise ImageError(
            "too_many_images", f"{len(files)} images in one request; the limit is {max_images}"
        )
    return files


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _from_bytes(data: bytes, content_type: str | None, max_bytes: int) -> list[bytes]:
    media = _media_type(content_type)
    if media == "multipart/form-data":
        return parse_multipart(data, content_type or "")
    if media == "application/json" or media.endswith("+json"):
        return _from_json_bytes(data, max_bytes)
    if media.startswith("text/"):
        return _from_text(data.decode("utf-8", errors="replace"), max_bytes)
    if media in ("", "application/octet-stream"):
        # no usable content type: sniff the two envelopes an image can never look like
        stripped = data.lstrip()
        if stripped.startswith(b"{"):
            return _from_json_bytes(data, max_bytes)
        if stripped.startswith(b"--") and b"\r\n" in data[:200]:
            boundary = stripped[2 : stripped.index(b"\r\n")].decode("latin-1").strip()
            return parse_multipart(data, f'multipart/form-data; boundary="{boundary}"')
    return [data] if data else []


def _from_json_bytes(data: bytes, max_bytes: int) -> list[bytes]:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ImageError("bad_json", f"request body is not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ImageError("bad_json", 'JSON body must be an object like {"image": "<base64>"}')
    return _from_json_doc(doc, max_bytes)


def _from_text(text: str, max_bytes: int) -> list[bytes]:
    """TorchServe decodes ``text/*`` bodies to ``str``: a JSON document or a bare base64 string."""
    if text.lstrip().startswith("{"):
        return _from_json_bytes(text.encode("utf-8"), max_bytes)
    return [decode_base64(text, max_bytes=max_bytes)] if text.strip() else []


def _from_json_doc(doc: dict, max_bytes: int) -> list[bytes]:
    if "images" in doc:
        items = doc["images"]
        if not isinstance(items, list):
            raise ImageError("bad_json", '"images" must be a list of base64 strings')
    elif "image" in doc:
        items = [doc["image"]]
    else:
        raise ImageError("bad_json", 'JSON body needs an "image" (base64 string) or "images" (list) field')
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ImageError("bad_json", f"image #{i} must be a base64 string, got {type(item).__name__}")
        out.append(decode_base64(item, max_bytes=max_bytes))
    return out


def decode_base64(text: str, *, max_bytes: int = MAX_BYTES) -> bytes:
    """Standard or URL-safe base64, optional ``data:image/...;base64,`` prefix, padding optional."""
    s = text.strip()
    if s.startswith("data:"):
        head, sep, s = s.partition(",")
        if not sep or ";base64" not in head:
            raise ImageError("bad_base64", "data URL must be base64-encoded (data:image/...;base64,...)")
    s = "".join(s.split())
    if len(s) > (max_bytes * 4) // 3 + 4:
        raise ImageError("too_large", f"image is larger than the {max_bytes:,}-byte limit")
    if "-" in s or "_" in s:
        s = s.replace("-", "+").replace("_", "/")
    s += "=" * (-len(s) % 4)
    try:
        return base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ImageError("bad_base64", f"image field is not valid base64 ({e})") from None


def parse_multipart(data: bytes, content_type: str) -> list[bytes]:
    """Every file part of a ``multipart/form-data`` body, in order (stdlib ``email`` parser, no deps).

    A part counts as a file when it has a ``filename`` or a non-text content type; plain text fields
    (e.g. ``threshold=0.5``) are ignored.
    """
    if "boundary=" not in content_type.lower():
        raise ImageError("bad_multipart", "multipart/form-data request has no boundary in its Content-Type")
    header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    msg = BytesParser(policy=HTTP).parsebytes(header + data)
    parts = msg.get_payload() if msg.is_multipart() else None
    if not isinstance(parts, list) or not parts or _fatal_defects(msg):
        raise ImageError(
            "bad_multipart", "malformed multipart/form-data body (boundary not found or body cut short)"
        )
    return [_part_bytes(p) for p in parts if _is_file_part(p)]


def _fatal_defects(msg: Message) -> bool:
    names = {type(d).__name__ for d in msg.defects}
    return bool(
        names
        & {"StartBoundaryNotFoundDefect", "CloseBoundaryNotFoundDefect", "MultipartInvariantViolationDefect"}
    )


def _is_file_part(part: Message) -> bool:
    if part.get_filename():
        return True
    ctype = part.get_content_type()  # defaults to text/plain when the part has no header
    return bool(part.get("Content-Type")) and not ctype.startswith("text/")


def _part_bytes(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _from_mapping(doc: dict, content_type: str | None, max_bytes: int) -> list[bytes]:
    """A parsed JSON body, or the per-request dict TorchServe 0.12 passes to ``handle(data, ctx)``.

    How TorchServe 0.12 builds that dict (frontend ``InferenceRequestHandler.parseRequest`` and
    ``ts/service.py``): a plain POST becomes ``{"body": <bytes>}`` (``"body"`` is a ``dict`` when the
    content type is exactly ``application/json``, a ``str`` for ``text/*``); ``multipart/form-data``
    and url-encoded forms are parsed by the Java frontend into **one key per form field** (file parts
    as ``bytes``; field names are dict keys, so two parts with the same name collapse to the last one);
    query-string parameters are added as keys too (as ``bytes``).
    """
    if "image" in doc or "images" in doc:
        return _from_json_doc(doc, max_bytes)
    for key in ("body", "data"):
        if doc.get(key) is not None:
            return load_request_images(doc[key], content_type, max_bytes=max_bytes)
    files = [bytes(v) for v in doc.values() if isinstance(v, bytes | bytearray) and not _looks_like_field(v)]
    if files:
        return files
    raise ImageError(
        "empty", 'no image in the request: send raw image bytes, a multipart file, or {"image": "<base64>"}'
    )


def _looks_like_field(value: bytes | bytearray) -> bool:
    """Short printable text (``model_name=...``, ``threshold=0.5``) is a form/query field, not a file."""
    if len(value) > 256 or b"\x00" in value:
        return False
    try:
        text = bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return text.isprintable() and not text.lstrip().startswith("<")
