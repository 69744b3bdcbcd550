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
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("detector", "recognizer", "classifier")
WORKFLOW = "thaiplate"


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


def build_all(models_dir: Path, out: Path, root: Path = ROOT) -> list[Path]:
    """Build every archive; returns their paths (the .war last)."""
    out.mkdir(parents=True, exist_ok=True)
    configs = root / "archive" / "model-config"
    handlers = root / "handlers"
    built: list[Path] = []
    found = {name: model_files(models_dir, name) for name in STAGES}  # fail before building anything
    all_files = [f for files, _ in found.values() for f in files]
    versions = {name: version for name, (_, version) in found.items()}
    for name in STAGES:
        files, version = found[name]
        if name == "detector":  # only their input size: the detector node shrinks crops to it
            files = files + [models_dir / "recognizer.yaml", models_dir / "classifier.yaml"]
        config = configs / f"{name}.model-config.yaml"
        built.append(build_mar(name, handlers / f"{name}.py", files, version, config, out))
    pipeline_version = "-".join(f"{n[0]}{versions[n]}" for n in STAGES)  # e.g. d1.0-r0.3-c0.2
    built.append(
        build_mar(
            "pipeline", handlers / "pipeline.py", all_files, pipeline_version, configs / "pipeline.model-config.yaml", out
        )
    )
    wf_handler = root / "archive" / "workflow_handler.py"
    built.append(build_war(root / "archive" / "workflow.yaml", out, wf_handler if wf_handler.exists() else None))
    return built


def cmd_archive(args: argparse.Namespace) -> int:
    try:
        for path in build_all(Path(args.models_dir), Path(args.out)):
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
    p.set_defaults(func=cmd_archive)
