"""CTC decoding on hand-built probability matrices (no model needed)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from thaiplate import ctc, labels

C = 1 + len(labels.charset())


def frames(spec: list[dict[str, float] | str], c: int = C) -> np.ndarray:
    """Log-probs from per-frame specs: a char (prob 0.9, rest shared) or {char: prob} ('_' = blank)."""
    rows = []
    for f in spec:
        f = {f: 0.9} if isinstance(f, str) else f
        p = np.zeros(c)
        for ch, v in f.items():
            p[0 if ch == "_" else labels.encode(ch)[0]] = v
        rest = 1.0 - p.sum()
        free = p == 0
        p[free] = rest / free.sum()
        rows.append(p)
    return np.log(np.maximum(np.array(rows), 1e-30))


def text_frames(text: str) -> list[str]:
    """Each char for two frames, separated by blanks: '_ a a _ b b _ ...'."""
    out = ["_"]
    for ch in text.replace(" ", ""):
        out += [ch, ch, "_"]
    return out


def test_greedy_collapses_repeats_and_blanks():
    lp = frames(["_", "1", "1", "_", "ก", "_", "ก", "ข", "ข", "_", "1", "_"])
    ids, confs = ctc.greedy_decode(lp)
    assert labels.decode_ids(ids) == "1กกข1"
    assert len(confs) == 5


def test_greedy_char_confidence_is_max_of_emitting_frames():
    lp = frames(["_", {"1": 0.6}, {"1": 0.8}, "_", {"ก": 0.7}, "_"])
    _, confs = ctc.greedy_decode(lp)
    assert confs == pytest.approx([0.8, 0.7])


def test_beam_matches_greedy_on_peaky_input():
    lp = frames(text_frames("1กข1234"))
    beams = ctc.beam_search(lp, beam_width=10)
    assert beams[0].text == "1กข1234"
    assert beams[0].log_prob <= 0


def test_beam_finds_sequence_the_best_path_misses():
    # best path is "_" at every frame (0.4 each -> ""), but "ก" summed over alignments is more likely
    lp = frames([{"_": 0.4, "ก": 0.35, "ข": 0.25}] * 2, c=C)
    assert ctc.greedy_decode(lp)[0] == []
    beams = ctc.beam_search(lp, beam_width=10, prune=1e-4)
    assert beams[0].text == "ก"


def brute_force_prob(lp: np.ndarray, target: list[int]) -> float:
    total = 0.0
    t, c = lp.shape
    for path in itertools.product(range(c), repeat=t):
        collapsed = [k for k, _ in itertools.groupby(path) if k != 0]
        if collapsed == target:
            total += math.exp(sum(lp[i, k] for i, k in enumerate(path)))
    return total


def test_sequence_log_prob_matches_brute_force_and_beam():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=4)  # 4 frames, blank + 2 chars
    lp = np.log(p)
    for target in ([1], [1, 2], [1, 1], [2, 1, 2]):
        assert math.exp(ctc.sequence_log_prob(lp, target)) == pytest.approx(
            brute_force_prob(lp, target), rel=1e-9
        )
    # beam search without pruning is exact for short inputs
    for beam in ctc.beam_search(lp, beam_width=100, prune=1e-12, max_chars=2):
        assert math.exp(beam.log_prob) == pytest.approx(brute_force_prob(lp, list(beam.ids)), rel=1e-9)


def peaky_outputs(n: int, seed: int = 0) -> list[np.ndarray]:
    """(96, C) log-probs shaped like a trained reader's: blank-dominated frames with short runs of one or
    two competing characters (look-alikes), plus a few flat, untrained-looking ones."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        logits = rng.normal(0, 1, (96, C))
        logits[:, labels.BLANK] += 8
        for start in rng.choice(np.arange(0, 92, 4), size=rng.integers(3, 10), replace=False):
            a, b = rng.integers(1, C, 2)
            logits[start : start + 3, a] += 10 + rng.normal(0, 2)
            logits[start : start + 3, b] += 9 + rng.normal(0, 2)
        out.append(logits - np.logaddexp.reduce(logits, axis=1, keepdims=True))
    out += [np.log(rng.dirichlet(np.ones(C) * a, size=96)) for a in (0.3, 1.0, 5.0)]
    return out


def test_beam_search_is_the_reference_search_bit_for_bit():
    """The fast beam search keeps the plain one's semantics exactly: same prefixes, same order, same floats."""
    from ctc_reference import beam_search as reference

    for lp in peaky_outputs(40):
        for kwargs in ({}, {"beam_width": 3}, {"max_chars": C, "prune": 1e-6}):
            fast = [(b.ids, b.log_prob) for b in ctc.beam_search(lp, **kwargs)]
            assert fast == [(b.ids, b.log_prob) for b in reference(lp, **kwargs)]


