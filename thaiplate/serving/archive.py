"""`thaiplate archive`: build the TorchServe archives into a model store.

Outputs (``model_store/`` by default, gitignored):

- ``detector.mar``, ``recognizer.mar``, ``classifier.mar``: one DAG node each, ``handlers/NAME.py``
  plus ``models/NAME.onnx`` + ``models/NAME.yaml``;
- ``pipeline.mar``: all three models and ``handlers/pipeline.py`` (all stages in one worker);
- ``thaiplate.war``: the workflow ``archive/workflow.yaml`` over the three node archives.

The TorchServe model-config of each archive is ``archive/model-config/NAME.model-config.yaml``; the
archiver stores it under its base name, so it must not be called ``NAME.yaml`` (that is the model's own
YAML, which the handler reads).

Why the archiver CLIs and not their Python APIs: the CLIs are the documented, stable interface of
torch-model-archiver 0.12.0 / torch-workflow-archiver 0.2.15. Archive versions come from
``models/NAME.yaml`` (``version``), so ``GET /models/NAME`` tells which weights are being served.

One archive as a given version (release flow, docs/VERSIONING.md)::

    thaiplate archive --only recognizer --version 3     # -> model_store/recognizer.v3.mar

A versioned archive gets its own file name (the unversioned ``NAME.mar`` the workflow loads at start
is left alone) and its packed ``NAME.yaml`` says the same version as its manifest: handlers report
the YAML's version in every response's ``models``, so responses name the archive version serving them.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("detector", "recognizer", "classifier")
WORKFLOW = "thaiplate"
PIPELINE = "pipeline"
TARGETS = (*STAGES, PIPELINE, WORKFLOW)
MANIFEST = "MAR-INF/MANIFEST.json"
# safe in a file name and a URL path (/predictions/NAME/VERSION)
VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class ArchiveError(RuntimeError):
    pass


def tool(name: str) -> str:
    """The archiver next to this Python (the serving venv), else the one on PATH."""
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise ArchiveError(f"{name} not found; install the serving extras: pip install -e .[serve]")
    return found


def model_files(models_dir: Path, name: str) -> tuple[list[Path], str]:
    """``NAME.yaml`` + the weights it names, and its version."""
    spec_path = models_dir / f"{name}.yaml"
    if not spec_path.exists():
        raise ArchiveError(f"{spec_path} missing: models/ has no {name} model yet")
    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8")) or {}
    weights = models_dir / str(spec.get("file", f"{name}.onnx"))
    if not weights.exists():
        raise ArchiveError(f"{weights} missing (named by {spec_path})")
    if "version" not in spec:
        raise ArchiveError(f"{spec_path} has no `version`")
    return [weights, spec_path], str(spec["version"])


def build_mar(
    name: str, handler: Path, files: list[Path], version: str, config: Path, out: Path
) -> Path:
    cmd = [
        tool("torch-model-archiver"),
        "--model-name", name,
        "--version", version,
        "--handler", str(handler),
        "--extra-files", ",".join(str(f) for f in files),
        "--config-file", str(config),
        "--export-path", str(out),
        "--force",
    ]  # fmt: skip
    _run(cmd)
    return out / f"{name}.mar"


def build_war(spec: Path, out: Path, handler: Path | None = None) -> Path:
    cmd = [
        tool("torch-workflow-archiver"),
        "--workflow-name", WORKFLOW,
        "--spec-file", str(spec),
        "--export-path", str(out),
        "--force",
    ]  # fmt: skip
    if handler is not None:
        cmd += ["--handler", str(handler)]
    _run(cmd)
    return out / f"{WORKFLOW}.war"


def _run(cmd: list[str]) -> None:
    # the archivers write temp files next to the cwd; run them in a scratch dir
    with tempfile.TemporaryDirectory(prefix="thaiplate-archive-") as tmp:
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ArchiveError(f"{Path(cmd[0]).name} failed ({proc.returncode}):\n{proc.stderr or proc.stdout}")


def build_all(
    models_dir: Path, out: Path, root: Path = ROOT, only: tuple[str, ...] = TARGETS, version: str | None = None
) -> list[Path]:
    """Build the archives in ``only`` (default: all); returns their paths (the .war last).

    ``version`` (one model archive only) overrides the model card's version: see :func:`stamp_version`.
    """
    if version is not None and (len(only) != 1 or only[0] == WORKFLOW):
        raise ArchiveError("--version needs exactly one model archive (--only NAME; a workflow has no version)")
    # the archivers run in a scratch cwd (_run): relative paths would point into it
    models_dir, out, root = Path(models_dir).resolve(), Path(out).resolve(), Path(root).resolve()
    out.mkdir(parents=True, exist_ok=True)
    configs = root / "archive" / "model-config"
    handlers = root / "handlers"
    # fail before building anything; a lone recogniser/classifier build needs only its own model
    needed = STAGES if PIPELINE in only or "detector" in only else [n for n in STAGES if n in only]
    found = {name: model_files(models_dir, name) for name in needed}
    all_files = [f for files, _ in found.values() for f in files]
    versions = {name: version for name, (_, version) in found.items()}
    dest = Path(tempfile.mkdtemp(prefix="thaiplate-mar-")) if version is not None else out
    built: list[Path] = []
    try:
        for name in (n for n in STAGES if n in only):
            files = found[name][0]
            if name == "detector":  # only their input size: the detector node shrinks crops to it
                files = files + [models_dir / "recognizer.yaml", models_dir / "classifier.yaml"]
            config = configs / f"{name}.model-config.yaml"
            built.append(build_mar(name, handlers / f"{name}.py", files, versions[name], config, dest))
        if PIPELINE in only:
            pipeline_version = "-".join(f"{n[0]}{versions[n]}" for n in STAGES)  # e.g. d1-r2-c2
            config = configs / f"{PIPELINE}.model-config.yaml"
            built.append(build_mar(PIPELINE, handlers / f"{PIPELINE}.py", all_files, pipeline_version, config, dest))
        if version is not None:
            return [stamp_version(built[0], version, out)]
    finally:
        if dest is not out:
            shutil.rmtree(dest, ignore_errors=True)
    if WORKFLOW in only:
        wf_handler = root / "archive" / "workflow_handler.py"
        built.append(build_war(root / "archive" / "workflow.yaml", out, wf_handler if wf_handler.exists() else None))
    return built


# ---------------------------------------------------------------------------- versions


def read_manifest(mar: Path) -> dict:
    """A .mar's ``MANIFEST.json`` (``model.modelName``, ``model.modelVersion``, ...)."""
    try:
        with zipfile.ZipFile(mar) as z:
            return json.loads(z.read(MANIFEST))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as e:
        raise ArchiveError(f"{mar}: not a model archive ({type(e).__name__}: {e})") from None


