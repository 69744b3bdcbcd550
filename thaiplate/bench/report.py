"""Render load results: one markdown table, one JSON document, one PNG; the same for every tool.

The JSON is the record (every number of the table and more, NaN as null); the table is for reading
in a terminal or a PR; the PNG shows latency percentiles and throughput against concurrency, one line
per mode, which is the comparison a reader wants at a glance.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from thaiplate.bench.load import LevelResult
from thaiplate.bench.payloads import GOAL_SIZE


def _f(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}"


def server_cols(r: LevelResult) -> tuple[str, str]:
    """TorchServe queue / model time, summed over the models that served the request (DAG: 3 nodes)."""
    if not r.server:
        return "–", "–"
    return _f(sum(t.queue_ms for t in r.server.values())), _f(sum(t.model_ms for t in r.server.values()))


def markdown_table(results: Sequence[LevelResult]) -> str:
    head = (
        "| mode | conc | requests | errors | err % | req/s | mean ms | p50 ms | p90 ms | p99 ms | max ms "
        f"| p50 {GOAL_SIZE} | stalls | TS queue ms | TS model ms | PSS peak MB |"
    )
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        lat = r.latency
        q, m = server_cols(r)
        pss = r.memory.get("peak_pss_mb") if r.memory else None
        rows.append(
            f"| {r.mode} | {r.concurrency} | {r.requests} | {r.errors} | {_f(100 * r.error_rate, 2)} "
            f"| {_f(r.throughput_rps)} | {_f(lat.mean)} | {_f(lat.p50)} | {_f(lat.p90)} | {_f(lat.p99)} "
            f"| {_f(lat.max)} | {_f(r.p50_by_size.get(GOAL_SIZE))} | {r.stalls.total} | {q} | {m} | {_f(pss, 0)} |"
        )
    return "\n".join(rows)


def clean(obj: Any) -> Any:
    """NaN -> None recursively (strict JSON)."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    return obj


def write_json(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(clean(doc), indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")


def plot(results: Sequence[LevelResult], path: Path, title: str = "thaiplate latency and throughput") -> None:
    """Latency p50 (solid) / p90 (dashed) / p99 (dotted) and throughput vs concurrency, a colour per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(dict.fromkeys(r.mode for r in results))
    fig, (ax_lat, ax_tp) = plt.subplots(1, 2, figsize=(11, 4.2))
    for k, mode in enumerate(modes):
        rs = sorted((r for r in results if r.mode == mode), key=lambda r: r.concurrency)
        xs = [r.concurrency for r in rs]
        colour = f"C{k}"
        for attr, style in (("p50", "-"), ("p90", "--"), ("p99", ":")):
            ax_lat.plot(xs, [getattr(r.latency, attr) for r in rs], style, marker="o", ms=3, color=colour,
                        label=f"{mode} {attr}")  # fmt: skip
        ax_tp.plot(xs, [r.throughput_rps for r in rs], "-", marker="o", color=colour, label=mode)
    for ax in (ax_lat, ax_tp):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({r.concurrency for r in results}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("concurrency (requests in flight)")
        ax.grid(alpha=0.3)
    ax_lat.set_ylabel("latency, ms")
    ax_lat.set_yscale("log")
    ax_lat.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
    ax_lat.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax_lat.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax_lat.set_title("latency percentiles")
    ax_lat.legend(fontsize=7, ncol=len(modes))
    ax_tp.set_ylabel("successful requests / s")
    ax_tp.set_ylim(bottom=0)
    ax_tp.set_title("throughput")
    ax_tp.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
