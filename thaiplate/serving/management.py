"""TorchServe management API client (stdlib only) and the default-version history behind ``rollback``.

Why a client: with token auth on, every call needs a key from ``key_file.json``; reading it here keeps
keys out of shell history. Why a history: TorchServe remembers only the *current* default version of
a model, so "roll back to the previous default" needs a record of earlier defaults (see
:class:`History`). Used by ``thaiplate models`` (``models_cli``) and the versioning tests.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thaiplate.serving.server import _request


class ApiError(RuntimeError):
    """A management/inference call answered with an HTTP error (or did not answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status


@dataclass(frozen=True)
class Tokens:
    """Bearer keys: ``management`` for /models, ``inference`` for /predictions (``None``: auth off)."""

    management: str | None = None
    inference: str | None = None

    @classmethod
    def resolve(cls, token: str | None = None, key_file: str | None = None, inference: str | None = None) -> Tokens:
        """``--token``, else ``key_file.json``'s keys, else ``$THAIPLATE_TOKEN``; one token serves both APIs
        unless an inference key is given separately (``--inference-token`` / ``$THAIPLATE_INFERENCE_TOKEN``)."""
        keys: dict[str, str] = {}
        if key_file:
            doc = json.loads(Path(key_file).read_text(encoding="utf-8"))
            keys = {k: v["key"] for k, v in doc.items() if isinstance(v, dict) and "key" in v}
        mgmt = token or keys.get("management") or os.environ.get("THAIPLATE_TOKEN") or None
        inf = inference or keys.get("inference") or os.environ.get("THAIPLATE_INFERENCE_TOKEN") or mgmt
        return cls(mgmt, inf)


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model, as ``GET /models/NAME/all`` describes it."""

    name: str
    version: str
    url: str
    default: bool
    min_workers: int
    max_workers: int
    batch_size: int
    max_batch_delay: int
    workers: tuple[str, ...]  # worker states, e.g. ("READY",)

    @classmethod
    def from_api(cls, d: dict[str, Any], default: str) -> ModelVersion:
        return cls(
            d["modelName"], str(d["modelVersion"]), d.get("modelUrl", ""), str(d["modelVersion"]) == default,
            int(d.get("minWorkers", 0)), int(d.get("maxWorkers", 0)), int(d.get("batchSize", 1)),
            int(d.get("maxBatchDelay", 0)), tuple(w.get("status", "?") for w in d.get("workers", [])),
        )  # fmt: skip


@dataclass(frozen=True)
class Client:
    """Calls one TorchServe. Every method raises :class:`ApiError` on an HTTP error."""

    management_url: str = "http://127.0.0.1:8081"
    inference_url: str = "http://127.0.0.1:8080"
    tokens: Tokens = field(default_factory=Tokens)
    timeout: float = 30.0

    def call(self, method: str, path: str, timeout: float | None = None) -> Any:
        """A management call -> its JSON answer."""
        url = self.management_url.rstrip("/") + path
        try:
            status, body = _request(method, url, self.tokens.management, timeout or self.timeout)
        except OSError as e:  # URLError included: server down, wrong port
            raise ApiError(0, f"{method} {url}: {e}") from None
        text = body.decode(errors="replace")
        if status != 200:
            with contextlib.suppress(ValueError, AttributeError):
                text = json.loads(text).get("message", text)
            raise ApiError(status, f"{method} {path}: {text.strip()[:300]}")
        return json.loads(text) if text.strip() else {}

    # -- reading -------------------------------------------------------------------------
    def models(self) -> list[str]:
        """Every registered model name (workflow nodes included, as ``WORKFLOW__NODE``)."""
        names: list[str] = []
        token = ""
        while True:
            doc = self.call("GET", f"/models?limit=100&next_page_token={token}")
            names += [m["modelName"] for m in doc.get("models", [])]
            token = doc.get("nextPageToken") or ""
            if not token:
                return names

    def workflows(self) -> list[str]:
        return [w["workflowName"] for w in self.call("GET", "/workflows").get("workflows", [])]

    def workflow_nodes(self, workflow: str) -> list[str]:
        """The model names TorchServe registered for a workflow's nodes (``thaiplate__recognizer``, ...)."""
        return sorted(m for m in self.models() if m.startswith(f"{workflow}__"))

    def default_version(self, name: str) -> str:
        return str(self.call("GET", f"/models/{_q(name)}")[0]["modelVersion"])

    def versions(self, name: str) -> list[ModelVersion]:
        """All registered versions, oldest version number first, the default one flagged."""
        default = self.default_version(name)
        found = [ModelVersion.from_api(d, default) for d in self.call("GET", f"/models/{_q(name)}/all")]
        return sorted(found, key=lambda v: version_key(v.version))

    # -- changing ------------------------------------------------------------------------
    def register(self, url: str, name: str, workers: int = 1, timeout: float = 300.0) -> str:
        """Register an archive (``url``: a file name in the server's model store, or an allowed URL) and
        wait for its workers. The version comes from the archive's manifest; the default is unchanged
        unless this is the model's first version."""
        query = urllib.parse.urlencode(
            {"url": url, "model_name": name, "initial_workers": workers, "synchronous": "true"}
        )
        return self.call("POST", f"/models?{query}", timeout)["status"]

    def set_default(self, name: str, version: str) -> str:
        return self.call("PUT", f"/models/{_q(name)}/{_q(version)}/set-default")["status"]

    def unregister(self, name: str, version: str) -> str:
        """TorchServe refuses (403) to remove the default version while other versions exist."""
        return self.call("DELETE", f"/models/{_q(name)}/{_q(version)}", 120.0)["status"]

    def scale(self, name: str, min_workers: int, max_workers: int | None = None, version: str | None = None) -> str:
        path = f"/models/{_q(name)}" + (f"/{_q(version)}" if version else "")
        query = urllib.parse.urlencode(
            {"min_worker": min_workers, "max_worker": max(min_workers, max_workers or 0), "synchronous": "true"}
        )
        return self.call("PUT", f"{path}?{query}", 300.0)["status"]

    # -- inference -----------------------------------------------------------------------
    def predict(self, name: str, version: str | None, body: bytes, content_type: str) -> tuple[int, bytes]:
        """``POST /predictions/NAME[/VERSION]`` -> (status, body); HTTP errors are returned, not raised."""
        path = f"/predictions/{_q(name)}" + (f"/{_q(version)}" if version else "")
        try:
            return _request("POST", self.inference_url.rstrip("/") + path, self.tokens.inference, self.timeout,
                            body=body, content_type=content_type)  # fmt: skip
        except OSError as e:
            raise ApiError(0, f"POST {path}: {e}") from None


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def version_key(version: str) -> tuple:
    """Natural order: ``2 < 10``, ``2.1 < 2.10``; text parts after numbers at the same position."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.findall(r"\d+|[^\d.]+", version))


# ------------------------------------------------------------------------------- history


def default_state_path() -> Path:
    """``$THAIPLATE_STATE``, else ``$XDG_STATE_HOME/thaiplate/defaults.json`` (``~/.local/state``)."""
    if os.environ.get("THAIPLATE_STATE"):
        return Path(os.environ["THAIPLATE_STATE"])
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "thaiplate" / "defaults.json"


@dataclass(frozen=True)
class History:
    """Earlier default versions, per server and model: an undo stack for ``set-default``.

    Why a record and not "the highest other version": a candidate registered for a canary (say v4)
    is higher than the previous default (v2) but was never trusted; rolling back from v3 must go to
    v2. The record is a small JSON file on the operator's machine, keyed by management URL + model.
    It is only a hint, checked against the server: a recorded version that is no longer registered
    (server restarted, version unregistered) is skipped, and with no usable record :func:`rollback`
    falls back to the highest registered version below the current one.
    """

    path: Path

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, list[str]]]:
        """Read-modify-write under an exclusive lock (two shells may promote at once)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = json.loads(self.path.read_text(encoding="utf-8"))
            except (FileNotFoundError, json.JSONDecodeError):
                state = {}
            yield state
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=1, sort_keys=True), encoding="utf-8")
            tmp.replace(self.path)

    @staticmethod
    def key(client: Client, name: str) -> str:
        return f"{client.management_url.rstrip('/')} {name}"

    def push(self, client: Client, name: str, version: str) -> None:
        with self._locked() as state:
            stack = state.setdefault(self.key(client, name), [])
            if not stack or stack[-1] != version:
                stack.append(version)
            del stack[:-50]  # bounded

    def pop_until(self, client: Client, name: str, usable: set[str]) -> str | None:
        """Most recent recorded default in ``usable``; it and everything recorded after it are consumed."""
        with self._locked() as state:
            stack = state.get(self.key(client, name), [])
            for i in range(len(stack) - 1, -1, -1):
                if stack[i] in usable:
                    found = stack[i]
                    del stack[i:]
                    return found
            return None


@dataclass(frozen=True)
class Change:
    """What ``set-default`` / ``rollback`` did."""

    name: str
    previous: str
    current: str
    reason: str


def promote(client: Client, history: History, name: str, version: str) -> Change:
    """Make ``version`` the default and remember the one it replaces (for :func:`rollback`)."""
    previous = client.default_version(name)
    client.set_default(name, version)
    if previous != version:
        history.push(client, name, previous)
    return Change(name, previous, version, "set-default")


def rollback(client: Client, history: History, name: str) -> Change:
    """Default back to the previous default: the last recorded one still registered, else the highest
    registered version below the current default. Raises :class:`ApiError` when there is none."""
    registered = client.versions(name)
    versions = [v.version for v in registered]
    current = next(v.version for v in registered if v.default)
    usable = set(versions) - {current}
    target = history.pop_until(client, name, usable)
    reason = f"previous default (recorded in {history.path})"
    if target is None:
        lower = [v for v in versions if version_key(v) < version_key(current)]
        if not lower:
            raise ApiError(0, f"{name}: no recorded previous default and no registered version below {current}")
        target, reason = lower[-1], "no usable record: highest registered version below the current default"
    client.set_default(name, target)
    return Change(name, current, target, reason)
