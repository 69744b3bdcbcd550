"""Evaluation: OCR + province metrics on labelled crop folders (``thaiplate eval``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def write_report(path: str | Path, report: dict) -> None:
    """Write an eval's JSON (UTF-8, Thai kept readable) where ``--out`` says, creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}", file=sys.stderr)
