"""CTC decoding in numpy (serving never imports torch): greedy, prefix beam search, grammar constraint.

The recogniser emits ``log_probs`` of shape ``(T, C)`` per crop (``C = 54``: blank 0 + 53 charset
chars). Greedy decoding is exact enough for clean crops; beam search recovers the few cases where the
best *sequence* is not the best path, and its candidate list lets the plate grammar overrule a raw
reading that no real plate could have (``"กข 0123"`` -> ``"กข 123"``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from thaiplate import labels
from thaiplate.results import Candidate, TextReading

NEG_INF = -math.inf
# Order matters for plate_type: "1กข 123" is both a car and a motorcycle reading; cars are far more
# common, and "legacy" (1 consonant) is the loosest pattern so it comes last.
TYPE_ORDER = ("car", "commercial", "motorcycle", "legacy")


def _logaddexp(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    if b == NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


@dataclass(frozen=True)
class Beam:
    ids: tuple[int, ...]  # charset ids (1-based), blanks and repeats collapsed
    log_prob: float  # log P(ids | x), summed over the alignments the beam kept

    @property
    def text(self) -> str:
        return labels.decode_ids(list(self.ids))


def greedy_decode(log_probs: np.ndarray) -> tuple[list[int], list[float]]:
    """Best path: argmax per frame, collapse repeats, drop blanks.

    Each character's confidence is the highest probability among the consecutive frames that emitted
    it, i.e. how sure the model was at its most confident look at that glyph.
    """
    best = log_probs.argmax(axis=1)
    best_p = np.exp(log_probs[np.arange(len(best)), best])
    ids: list[int] = []
    confs: list[float] = []
    prev = labels.BLANK
    for k, p in zip(best.tolist(), best_p.tolist(), strict=True):
        if k != labels.BLANK:
            if k != prev:
                ids.append(k)
                confs.append(p)
            else:
                confs[-1] = max(confs[-1], p)
        prev = k
    return ids, confs


def beam_search(
    log_probs: np.ndarray, beam_width: int = 10, prune: float = 1e-3, max_chars: int = 4
) -> list[Beam]:
    """CTC prefix beam search, best first.

    Per frame only the ``max_chars`` most likely characters with probability >= ``prune`` may extend a
    prefix (plus the prefix's own last character, so a repeated glyph keeps collapsing). On a trained,
    peaky CTC output that is 0-2 characters per frame, which keeps this pure-Python search around a
    millisecond per crop; the cap bounds the cost on flat (untrained or garbage) outputs. The per-frame
    character choice is one numpy call for all frames, and the frame loop works on Python lists: it is
    the hot loop of every reading (more time than the ONNX model at batch 32 before this was done).
    """
    lp_all = np.asarray(log_probs)
    n_chars = lp_all.shape[1] - 1
    rows = lp_all.tolist()
    if max_chars < n_chars:
        tops = (np.argpartition(-lp_all[:, 1:], max_chars - 1, axis=1)[:, :max_chars] + 1).tolist()
    else:
        tops = [list(range(1, n_chars + 1))] * len(rows)
    log_prune = math.log(prune)
    blank = labels.BLANK
    # prefix -> (log P ending in blank, log P ending in a non-blank)
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}
    for lp, top in zip(rows, tops, strict=True):
        frame_chars = [c for c in top if lp[c] >= log_prune]
        lp_blank = lp[blank]
        nxt: dict[tuple[int, ...], list[float]] = {}
        for prefix, (pb, pnb) in beams.items():
            total = _logaddexp(pb, pnb)
            same = nxt.get(prefix)
            if same is None:
                same = nxt[prefix] = [NEG_INF, NEG_INF]
            same[0] = _logaddexp(same[0], total + lp_blank)
            last = prefix[-1] if prefix else None
            chars = frame_chars if last is None or last in frame_chars else [*frame_chars, last]
            for c in chars:
                p = lp[c]
                key = (*prefix, c)
                ext = nxt.get(key)
                if ext is None:
                    ext = nxt[key] = [NEG_INF, NEG_INF]
                if c == last:
                    ext[1] = _logaddexp(ext[1], pb + p)  # "a_a": a new char after a blank
                    same[1] = _logaddexp(same[1], pnb + p)  # "aa": collapses into the same char
                else:
                    ext[1] = _logaddexp(ext[1], total + p)
        ranked = sorted(nxt.items(), key=lambda kv: _logaddexp(kv[1][0], kv[1][1]), reverse=True)[:beam_width]
        beams = {k: (v[0], v[1]) for k, v in ranked}
    out = [Beam(k, _logaddexp(*v)) for k, v in beams.items()]
    return sorted(out, key=lambda b: b.log_prob, reverse=True)


def _extended(ids: list[int]) -> np.ndarray:
    ext = np.full(2 * len(ids) + 1, labels.BLANK, dtype=np.int64)
    ext[1::2] = ids
    return ext


def _skip_allowed(ext: np.ndarray) -> np.ndarray:
    """s may be reached from s-2 when ext[s] is a char different from ext[s-2]."""
    allow = np.zeros(len(ext), dtype=bool)
    allow[2:] = (ext[2:] != labels.BLANK) & (ext[2:] != ext[:-2])
    return allow


def sequence_log_prob(log_probs: np.ndarray, ids: list[int]) -> float:
    """Exact ``log P(ids | x)`` of one ``(T, C)`` output by the CTC forward algorithm (all alignments)."""
    return float(sequence_log_probs(log_probs, [ids])[0])


def sequence_log_probs(log_probs: np.ndarray, sequences: list[list[int]]) -> np.ndarray:
    """``log P(ids | x)`` for several label sequences at once: ``(K,)`` for ``(T, C)`` log-probs, ``(K, V)``
    for ``(V, T, C)`` (several views of one crop).

    One forward pass over the frames for all K sequences, padded to the longest: padded states emit
    ``-inf`` and are never read, so each row is the exact single-sequence forward.
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    lp = lp[None] if lp.ndim == 2 else lp  # (V, T, C)
    exts = [_extended(ids) for ids in sequences]
    n_states = max(len(e) for e in exts)
    ext = np.full((len(exts), n_states), labels.BLANK, dtype=np.int64)
    skip = np.zeros((len(exts), n_states), dtype=bool)
    for k, e in enumerate(exts):
        ext[k, : len(e)] = e
        skip[k, : len(e)] = _skip_allowed(e)
    live = np.arange(n_states)[None] < np.array([len(e) for e in exts])[:, None]  # (K, S)
    emit = np.where(live[None, None], lp[:, :, ext], NEG_INF)  # (V, T, K, S)
    emit = np.moveaxis(emit, 1, 0)  # (T, V, K, S)
    alpha = np.full(emit.shape[1:], NEG_INF)
    alpha[..., :2] = emit[0, ..., :2]
    pad = np.full((*alpha.shape[:-1], 2), NEG_INF)
    for t in range(1, len(emit)):
        shifted = np.concatenate((pad, alpha), axis=-1)  # shifted[..., s + 2] = alpha[..., s]
        prev2 = np.where(skip, shifted[..., :n_states], NEG_INF)
        alpha = np.logaddexp(np.logaddexp(alpha, shifted[..., 1 : 1 + n_states]), prev2) + emit[t]
    last = np.array([len(e) - 1 for e in exts])
    k = np.arange(len(exts))
    end = alpha[..., k, last]  # (V, K): ends on the trailing blank
    end = np.where(last > 0, np.logaddexp(end, alpha[..., k, np.maximum(last - 1, 0)]), end)  # or the last char
    out = end.T  # (K, V)
    return out[:, 0] if np.asarray(log_probs).ndim == 2 else out


def char_confidences(log_probs: np.ndarray, ids: list[int]) -> list[float]:
    """Per-character confidence of an arbitrary label sequence (e.g. a grammar-chosen beam).

    Viterbi-aligns ``ids`` to the frames, then takes, per character, the highest probability of that
    character over the frames aligned to it: the same definition as ``greedy_decode``'s.
    """
    if not ids:
        return []
    n_frames = len(log_probs)
    ext = _extended(ids)
    skip = _skip_allowed(ext)
    emit = log_probs[:, ext]
    n_states = len(ext)
    score = np.full(n_states, NEG_INF)
    score[0], score[1] = emit[0, 0], emit[0, 1]
    back = np.zeros((n_frames, n_states), dtype=np.int8)  # 0: stay, 1: from s-1, 2: from s-2
    for t in range(1, n_frames):
        cand = np.stack(
            [
                score,
                np.concatenate(([NEG_INF], score[:-1])),
                np.where(skip, np.concatenate(([NEG_INF, NEG_INF], score[:-2])), NEG_INF),
            ]
        )
        back[t] = cand.argmax(axis=0)
        score = cand.max(axis=0) + emit[t]
    s = n_states - 1 if n_states == 1 or score[-1] >= score[-2] else n_states - 2
    best = [0.0] * len(ids)
    for t in range(n_frames - 1, -1, -1):
        if s % 2 == 1:
            best[s // 2] = max(best[s // 2], float(math.exp(emit[t, s])))
        s -= int(back[t, s])
    return best


def infer_plate_type(text: str) -> str | None:
    for name in TYPE_ORDER:
        if labels.PATTERNS[name].match(text):
            return name
    return None


def decode(
    log_probs: np.ndarray, beam_width: int = 10, top_k: int = 5, constrain: bool = True
) -> TextReading:
    """One crop's ``(T, C)`` log-probs -> ``TextReading``.

    ``text`` is the most probable beam candidate that matches the plate grammar, else the greedy
    reading. ``confidence`` and candidate confidences are CTC sequence probabilities (summed over
    alignments, as kept by the beam search).
    ``raw_text`` is the greedy reading in the same canonical spacing as ``text``.
    """
    log_probs = np.asarray(log_probs, dtype=np.float64)
    raw_ids, raw_confs = greedy_decode(log_probs)
    beams = beam_search(log_probs, beam_width=beam_width)
    chosen_ids = raw_ids
    if constrain:
        for beam in beams:
            if labels.is_valid_plate(beam.text):
                chosen_ids = list(beam.ids)
                break
    confs = raw_confs if chosen_ids == raw_ids else char_confidences(log_probs, chosen_ids)
    text = labels.normalize(labels.decode_ids(chosen_ids))

    # candidate confidences are the beam probabilities (the search keeps nearly all of the mass on
    # peaky CTC outputs); the exact forward pass is only needed for a reading the beam dropped
    scored = [(list(b.ids), b.log_prob) for b in beams[:top_k]]
    if all(ids != chosen_ids for ids, _ in scored):
        scored = [*scored[: top_k - 1], (chosen_ids, sequence_log_prob(log_probs, chosen_ids))]
    scored.sort(key=lambda x: x[1], reverse=True)
    candidates = [Candidate(labels.normalize(labels.decode_ids(ids)), math.exp(lp)) for ids, lp in scored]
    conf = next(math.exp(lp) for ids, lp in scored if ids == chosen_ids)
    plate_type = infer_plate_type(text)
    return TextReading(
        text=text,
        confidence=conf,
        char_confidences=confs,
        candidates=candidates,
        raw_text=labels.normalize(labels.decode_ids(raw_ids)),
        valid=plate_type is not None,
        plate_type=plate_type,
    )


def decode_views(
    view_log_probs: np.ndarray, beam_width: int = 10, top_k: int = 5, constrain: bool = True
) -> TextReading:
    """Several views of one crop, ``(V, T, C)`` -> one ``TextReading`` (``thaiplate.views``).

    Candidates are the first view's beam (its top ``top_k`` and its best grammar-valid text) and every view's
    greedy path; each is scored by its exact CTC probability averaged over the views. ``text`` is the best
    grammar-valid one (else the best one); ``confidence`` and the candidate confidences are those averages. ``raw_text`` is the first view's greedy reading; the per-character
    confidences come from the view that gives ``text`` the highest probability.
    """
    lp = np.asarray(view_log_probs, dtype=np.float64)
    if len(lp) == 1:
        return decode(lp[0], beam_width, top_k, constrain)
    greedy = [greedy_decode(v) for v in lp]
    raw_ids = greedy[0][0]
    # a beam search in every view costs ~5x the decoding and read the probe's 600 crops the same (0.918)
    beams = beam_search(lp[0], beam_width=beam_width)
    pool = dict.fromkeys(b.ids for b in beams[:top_k])
    valid = next((b.ids for b in beams if labels.is_valid_plate(b.text)), None)
    if valid is not None:
        pool[valid] = None
    pool.update(dict.fromkeys(tuple(ids) for ids, _ in greedy))
    seqs = [list(ids) for ids in pool]
    per_view = sequence_log_probs(lp, seqs)  # (K, V)
    pooled = np.logaddexp.reduce(per_view, axis=1) - math.log(len(lp))  # log of the mean probability
    order = np.argsort(-pooled, kind="stable")
    chosen = int(order[0])
    if constrain:
        chosen = next((int(k) for k in order if labels.is_valid_plate(labels.decode_ids(seqs[k]))), chosen)
    chosen_ids = seqs[chosen]
    text = labels.normalize(labels.decode_ids(chosen_ids))
    best_view = int(np.argmax(per_view[chosen]))
    top = [int(k) for k in order[:top_k]]
    if chosen not in top:
        top = [*top[: top_k - 1], chosen]
    plate_type = infer_plate_type(text)
    return TextReading(
        text=text,
        confidence=float(math.exp(pooled[chosen])),
        char_confidences=(
            greedy[best_view][1] if greedy[best_view][0] == chosen_ids else char_confidences(lp[best_view], chosen_ids)
        ),
        candidates=[Candidate(labels.normalize(labels.decode_ids(seqs[k])), float(math.exp(pooled[k]))) for k in top],
        raw_text=labels.normalize(labels.decode_ids(raw_ids)),
        valid=plate_type is not None,
        plate_type=plate_type,
    )


def decode_batch(
    log_probs: np.ndarray, beam_width: int = 10, top_k: int = 5, constrain: bool = True
) -> list[TextReading]:
    """``(N, T, C)`` -> one ``TextReading`` per crop."""
    return [decode(lp, beam_width, top_k, constrain) for lp in log_probs]
