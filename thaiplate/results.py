"""Result dataclasses: one schema for the library, the CLI and TorchServe."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Detection:
    """A plate box in original-image pixels."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    confidence: float
    # plate corners (tl, tr, br, bl) in original pixels when the deskew step found them
    corners: tuple[tuple[float, float], ...] | None = None


@dataclass(frozen=True)
class Candidate:
    text: str
    confidence: float


@dataclass(frozen=True)
class TextReading:
    text: str  # best grammar-valid candidate when one exists, else raw
    confidence: float
    char_confidences: list[float]
    candidates: list[Candidate]  # top-5
    raw_text: str  # greedy CTC output before grammar constraint
    valid: bool  # text matches a Thai plate grammar
    plate_type: str | None = None  # inferred from the grammar ("car", "motorcycle", "commercial", ...)


@dataclass(frozen=True)
class ProvinceGuess:
    code: str
    name_th: str
    name_en: str
    confidence: float


@dataclass(frozen=True)
class PlateResult:
    box: tuple[float, float, float, float]
    detection_confidence: float
    text: str
    text_confidence: float
    char_confidences: list[float]
    candidates: list[Candidate]
    raw_text: str
    province: ProvinceGuess | None
    province_candidates: list[ProvinceGuess]
    plate_type: str | None


@dataclass
class PipelineResult:
    plates: list[PlateResult]
    image: dict[str, int]  # width, height
    timings_ms: dict[str, float] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)
