"""`thaiplate models`: manage model versions on a running TorchServe (its management API).

    thaiplate models                                   # = list: every model version (* = default), workflows
    thaiplate models describe thaiplate__recognizer    # versions, workers, batching of one model (or a workflow)
    thaiplate archive --only recognizer --version 3    # -> model_store/recognizer.v3.mar
    thaiplate models register model_store/recognizer.v3.mar --name thaiplate__recognizer
    thaiplate models canary thaiplate__recognizer 3    # v3 vs the current default, same plates; exit 1 if worse
    thaiplate models set-default thaiplate__recognizer 3
    thaiplate models rollback thaiplate__recognizer    # back to the previous default
    thaiplate models unregister thaiplate__recognizer 3
    thaiplate models scale thaiplate__recognizer --min-workers 2

In DAG mode the served models are the workflow's nodes, ``thaiplate__detector``, ``thaiplate__recognizer``
and ``thaiplate__classifier``; the workflow calls each node's DEFAULT version (docs/VERSIONING.md).

Auth (when TorchServe's token auth is on): ``--token`` or ``$THAIPLATE_TOKEN``, or ``--key-file
RUN_DIR/key_file.json`` (management and inference keys read from the file, never typed).
Registering needs ``enable_model_api=true`` (dev config; production keeps it off).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from thaiplate.serving.management import (
    ApiError,
    Client,
    History,
    Tokens,
    default_state_path,
    promote,
    rollback,
)

Command = Callable[[Client, argparse.Namespace], int]


def client_from(args: argparse.Namespace) -> Client:
    tokens = Tokens.resolve(args.token, args.key_file, args.inference_token)
    return Client(args.management, args.inference, tokens, timeout=args.timeout)


def history_from(args: argparse.Namespace) -> History:
    return History(Path(args.state) if args.state else default_state_path())


# ---------------------------------------------------------------------------- commands


def cmd_list(client: Client, _args: argparse.Namespace) -> int:
    for name in client.models():
        for v in client.versions(name):
            print(f"model    {name:<26} {'*' if v.default else ' '}v{v.version:<12} {v.url:<26} "
                  f"batch {v.batch_size} delay {v.max_batch_delay}ms  workers {'/'.join(v.workers) or '-'}")  # fmt: skip
    for wf in client.workflows():
        print(f"workflow {wf:<26} nodes {', '.join(client.workflow_nodes(wf))}")
    return 0


def cmd_describe(client: Client, args: argparse.Namespace) -> int:
    names = [args.name]
    if args.name in client.workflows():
        print(f"workflow {args.name}: no version of its own; each node runs its model's default version")
        names = client.workflow_nodes(args.name)
    for name in names:
        print(f"{name}:")
        for v in client.versions(name):
            print(f"  {'*' if v.default else ' '} v{v.version:<12} {v.url:<28} workers {v.min_workers}-{v.max_workers} "
                  f"[{', '.join(v.workers) or 'none'}]  batch {v.batch_size} delay {v.max_batch_delay}ms")  # fmt: skip
    return 0


def cmd_register(client: Client, args: argparse.Namespace) -> int:
    url, name, version = args.mar, args.name, args.version
    local = Path(args.mar)
    if local.is_file():
        from thaiplate.serving.archive import read_manifest, stamp_version

        model = read_manifest(local)["model"]
        name = name or model["modelName"]
        if version and version != str(model["modelVersion"]):
            local = stamp_version(local, version, local.parent)  # same store, new file name
            print(f"wrote {local} (v{model['modelVersion']} re-stamped as v{version})")
        version = version or str(model["modelVersion"])
        url = local.name  # TorchServe looks archive names up in its model store
    elif version:
        print("thaiplate models: --version needs a local archive (or build one: thaiplate archive --version)",
              file=sys.stderr)  # fmt: skip
        return 2
    if not name:
        name = Path(url).name.split(".")[0]
    print(client.register(url, name, workers=args.workers))
    print(f"{name}: default is v{client.default_version(name)}" + (f" (registered v{version})" if version else ""))
    return 0


def cmd_set_default(client: Client, args: argparse.Namespace) -> int:
    change = promote(client, history_from(args), args.name, args.version)
    print(f"{change.name}: default v{change.previous} -> v{change.current}")
    return 0


def cmd_rollback(client: Client, args: argparse.Namespace) -> int:
    change = rollback(client, history_from(args), args.name)
    print(f"{change.name}: default v{change.previous} -> v{change.current} ({change.reason})")
    return 0


def cmd_unregister(client: Client, args: argparse.Namespace) -> int:
    print(client.unregister(args.name, args.version))
    return 0


def cmd_scale(client: Client, args: argparse.Namespace) -> int:
    print(client.scale(args.name, args.min_workers, args.max_workers, args.version))
    return 0


def cmd_canary(client: Client, args: argparse.Namespace) -> int:
    from thaiplate.serving import canary

    if args.data:
        samples, source = canary.folder_set(Path(args.data), args.n), str(args.data)
    else:
        samples, source = canary.synthetic_set(args.n or 60, args.seed), f"synthetic, seed {args.seed}"
    report = canary.run(client, args.name, args.version, samples, source, args.tolerance)
    doc = json.dumps(report.to_dict(), ensure_ascii=False, indent=1)
    if args.json == "-":
        print(doc)
    else:
        print(report.table())
        if args.json:
            Path(args.json).write_text(doc + "\n", encoding="utf-8")
    return 1 if report.worse else 0


def run(command: Command) -> Callable[[argparse.Namespace], int]:
    """API and input errors -> one line on stderr and exit 2 (exit 1 is reserved for a worse canary)."""

    def wrapped(args: argparse.Namespace) -> int:
        try:
            return command(client_from(args), args)
        except (ApiError, OSError, ValueError, KeyError, RuntimeError) as e:
            print(f"thaiplate models: {e}", file=sys.stderr)
            return 2

    return wrapped


# ------------------------------------------------------------------------------ parser


def _connection_options(p: argparse.ArgumentParser, suppress: bool) -> None:
    """On ``models`` itself (with defaults) and on every subcommand (without, so they don't override)."""

    def d(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    p.add_argument("--management", default=d("http://127.0.0.1:8081"), help="management API base URL")
    p.add_argument("--inference", default=d("http://127.0.0.1:8080"), help="inference API base URL (canary)")
    p.add_argument("--token", default=d(None), help="management bearer key (default: $THAIPLATE_TOKEN)")
    p.add_argument("--inference-token", default=d(None),
                   help="inference bearer key for canary (default: $THAIPLATE_INFERENCE_TOKEN, else --token)")  # fmt: skip
    p.add_argument("--key-file", default=d(None), help="a token-auth server's key_file.json (in its run dir)")
    p.add_argument("--timeout", type=float, default=d(30.0), help="seconds per request (default 30)")
    p.add_argument("--state", default=d(None),
                   help="default-version history for rollback (default: $THAIPLATE_STATE, "
                   "else ~/.local/state/thaiplate/defaults.json)")  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="manage model versions on a running TorchServe (list, register, canary, "
                       "set-default, rollback, ...)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    _connection_options(p, suppress=False)
    p.set_defaults(func=run(cmd_list))
    verbs = p.add_subparsers(dest="action", metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    _connection_options(common, suppress=True)

    def verb(name: str, command: Command, summary: str, description: str, *positionals: str) -> argparse.ArgumentParser:
        sp = verbs.add_parser(name, parents=[common], help=summary, description=description)
        sp.set_defaults(func=run(command))
        for arg in positionals:
            sp.add_argument(arg)
        return sp

    verb("list", cmd_list, "every model version (* = default) and workflow", "List models, versions, workers.")
    sp = verb("describe", cmd_describe, "versions, workers and batching of one model or workflow",
              "One model's registered versions (* = default), or every node model of a workflow.")  # fmt: skip
    sp.add_argument("name", help="model name (e.g. thaiplate__recognizer, pipeline) or workflow name")

    sp = verb("register", cmd_register, "register a .mar as a new version (the default does not change)",
              "Register an archive and wait for its worker. TorchServe reads the version from the archive's "
              "manifest; registering never changes the default version (except for a model's first version).")  # fmt: skip
    sp.add_argument("mar", help="a .mar in the server's model store (local path or file name), or a URL")
    sp.add_argument("--name", help="model name to register under (default: the archive's; in DAG mode use "
                    "thaiplate__NODE, e.g. thaiplate__recognizer)")  # fmt: skip
    sp.add_argument("--version", help="register as this version: a local archive with another version is "
                    "re-stamped to NAME.vVERSION.mar next to it first")  # fmt: skip
    sp.add_argument("--workers", type=int, default=1, help="initial workers (default 1)")

    verb("set-default", cmd_set_default, "make a version the default (remembered for rollback)",
              "Make VERSION the default of NAME: unversioned requests, and a workflow's node, use it. "
              "The replaced default is recorded for `rollback`.", "name", "version")  # fmt: skip

    verb("rollback", cmd_rollback, "default back to the previous default",
              "Set the default back to the previous default: the last one recorded by set-default that is "
              "still registered; with no usable record, the highest registered version below the current one.", "name")  # fmt: skip

    verb("unregister", cmd_unregister, "remove one version (TorchServe refuses the default one)",
              "Unregister one version. TorchServe refuses to remove the default while other versions exist: "
              "set-default or rollback first.", "name", "version")  # fmt: skip

    sp = verb("scale", cmd_scale, "set the number of workers of a version",
              "Scale workers (synchronous). Each worker holds its own ONNX sessions: mind the memory.", "name")
    sp.add_argument("--min-workers", type=int, required=True, help="minimum (and initial) workers")
    sp.add_argument("--max-workers", type=int, help="maximum workers (default: --min-workers)")
    sp.add_argument("--version", help="version to scale (default: the default version)")

    sp = verb("canary", cmd_canary, "compare a version's accuracy to the current default on fixed plates",
              "Send the same labelled plates to NAME/VERSION and to NAME's current default version, print "
              "exact-match accuracy, CER, failures and latency of both, and exit 1 if VERSION is worse "
              "(fewer exact readings beyond --tolerance, or more failed requests). Models: a workflow's "
              "recognizer node (sent crops as the detector node would) or a model taking images (pipeline).")  # fmt: skip
    sp.add_argument("name", help="e.g. thaiplate__recognizer or pipeline")
    sp.add_argument("version", help="candidate version (registered, need not be the default)")
    sp.add_argument("--data", help="folder with labels.csv (file, text or plate_text) instead of synthetic plates")
    sp.add_argument("--n", type=int, help="number of plates (synthetic default 60; folder default all)")
    sp.add_argument("--seed", type=int, default=20260, help="synthetic set seed (keep it fixed across releases)")
    sp.add_argument("--tolerance", type=float, default=0.0,
                    help="allowed drop in exact accuracy, as a fraction (0.02 = 2 points; default 0)")  # fmt: skip
    sp.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH ('-': JSON only, on stdout)")