def versioned_name(name: str, version: str) -> str:
    return f"{name}.v{version}.mar"


def stamp_version(mar: Path, version: str, out: Path) -> Path:
    """Copy ``mar`` to ``out/NAME.vVERSION.mar`` with ``version`` in its manifest and in its ``NAME.yaml``.

    Why both: TorchServe takes the version from the manifest (its API cannot override it), and the
    handler reports the version in the packed model YAML; they must agree so a response names the
    archive version that served it. Only the top-level ``version:`` line of the YAML changes.
    """
    if not VERSION_RE.fullmatch(version):
        raise ArchiveError(f"version {version!r}: use letters, digits, '.', '_' or '-' (e.g. 3, 2.1)")
    manifest = read_manifest(mar)
    name = manifest["model"]["modelName"]
    manifest["model"]["modelVersion"] = version
    target = out / versioned_name(name, version)
    tmp = target.with_suffix(".tmp")
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(mar) as src, zipfile.ZipFile(tmp, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == MANIFEST:
                data = json.dumps(manifest, indent=2).encode()
            elif info.filename == f"{name}.yaml":
                line = yaml.safe_dump({"version": version}).strip()
                text, n = re.subn(r"(?m)^version:.*$", line, data.decode("utf-8"), count=1)
                data = (text if n else f"{text.rstrip()}\n{line}\n").encode("utf-8")
            dst.writestr(info, data)
    tmp.replace(target)
    return target


def cmd_archive(args: argparse.Namespace) -> int:
    try:
        only = tuple(args.only) if args.only else TARGETS
        for path in build_all(Path(args.models_dir), Path(args.out), only=only, version=args.version):
            print(f"built {path} ({path.stat().st_size / 1e6:.1f} MB)")
    except ArchiveError as e:
        print(f"thaiplate archive: {e}", file=sys.stderr)
        return 1
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "archive",
        help="build TorchServe archives (.mar per stage, pipeline.mar, thaiplate.war)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--models-dir", default=str(ROOT / "models"), help="ONNX + YAML models (default: models/)")
    p.add_argument("--out", default=str(ROOT / "model_store"), help="model store to write (default: model_store/)")
    p.add_argument(
        "--only",
        action="append",
        choices=TARGETS,
        metavar="NAME",
        help=f"build only this archive (repeatable; one of {', '.join(TARGETS)}); default: all",
    )
    p.add_argument(
        "--version",
        help="with one --only model: build it as this version, written as NAME.vVERSION.mar "
        "(manifest and packed NAME.yaml both say VERSION; NAME.mar is not touched)",
    )
    p.set_defaults(func=cmd_archive)
