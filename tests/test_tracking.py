"""`eval tracking`: rank and trend-free correlations on hand-built series, and the CLI on real JSON files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from thaiplate.cli import main
from thaiplate.eval.tracking import detrend, ranks, spearman, track


def test_ranks_share_ties():
    assert ranks(np.array([0.3, 0.1, 0.3, 0.2])).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_spearman_is_rank_based():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    assert spearman(a, a**3) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)


def test_detrend_removes_a_line_and_keeps_the_wiggle():
    wiggle = np.array([0.0, 1.0, 0.0, -1.0, 0.0])
    r = detrend(0.5 * np.arange(5) + 2 + wiggle)
    assert r == pytest.approx(detrend(wiggle))
    assert abs(r.sum()) < 1e-9


def test_a_shared_trend_alone_gives_high_spearman_but_no_detrended_r():
    t = np.arange(8, dtype=float)
    target = 0.6 + 0.02 * t + 0.01 * np.array([1, -1, 1, -1, 1, -1, 1, -1])
    follows = 0.8 + 0.01 * t + 0.005 * np.array([1, -1, 1, -1, 1, -1, 1, -1])
    trend_only = 0.8 + 0.01 * t + 0.005 * np.array([1, 1, -1, -1, 1, 1, -1, -1])
    rows = {r.name: r for r in track(target.tolist(), {"follows": follows.tolist(), "trend": trend_only.tolist()})}
    assert rows["follows"].detrended_r == pytest.approx(1.0)
    assert rows["trend"].spearman > 0.8
    assert abs(rows["trend"].detrended_r) < 0.3


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError, match="2 scores for 3 versions"):
        track([0.1, 0.2, 0.3], {"x": [0.1, 0.2]})


def test_cli_reads_jsons_and_writes_a_report(tmp_path, capsys):
    target, proxy = [0.70, 0.66, 0.75, 0.72], [0.80, 0.78, 0.85, 0.83]
    for v, t, p in zip([4, 5, 6, 7], target, proxy, strict=True):
        (tmp_path / f"real-m{v}.json").write_text(json.dumps({"plate_exact": t}))
        (tmp_path / f"proxy-m{v}.json").write_text(json.dumps({"plate_exact": p}))
    out = tmp_path / "t.json"
    rc = main(["eval", "tracking", "--versions", "4,5,6,7", "--pattern", str(tmp_path / "{set}-m{v}.json"),
               "--target", "real", "--sets", "proxy", "--out", str(out)])  # fmt: skip
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["target"]["scores"] == target
    (row,) = report["sets"]
    assert row["spearman"] == pytest.approx(1.0) and not math.isnan(row["detrended_r"])
    assert "detrended r" in capsys.readouterr().out
    rc = main(["eval", "tracking", "--versions", "4,9", "--pattern", str(tmp_path / "{set}-m{v}.json"),
               "--target", "real", "--sets", "proxy"])  # fmt: skip
    assert rc == 2 and "real-m9.json" in capsys.readouterr().err
