"""Paired comparison of two readers on the same items: which items only one of them gets right.

Why: two readers' exact rates on the same set are strongly correlated, so comparing the two rates as if
they were independent hides what is signal. What matters is the discordant items (right by one reader
only); the exact sign test on them (McNemar's exact test) says how often a split at least that lopsided
happens by chance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from math import comb

# where `thaiplate eval ocr --against --out` stores each comparison in its metrics JSON
METRICS_KEYS = {"reader": "paired", "province": "paired_province", "reader_plates": "paired_plates"}


def sign_test_p(k: int, n: int) -> float:
    """Two-sided exact binomial p-value of ``k`` successes in ``n`` fair coin flips (1.0 when ``n == 0``)."""
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(k, n - k) + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class Paired:
    """``a`` is the candidate, ``b`` the reference; ``diff = (only_a - only_b) / n``."""

    n: int
    both: int
    only_a: int
    only_b: int
    neither: int

    @property
    def diff(self) -> float:
        return (self.only_a - self.only_b) / self.n if self.n else 0.0

    @property
    def p_value(self) -> float:
        return sign_test_p(self.only_a, self.only_a + self.only_b)

    def as_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "diff": round(self.diff, 4), "p_value": round(self.p_value, 4)}

    @classmethod
    def from_dict(cls, d: dict) -> Paired:
        """The inverse of :meth:`as_dict` (the derived ``diff`` and ``p_value`` are recomputed, not read)."""
        return cls(**{f.name: int(d[f.name]) for f in fields(cls)})


def paired(ok_a: Sequence[bool], ok_b: Sequence[bool]) -> Paired:
    if len(ok_a) != len(ok_b):
        raise ValueError(f"paired comparison needs the same items: {len(ok_a)} vs {len(ok_b)}")
    pairs = list(zip(ok_a, ok_b, strict=True))
    return Paired(
        n=len(pairs),
        both=sum(a and b for a, b in pairs),
        only_a=sum(a and not b for a, b in pairs),
        only_b=sum(b and not a for a, b in pairs),
        neither=sum(not a and not b for a, b in pairs),
    )


def paired_groups(groups: Sequence[str], ok_a: Sequence[bool], ok_b: Sequence[bool]) -> Paired:
    """The same comparison per group of items (the crops of one physical plate): a group counts for the reader
    that reads more of its items right; equal counts are ``both`` (some right) or ``neither``. Crops of one
    plate are not independent, so on a set with several crops per plate this is the honest sign test."""
    if not len(groups) == len(ok_a) == len(ok_b):
        raise ValueError(f"paired groups need one group per item: {len(groups)}, {len(ok_a)}, {len(ok_b)}")
    score: dict[str, int] = {}  # per group: items right by a only minus items right by b only
    right: dict[str, bool] = {}
    for g, a, b in zip(groups, ok_a, ok_b, strict=True):
        score[g] = score.get(g, 0) + int(a) - int(b)
        right[g] = right.get(g, False) or a or b
    tied_right = {g: s == 0 and right[g] for g, s in score.items()}
    return paired([s > 0 or tied_right[g] for g, s in score.items()], [s < 0 or tied_right[g] for g, s in score.items()])


def paired_by_bucket(
    hits_a: Sequence[tuple[str, bool]], hits_b: Sequence[tuple[str, bool]], buckets: Sequence[str]
) -> dict[str, dict[str, float | int]]:
    """Over all items and per bucket (e.g. plate width), the paired comparison of two models' ``(bucket, ok)``
    lists for the same items in the same order (`eval detector --against`, `eval e2e --against`)."""
    if [n for n, _ in hits_a] != [n for n, _ in hits_b]:
        raise ValueError("a paired comparison needs the same items in the same order")
    out = {"all": paired([f for _, f in hits_a], [f for _, f in hits_b]).as_dict()}
    for name in buckets:
        idx = [i for i, (n, _) in enumerate(hits_a) if n == name]
        out[name] = paired([hits_a[i][1] for i in idx], [hits_b[i][1] for i in idx]).as_dict()
    return out


def pool(items: Sequence[Paired]) -> Paired:
    """Several paired comparisons (e.g. one per test set) as one: the counts add, so the pooled sign test uses
    every discordant item. Rules judge pooled clauses this way (runs/rule-*.md)."""
    return Paired(**{f.name: sum(getattr(p, f.name) for p in items) for f in fields(Paired)})
