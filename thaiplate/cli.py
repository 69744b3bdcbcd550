"""`thaiplate` command line: one verb per stage of the model's life (synth, train, eval, predict, ...).

Each verb lives in its own module exposing ``register(subparsers)``; heavy imports (torch, onnxruntime,
ultralytics) happen inside the command functions so ``thaiplate --help`` stays instant and torch-free.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# verb -> module that registers it
VERBS: dict[str, str] = {
    "synth": "thaiplate.synth.cli",
    "train": "thaiplate.train.cli",
    "eval": "thaiplate.eval.cli",
    "predict": "thaiplate.predict",
    "archive": "thaiplate.serving.archive",
    "bench": "thaiplate.bench.cli",
    "models": "thaiplate.serving.models_cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="thaiplate",
        description="Thai licence-plate recognition: synthesise data, train, evaluate, predict, serve.",
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for module_name in VERBS.values():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name and e.name.startswith("thaiplate"):
                continue  # verb not built yet in this checkout
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
