"""String metrics for plate readings: exact match, CER, substitution pairs. Pure Python.

Spaces are layout, not labels (``labels.encode`` drops them), so every comparison is on the compact
form: ``"1กข 1234"`` == ``"1กข1234"``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def compact(text: str) -> str:
    return text.replace(" ", "")


def edit_ops(truth: str, pred: str) -> list[tuple[str, str]]:
    """Levenshtein alignment as ``(truth_char, pred_char)`` edits; ``""`` marks an insertion/deletion."""
    n, m = len(truth), len(pred)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (truth[i - 1] != pred[j - 1]))
    ops: list[tuple[str, str]] = []
    i, j = n, m
    while i or j:
        if i and j and d[i][j] == d[i - 1][j - 1] + (truth[i - 1] != pred[j - 1]):
            if truth[i - 1] != pred[j - 1]:
                ops.append((truth[i - 1], pred[j - 1]))
            i, j = i - 1, j - 1
        elif i and d[i][j] == d[i - 1][j] + 1:
            ops.append((truth[i - 1], ""))
            i -= 1
        else:
            ops.append(("", pred[j - 1]))
            j -= 1
    return ops[::-1]


def cer(pairs: Iterable[tuple[str, str]]) -> float:
    """Character error rate over ``(truth, pred)`` pairs: total edits / total truth characters."""
    edits = chars = 0
    for t, p in pairs:
        t, p = compact(t), compact(p)
        edits += len(edit_ops(t, p))
        chars += len(t)
    return edits / max(1, chars)


def exact(pairs: Iterable[tuple[str, str]]) -> float:
    pairs = list(pairs)
    return sum(compact(t) == compact(p) for t, p in pairs) / max(1, len(pairs))


def confused_pairs(pairs: Iterable[tuple[str, str]], top: int = 10) -> list[dict[str, object]]:
    """Most frequent edits (``truth -> pred``; ``""`` = missing / extra character)."""
    counts: Counter[tuple[str, str]] = Counter()
    for t, p in pairs:
        counts.update(edit_ops(compact(t), compact(p)))
    return [{"truth": t, "pred": p, "count": c} for (t, p), c in counts.most_common(top)]
