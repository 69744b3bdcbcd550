"""`thaiplate models`: what a running TorchServe is serving (management API client, stdlib only).

    thaiplate models                      # models + workflows, with versions and worker states
    thaiplate models --key-file RUN_DIR/key_file.json --management http://127.0.0.1:8081

Why a client here: with token auth on, every management call needs the key from ``key_file.json``;
this reads it so nobody pastes keys into shell history.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from thaiplate.serving.server import _request


def _get(base: str, path: str, token: str | None) -> dict | list:
    status, body = _request("GET", base.rstrip("/") + path, token, timeout=10)
    if status != 200:
        raise RuntimeError(f"GET {path}: HTTP {status} {body.decode(errors='replace')[:200]}")
    return json.loads(body)


def cmd_models(args: argparse.Namespace) -> int:
    token = None
    if args.key_file:
        token = json.loads(Path(args.key_file).read_text())["management"]["key"]
    try:
        models = _get(args.management, "/models", token).get("models", [])  # type: ignore[union-attr]
        for m in models:
            for d in _get(args.management, f"/models/{m['modelName']}", token):  # type: ignore[union-attr]
                workers = ", ".join(f"{w['id']}:{w['status']}" for w in d.get("workers", []))
                print(f"model    {d['modelName']:<24} v{d['modelVersion']:<16} batch {d['batchSize']} "
                      f"delay {d['maxBatchDelay']}ms  workers [{workers}]")
        for w in _get(args.management, "/workflows", token).get("workflows", []):  # type: ignore[union-attr]
            print(f"workflow {w['workflowName']:<24} {w.get('workflowUrl', '')}")
    except (OSError, RuntimeError) as e:
        print(f"thaiplate models: {e}", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list models and workflows on a running TorchServe", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--management", default="http://127.0.0.1:8081", help="management API base URL")
    p.add_argument("--key-file", help="key_file.json of a server with token auth (in its run dir)")
    p.set_defaults(func=cmd_models)
