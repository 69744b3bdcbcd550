"""`thaiplate eval ocr|...`: metrics of the committed models on labelled folders.

Each subcommand is a small ``add_*_parser(eval_subparsers)`` function; imports of the evaluators
(onnxruntime, matplotlib) happen inside the command functions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from thaiplate.eval import write_report


def _label(metrics: dict, kind: str) -> str:
    """``v18``, or ``v18 (5 views)`` / ``v18 (5 views below 0.8 from 100 px)`` when the reader pools views."""
    views = metrics.get("reader_views", []) if kind == "recognizer" else []
    below = metrics.get("reader_views_below") if kind == "recognizer" else None
    wide = metrics.get("reader_views_min_width") if kind == "recognizer" else None
    when = (f" below {below}" if below is not None else "") + (f" from {wide} px" if wide is not None else "")
    tail = f" ({len(views)} views{when})" if len(views) > 1 else ""
    return f"v{metrics['models'][kind]}{tail}"


def _run_ocr(args: argparse.Namespace) -> int:
    from thaiplate.eval.ocr import evaluate, format_table, save_failures

    metrics, rows = evaluate(args.data, args.models, args.batch_size)
    print(format_table(metrics))
    if args.against:
        from thaiplate.eval.paired import METRICS_KEYS, paired, paired_groups

        ref, ref_rows = evaluate(args.data, args.against, args.batch_size)
        pair = paired([r.ok for r in rows if not r.partial], [r.ok for r in ref_rows if not r.partial])
        grouped = [(r.group, r.ok, q.ok) for r, q in zip(rows, ref_rows, strict=True) if r.group and not r.partial]
        plates = paired_groups(*zip(*grouped, strict=True)) if grouped else None
        labelled = [(r, q) for r, q in zip(rows, ref_rows, strict=True) if r.province]
        province = paired(*zip(*[(r.province_ok, q.province_ok) for r, q in labelled], strict=True)) if labelled else None
        for kind, what, pr in (("recognizer", "exact", pair), ("classifier", "province top-1", province)):
            if pr is None:
                continue
            names = f"{kind} {_label(metrics, kind)} vs {_label(ref, kind)} ({args.against})"
            print(
                f"paired, {names}: right by both {pr.both}, only this {pr.only_a}, only the reference "
                f"{pr.only_b}, neither {pr.neither}; {what} {100 * pr.diff:+.2f} pt, sign-test p = {pr.p_value:.3g}"
            )
        metrics[METRICS_KEYS["reader"]] = {"against": str(args.against), "reference": ref["models"], **pair.as_dict()}
        if plates:
            print(
                f"paired per plate ({plates.n} plates; a plate counts for the reader with more of its crops right): "
                f"only this {plates.only_a}, only the reference {plates.only_b}, tied {plates.both + plates.neither}; "
                f"sign-test p = {plates.p_value:.3g}"
            )
            metrics[METRICS_KEYS["reader_plates"]] = plates.as_dict()
        if province:
            metrics[METRICS_KEYS["province"]] = province.as_dict()
    if args.out:
        write_report(args.out, metrics)
    if args.record:
        from thaiplate.modelcard import record_metrics
        from thaiplate.runtime import default_models_dir

        models_dir = Path(args.models) if args.models else default_models_dir()
        for kind in ("recognizer", "classifier"):
            record_metrics(models_dir, kind, args.record, metrics)
        print(f"recorded as metrics.{args.record} in {models_dir}/{{recognizer,classifier}}.yaml + .md")
    if args.failures:
        n = save_failures(rows, args.failures)
        print(f"wrote {n} failures to {args.failures}")
    if args.plot_difficulty:
        if "by_detail_px" not in metrics:
            print(f"--plot-difficulty: {args.data}/labels.csv has no difficulty columns (detail_px, ...); no plot")
        else:
            from thaiplate.eval.difficulty import plot_by_resolution

            title = f"recognizer v{metrics['models']['recognizer']} on {args.data}: exact {100 * metrics['plate_exact']:.1f} %"
            plot_by_resolution(metrics["by_detail_px"], args.plot_difficulty, title)
            print(f"wrote {args.plot_difficulty}")
    return 0


def add_ocr_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "ocr",
        help="plate-text and province accuracy on a crop folder (labels.csv: file,text,province_code)",
        description="Exact match, CER, province top-1/top-3, confused character pairs; [partial] rows apart.",
    )
    p.add_argument("--data", required=True, help="folder with labels.csv and the crops it names")
    p.add_argument("--out", help="write the metrics JSON here")
    p.add_argument("--models", help="models directory (default: $THAIPLATE_MODELS or repo models/)")
    p.add_argument("--failures", help="save a PNG grid of failed crops (truth vs prediction)")
    p.add_argument(
        "--plot-difficulty",
        metavar="PNG",
        help="plot exact/CER by plate resolution (needs the difficulty columns `thaiplate synth ocr` writes)",
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--against",
        metavar="MODELS",
        help="also read the same crops with a reference models directory and compare the two paired: "
        "items right by only one reader, the exact difference and the sign-test (McNemar) p-value",
    )
    p.add_argument(
        "--record", metavar="KEY", help="store the numbers under metrics.KEY in the model YAMLs + cards"
    )
    p.set_defaults(func=_run_ocr)
    return p


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate the models on labelled data")
    sub = p.add_subparsers(dest="eval_task", metavar="TASK")
    add_ocr_parser(sub)
    from thaiplate.eval.e2e import add_e2e_parser  # light module; the pipeline loads inside the command

    add_e2e_parser(sub)
    from thaiplate.eval.detector import add_detector_eval_parser

    add_detector_eval_parser(sub)
    from thaiplate.eval.lookalikes import add_lookalikes_parser

    add_lookalikes_parser(sub)
    from thaiplate.eval.crop_stability import add_crop_stability_parser

    add_crop_stability_parser(sub)
    from thaiplate.eval.pool import add_pool_parser

    add_pool_parser(sub)
    from thaiplate.eval.tracking import add_tracking_parser

    add_tracking_parser(sub)

    def _help(_: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=_help)