def test_grammar_constraint_beats_invalid_raw():
    # raw greedy reads "กข0123" (leading zero: no plate has it); a slightly less likely beam drops the 0
    spec = ["_", "ก", "_", "ข", "_", {"0": 0.55, "_": 0.4}, "_", "1", "_", "2", "_", "3", "_"]
    lp = frames(spec)
    reading = ctc.decode(lp)
    assert reading.raw_text == "กข 0123"
    assert reading.text == "กข 123"
    assert reading.valid and reading.plate_type == "car"
    assert [c.text for c in reading.candidates][:2] == ["กข 0123", "กข 123"]
    assert reading.confidence == pytest.approx(reading.candidates[1].confidence)
    exact = math.exp(ctc.sequence_log_prob(lp, labels.encode("กข123")))
    assert reading.confidence == pytest.approx(exact, rel=0.05)  # beam keeps nearly all the mass
    assert len(reading.char_confidences) == 5
    assert all(0.0 < c <= 1.0 for c in reading.char_confidences)
    unconstrained = ctc.decode(lp, constrain=False)
    assert unconstrained.text == "กข 0123" and not unconstrained.valid


@pytest.mark.parametrize(
    ("text", "expected", "plate_type"),
    [
        ("1กข1234", "1กข 1234", "car"),
        ("70-1234", "70-1234", "commercial"),
        ("กขค12", "กขค 12", "motorcycle"),
        ("ก1234", "ก 1234", "legacy"),
    ],
)
def test_decode_normalises_and_types(text, expected, plate_type):
    reading = ctc.decode(frames(text_frames(text)))
    assert reading.text == expected
    assert reading.raw_text == expected
    assert reading.plate_type == plate_type
    assert reading.valid
    assert 0.0 < reading.confidence <= 1.0
    assert len(reading.candidates) <= 5
    assert reading.candidates[0].text == expected
    assert reading.char_confidences == pytest.approx([0.9] * len(text.replace(" ", "")))


def test_decode_empty_and_invalid():
    empty = ctc.decode(frames(["_"] * 10))
    assert empty.text == "" and not empty.valid and empty.char_confidences == []
    junk = ctc.decode(frames([{"_": 0.9999}, {"ข": 0.9999}, {"_": 0.9999}, {"0": 0.9999}, {"_": 0.9999}]))
    assert not junk.valid and junk.plate_type is None and junk.text == "ข 0"


def test_decode_batch_shape():
    a, b = text_frames("1กข1234"), text_frames("70-1234")
    n = max(len(a), len(b))
    lp = np.stack([frames(a + ["_"] * (n - len(a))), frames(b + ["_"] * (n - len(b)))])
    out = ctc.decode_batch(lp)
    assert [r.text for r in out] == ["1กข 1234", "70-1234"]


def test_sequence_log_probs_batches_sequences_and_views_exactly():
    rng = np.random.default_rng(1)
    views = np.log(rng.dirichlet(np.ones(3), size=(2, 5)))  # 2 views, 5 frames, blank + 2 chars
    targets = [[], [1], [1, 2], [1, 1], [2, 1, 2]]
    out = ctc.sequence_log_probs(views, targets)
    assert out.shape == (len(targets), 2)
    for k, target in enumerate(targets):
        for v in range(2):
            assert math.exp(out[k, v]) == pytest.approx(brute_force_prob(views[v], target), rel=1e-9)
    one_view = ctc.sequence_log_probs(views[0], targets)
    assert one_view.shape == (len(targets),)
    np.testing.assert_allclose(one_view, out[:, 0])


def test_decode_views_of_one_view_is_decode():
    lp = frames(text_frames("1กข1234"))
    assert ctc.decode_views(lp[None]) == ctc.decode(lp)


def test_decode_views_pools_the_views_against_one_wrong_one():
    # the first view reads the second letter as ข (0.6 vs ค 0.35); the other two views read ค clearly
    right, wrong = text_frames("1กค1234"), text_frames("1กข1234")
    k = wrong.index("ข")
    first = list(wrong)
    first[k] = first[k + 1] = {"ข": 0.6, "ค": 0.35}
    lp = np.stack([frames(first), frames(right), frames(right)])
    alone = ctc.decode(lp[0])
    assert alone.text == "1กข 1234"
    pooled = ctc.decode_views(lp)
    assert pooled.text == "1กค 1234"
    assert pooled.raw_text == "1กข 1234"  # the first view's greedy reading, as reported
    per_view = [math.exp(ctc.sequence_log_prob(v, labels.encode("1กค1234"))) for v in lp]
    assert pooled.confidence == pytest.approx(np.mean(per_view), rel=1e-9)
    assert pooled.candidates[0].text == "1กค 1234"
    assert [c.confidence for c in pooled.candidates] == sorted((c.confidence for c in pooled.candidates), reverse=True)
    assert len(pooled.char_confidences) == 7 and pooled.valid and pooled.plate_type == "car"


def test_decode_views_keeps_the_grammar_constraint():
    spec = ["_", "ก", "_", "ข", "_", {"0": 0.55, "_": 0.4}, "_", "1", "_", "2", "_", "3", "_"]
    lp = np.stack([frames(spec)] * 3)
    assert ctc.decode_views(lp).text == "กข 123"
    assert ctc.decode_views(lp, constrain=False).text == "กข 0123"
