"""Accuracy against how hard a crop was made: plate resolution, blur, JPEG.

``thaiplate synth ocr`` writes the difficulty of every crop to labels.csv (``detail_px``, ``blur_px``,
``noise_sd``, ``jpeg_q``). A single exact-match figure over a set whose plates range from 20 to 220 px
hides where the reader fails; this splits it by resolution and by a "readable" rule fixed in
``thaiplate/configs/eval_ocr.yaml``, so a target like "99 % exact" can say which crops it means.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Difficulty:
    detail_px: float
    blur_px: float
    jpeg_q: int

    @classmethod
    def from_row(cls, row: dict[str, str]) -> Difficulty | None:
        """``None`` for folders without the columns (real crops, older synthetic sets)."""
        try:
            return cls(float(row["detail_px"]), float(row["blur_px"]), int(row["jpeg_q"]))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class DifficultyRules:
    detail_px_edges: tuple[float, ...]
    min_detail_px: float
    max_blur_px: float
    min_jpeg_q: int

    @classmethod
    def load(cls, path: str | Path | None = None) -> DifficultyRules:
        text = Path(path).read_text() if path else resources.files("thaiplate.configs").joinpath("eval_ocr.yaml").read_text()
        cfg = yaml.safe_load(text)
        r = cfg["readable"]
        return cls(tuple(cfg["detail_px_edges"]), r["min_detail_px"], r["max_blur_px"], r["min_jpeg_q"])

    def readable(self, d: Difficulty) -> bool:
        return d.detail_px >= self.min_detail_px and d.blur_px <= self.max_blur_px and d.jpeg_q >= self.min_jpeg_q

    def bucket(self, detail_px: float) -> str:
        """``"<40"``, ``"40-60"``, ..., ``">=130"`` for the configured edges (a lower edge is inclusive)."""
        return self.bucket_names()[bisect.bisect_right(self.detail_px_edges, detail_px)]

    def bucket_names(self) -> list[str]:
        """All bucket names in increasing resolution (for tables and plots in a fixed order)."""
        e = self.detail_px_edges
        return [f"<{e[0]:g}", *(f"{lo:g}-{hi:g}" for lo, hi in zip(e, e[1:], strict=False)), f">={e[-1]:g}"]


def describe_rule(rule: dict) -> str:
    """The "readable" rule as stored in metrics (``min_detail_px``, ``max_blur_px``, ``min_jpeg_q``), in words:
    one wording for the eval table and the model cards."""
    return f"detail >= {rule['min_detail_px']:g} px, blur <= {rule['max_blur_px']:g} px, JPEG q >= {rule['min_jpeg_q']}"


def plot_by_resolution(by_bucket: dict[str, dict], png: str | Path, title: str) -> None:
    """Exact match (bars, n on top) and CER (line) per detail-px bucket."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(by_bucket)
    exact = [100 * by_bucket[k]["plate_exact"] for k in names]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    bars = ax.bar(names, exact, color="#4a7ab5")
    for b, k in zip(bars, names, strict=True):
        ax.annotate(f"n={by_bucket[k]['n']}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center",
                    va="bottom", fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("plate exact (%)")
    ax.set_xlabel("plate width in pixels of real detail")
    ax2 = ax.twinx()
    ax2.plot(names, [by_bucket[k]["cer"] for k in names], color="#c0392b", marker="o")
    ax2.set_ylabel("CER", color="#c0392b")
    ax2.set_ylim(0, max(0.05, 1.2 * max(by_bucket[k]["cer"] for k in names)))
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
