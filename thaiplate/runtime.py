"""ONNX Runtime plumbing shared by the recogniser and classifier runners (no torch).

Each model ships as ``NAME.onnx`` + ``NAME.yaml`` in one models directory; the YAML (input size,
version, metrics) is the source of truth, so the code that feeds a model never disagrees with it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from thaiplate.preprocess import batch_tensor


def default_models_dir() -> Path:
    """``$THAIPLATE_MODELS``, else ``models/`` at the repo root."""
    env = os.environ.get("THAIPLATE_MODELS")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "models"


@dataclass(frozen=True)
class ModelSpec:
    file: str
    version: str
    height: int
    width: int
    extra: dict = field(default_factory=dict)  # everything else in the YAML (metrics, training data, ...)

    @classmethod
    def from_dict(cls, raw: dict) -> ModelSpec:
        inp = raw.get("input", {})
        rest = {k: v for k, v in raw.items() if k not in {"file", "version", "input"}}
        return cls(
            str(raw["file"]),
            str(raw["version"]),
            int(inp.get("height", 64)),
            int(inp.get("width", 192)),
            rest,
        )

    @classmethod
    def load(cls, yaml_path: str | Path) -> ModelSpec:
        return cls.from_dict(yaml.safe_load(Path(yaml_path).read_text(encoding="utf-8")))


def _env_flag(name: str, default: bool, env: Mapping[str, str]) -> bool:
    value = env.get(name, "").strip().lower()
    return default if value == "" else value not in {"0", "false", "no", "off"}


@dataclass(frozen=True)
class OrtOptions:
    """ONNX Runtime session settings for serving, measured in ``docs/benchmarks/MEMORY.md``.

    One intra-op thread: TorchServe scales by workers and extra threads would fight them on 1 vCPU.
    The environment can override each field (``THAIPLATE_ORT_THREADS``; ``THAIPLATE_ORT_ARENA``,
    ``THAIPLATE_ORT_MEM_PATTERN``, ``THAIPLATE_ORT_PREPACK``: ``0``/``1``; ``THAIPLATE_ORT_OPT``:
    ``basic``/``extended``/``all``), which is how ``scripts/measure-memory --levers`` compares them
    without code changes.
    """

    threads: int = 1
    mem_arena: bool = True
    mem_pattern: bool = True
    prepacking: bool = True  # False: no pre-packed copies of weights (session.disable_prepacking)
    optimization: str = "all"  # graph optimisation level; "all" adds NCHWc layout transforms

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OrtOptions:
        env = os.environ if env is None else env
        d = cls()
        return cls(
            threads=int(env.get("THAIPLATE_ORT_THREADS") or d.threads),
            mem_arena=_env_flag("THAIPLATE_ORT_ARENA", d.mem_arena, env),
            mem_pattern=_env_flag("THAIPLATE_ORT_MEM_PATTERN", d.mem_pattern, env),
            prepacking=_env_flag("THAIPLATE_ORT_PREPACK", d.prepacking, env),
            optimization=env.get("THAIPLATE_ORT_OPT") or d.optimization,
        )

    def but(self, **fields: Any) -> OrtOptions:
        """A copy with the given fields replaced; ``None`` values are ignored (caller's "no opinion")."""
        return dataclasses.replace(self, **{k: v for k, v in fields.items() if v is not None})


def session_options(opts: OrtOptions | None = None) -> Any:
    """``ort.SessionOptions`` for ``opts`` (default: :meth:`OrtOptions.from_env`); sequential execution."""
    import onnxruntime as ort

    opts = opts or OrtOptions.from_env()
    so = ort.SessionOptions()
    so.intra_op_num_threads = opts.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    level = {"basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level[opts.optimization])
    so.enable_cpu_mem_arena = opts.mem_arena
    so.enable_mem_pattern = opts.mem_pattern
    if not opts.prepacking:
        so.add_session_config_entry("session.disable_prepacking", "1")
    return so


def ort_session(path: str | Path, opts: OrtOptions | None = None) -> Any:
    """A CPU ``InferenceSession`` with :func:`session_options`."""
    import onnxruntime as ort

    return ort.InferenceSession(str(path), session_options(opts), providers=["CPUExecutionProvider"])


class OnnxImageModel:
    """An ONNX model over the shared ``(N, 3, H, W)`` plate tensor."""

    NAME = ""

    def __init__(self, path: str | Path, cfg: dict | ModelSpec | None = None, max_batch: int = 32) -> None:
        path = Path(path)
        if cfg is None:
            cfg = yaml.safe_load(path.with_suffix(".yaml").read_text(encoding="utf-8"))
        self.spec = cfg if isinstance(cfg, ModelSpec) else ModelSpec.from_dict(cfg)
        self.path = path
        self.session = ort_session(path)
        self.input_name = self.session.get_inputs()[0].name
        self.max_batch = max_batch

    @classmethod
    def from_dir(cls, models_dir: str | Path | None = None, **kwargs):
        models_dir = Path(models_dir) if models_dir else default_models_dir()
        spec = ModelSpec.load(models_dir / f"{cls.NAME}.yaml")
        return cls(models_dir / spec.file, spec, **kwargs)

    @property
    def version(self) -> str:
        return self.spec.version

    def tensor(self, crops: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """RGB uint8 crops -> the input tensor; a float32 ``(N, 3, H, W)`` array passes through."""
        if isinstance(crops, np.ndarray) and crops.ndim == 4 and crops.dtype == np.float32:
            expected = (3, self.spec.height, self.spec.width)
            if crops.shape[1:] != expected:
                raise ValueError(f"{self.NAME} expects (N, {expected}) tensors, got {crops.shape}")
            return crops
        return batch_tensor(list(crops), self.spec.height, self.spec.width)

    def run(self, crops: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """Raw model output for crops or a precomputed tensor batch, in chunks of ``max_batch``."""
        x = self.tensor(crops)
        if len(x) == 0:
            out_shape = self.session.get_outputs()[0].shape
            return np.zeros((0, *[d if isinstance(d, int) else 0 for d in out_shape[1:]]), np.float32)
        outs = [
            self.session.run(None, {self.input_name: x[i : i + self.max_batch]})[0]
            for i in range(0, len(x), self.max_batch)
        ]
        return np.concatenate(outs)
