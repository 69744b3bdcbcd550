"""Helpers for the judge tables of detector rules (runs/v13/table.py, runs/v14/table.py)."""
import json
from pathlib import Path


def load(p: Path) -> dict | None:
    """A judge JSON, or None while it is missing or empty (the judge still running)."""
    return json.loads(p.read_text()) if p.exists() and p.stat().st_size else None


def small(d: dict) -> str:
    """Plates under 50 px found, from `eval detector`'s recall_by_width."""
    found = total = 0
    for k in ("w<30px", "w30-50px"):
        a, b = d["recall_by_width"][k].split("/")
        found, total = found + int(a), total + int(b)
    return f"{found}/{total} ({found / total:.3f})"
