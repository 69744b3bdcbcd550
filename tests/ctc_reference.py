"""The plain prefix beam search ``thaiplate.ctc.beam_search`` was before it was tuned for speed: the oracle
that test_ctc holds the fast one to (same beams, same probabilities, bit for bit)."""

from __future__ import annotations

import math

import numpy as np

from thaiplate import labels
from thaiplate.ctc import Beam

NEG_INF = -math.inf


def logaddexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


def beam_search(log_probs: np.ndarray, beam_width: int = 10, prune: float = 1e-3, max_chars: int = 4) -> list[Beam]:
    log_prune = math.log(prune)
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}
    for lp_row in log_probs:
        lp = lp_row.tolist()
        if max_chars < len(lp) - 1:
            top = np.argpartition(-lp_row[1:], max_chars - 1)[:max_chars] + 1
        else:
            top = np.arange(1, len(lp))
        frame_chars = [c for c in top.tolist() if lp[c] >= log_prune]
        nxt: dict[tuple[int, ...], list[float]] = {}

        def slot(prefix: tuple[int, ...], nxt=nxt) -> list[float]:
            s = nxt.get(prefix)
            if s is None:
                s = nxt[prefix] = [NEG_INF, NEG_INF]
            return s

        for prefix, (pb, pnb) in beams.items():
            total = logaddexp(pb, pnb)
            same = slot(prefix)
            same[0] = logaddexp(same[0], total + lp[labels.BLANK])
            last = prefix[-1] if prefix else None
            chars = frame_chars if last is None or last in frame_chars else [*frame_chars, last]
            for c in chars:
                p = lp[c]
                ext = slot(prefix + (c,))
                if c == last:
                    ext[1] = logaddexp(ext[1], pb + p)
                    same[1] = logaddexp(same[1], pnb + p)
                else:
                    ext[1] = logaddexp(ext[1], total + p)
        ranked = sorted(nxt.items(), key=lambda kv: logaddexp(*kv[1]), reverse=True)[:beam_width]
        beams = {k: (v[0], v[1]) for k, v in ranked}
    out = [Beam(k, logaddexp(*v)) for k, v in beams.items()]
    return sorted(out, key=lambda b: b.log_prob, reverse=True)
