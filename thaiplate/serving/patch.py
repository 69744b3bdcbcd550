"""Make TorchServe 0.12.0's worker protocol module stop importing torch.

Why: every TorchServe Python worker imports ``ts/protocol/otf_message_handler.py``, whose only use of
torch is a module-level ``import torch`` for one ``isinstance(val, torch.Tensor)`` check on handler
outputs. Our handlers run ONNX Runtime and never return tensors, but the import alone costs ~160 MiB
per worker (and forces torch into the serving image). With the import made lazy a worker starts at
~24 MiB.

Why an exact string replacement and not a ``.patch`` file: it needs no ``patch`` binary in the
runtime image, it is checked by checksum on both sides (pristine 0.12.0 -> patched), and the two
replaced snippets are visible right here. The new code keeps the old behaviour exactly: if torch was
imported by someone in the worker, tensors are still serialised with ``torch.save``; if it was not,
no value can be a ``torch.Tensor`` and the branch is skipped without importing anything.

Usage: ``python -m thaiplate.serving.patch [--check | --revert] [--file PATH]`` (``scripts/patch-torchserve``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TARGET = "ts/protocol/otf_message_handler.py"
# sha256 of the file as shipped in the torchserve==0.12.0 wheel, and after our replacement.
PRISTINE_SHA256 = "83e82dc62b4a95a362efe4518786c6b389b895b85acaf37721aaff042ec9989a"
PATCHED_SHA256 = "457ad4bd62f0ec96bf9fd13ff25df8572a680809d304bc2e599bf3072c41cbb7"

# (old, new) pairs; each ``old`` must occur exactly once in the pristine file.
REPLACEMENTS: tuple[tuple[str, str], ...] = (
    (
        "import torch\n\nfrom ts.utils.util import deprecated\n",
        "# thaiplate: module-level `import torch` removed (lazy, see create_predict_response)\n"
        "from ts.utils.util import deprecated\n",
    ),
    (
        "            elif isinstance(val, torch.Tensor):\n"
        "                buff = io.BytesIO()\n"
        "                torch.save(val, buff)\n",
        '            elif "torch" in sys.modules and isinstance(val, sys.modules["torch"].Tensor):\n'
        "                buff = io.BytesIO()\n"
        '                sys.modules["torch"].save(val, buff)\n',
    ),
)


class PatchError(RuntimeError):
    """The target file is neither the known pristine nor the known patched version."""


@dataclass(frozen=True)
class Outcome:
    path: Path
    action: str  # "patched", "already-patched", "reverted", "already-pristine", "pristine", "unknown"
    sha256: str


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def apply_text(text: str) -> str:
    for old, new in REPLACEMENTS:
        if text.count(old) != 1:
            raise PatchError(f"expected exactly one occurrence of {old.splitlines()[0]!r}")
        text = text.replace(old, new)
    return text


def revert_text(text: str) -> str:
    for old, new in REPLACEMENTS:
        if text.count(new) != 1:
            raise PatchError(f"expected exactly one occurrence of {new.splitlines()[0]!r}")
        text = text.replace(new, old)
    return text


def installed_target() -> Path:
    """The installed module's path, found without importing it (importing it would import torch)."""
    spec = importlib.util.find_spec("ts")
    if spec is None or not spec.submodule_search_locations:
        raise PatchError("torchserve (package `ts`) is not installed in this Python")
    return Path(next(iter(spec.submodule_search_locations))).parent / TARGET


def _refuse(path: Path, digest: str) -> PatchError:
    return PatchError(
        f"refusing to touch {path}: sha256 {digest} is neither torchserve 0.12.0's pristine "
        f"({PRISTINE_SHA256}) nor our patched one ({PATCHED_SHA256}). "
        "Another torchserve version or a locally modified file; re-check the patch by hand."
    )


def check(path: Path) -> Outcome:
    digest = sha256(path.read_bytes())
    state = {PRISTINE_SHA256: "pristine", PATCHED_SHA256: "already-patched"}.get(digest, "unknown")
    return Outcome(path, state, digest)


def _transform(path: Path, src: str, dst: str, edit: Callable[[str], str], done: str, noop: str) -> Outcome:
    """Rewrite ``path`` from checksum ``src`` to ``dst`` with ``edit``; any other content is refused."""
    digest = sha256(path.read_bytes())
    if digest == dst:
        return Outcome(path, noop, digest)
    if digest != src:
        raise _refuse(path, digest)
    new = edit(path.read_text(encoding="utf-8")).encode("utf-8")
    if sha256(new) != dst:
        raise PatchError(f"internal error: edited text hashes to {sha256(new)}, expected {dst}")
    _write_atomic(path, new)
    _drop_bytecode(path)
    return Outcome(path, done, dst)


def apply(path: Path) -> Outcome:
    return _transform(path, PRISTINE_SHA256, PATCHED_SHA256, apply_text, "patched", "already-patched")


def revert(path: Path) -> Outcome:
    return _transform(path, PATCHED_SHA256, PRISTINE_SHA256, revert_text, "reverted", "already-pristine")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".thaiplate-tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _drop_bytecode(path: Path) -> None:
    """Stale .pyc files are revalidated by mtime anyway; removing them just makes that certain."""
    for pyc in (path.parent / "__pycache__").glob(path.stem + ".*.pyc"):
        pyc.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="patch-torchserve", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="report state; exit 0 if patched, 1 if not")
    mode.add_argument("--revert", action="store_true", help="restore the pristine 0.12.0 file")
    parser.add_argument("--file", type=Path, help=f"file to act on (default: installed {TARGET})")
    args = parser.parse_args(argv)
    try:
        path = args.file or installed_target()
        if args.check:
            out = check(path)
            print(f"{out.action}: {out.path} (sha256 {out.sha256})")
            return 0 if out.action == "already-patched" else 1
        out = revert(path) if args.revert else apply(path)
    except (PatchError, OSError) as e:
        print(f"patch-torchserve: {e}", file=sys.stderr)
        return 2
    messages = {
        "patched": "made `import torch` lazy in",
        "already-patched": "nothing to do, already patched:",
        "reverted": "restored pristine torchserve 0.12.0 file",
        "already-pristine": "nothing to do, already pristine:",
    }
    print(f"patch-torchserve: {messages[out.action]} {out.path} (sha256 {out.sha256})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
