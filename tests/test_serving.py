"""TorchServe integration: the DAG workflow and pipeline.mar on a REAL server (see conftest.torchserve).

What must hold in production: workers never load torch; both modes answer the same JSON (apart from
timings); bad input gets our error JSON and the worker survives; concurrent DAG requests do not stall
on the DagExecutor race; the torch patch refuses files it does not know.
"""

from __future__ import annotations

import copy
import io
import shutil
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from thaiplate.serving import patch

ROOT = Path(__file__).resolve().parents[1]
REAL_SMOKE = Path("/work/shared/real-smoke")
DAG = "/wfpredict/thaiplate"
PIPE = "/predictions/pipeline"


def post(server, path: str, body: bytes, content_type: str | None = "image/jpeg", **kw) -> requests.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return requests.post(server.inference_url + path, data=body, headers=headers, timeout=60, **kw)


def without_timings(doc):
    doc = copy.deepcopy(doc)
    for d in doc if isinstance(doc, list) else [doc]:
        if isinstance(d, dict):
            d.pop("timings_ms", None)
    return doc


def jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def synthetic_plate_scene() -> tuple[bytes, str]:
    """A clean private-car plate, straight on, on a plain car-coloured background (easy by design)."""
    try:
        from thaiplate.labels import PlateType
        from thaiplate.synth.grammar import sample_plate
        from thaiplate.synth.render import render_plate
    except ImportError as e:
        pytest.skip(f"thaiplate.synth not available: {e}")
    rng = np.random.default_rng(7)
    spec = sample_plate(rng, PlateType.PRIVATE_CAR)
    try:
        plate = render_plate(spec, rng, px_per_mm=0.3)  # ~100 px wide: mid-range of the training scenes
    except Exception as e:  # noqa: BLE001 - e.g. Thai fonts missing on this machine
        pytest.skip(f"cannot render a synthetic plate here: {type(e).__name__}: {e}")
    h, w = plate.rgb.shape[:2]
    scene = np.full((480, 640, 3), (70, 80, 95), np.uint8)
    y, x = (480 - h) // 2 + 60, (640 - w) // 2
    a = plate.alpha[..., None].astype(np.float32) / 255.0
    region = scene[y : y + h, x : x + w].astype(np.float32)
    scene[y : y + h, x : x + w] = (plate.rgb * a + region * (1 - a)).astype(np.uint8)
    return jpeg(scene), spec.text


def model_status() -> dict[str, str]:
    """``status`` of each served model's YAML (``trained`` once it is a real, finished model)."""
    import yaml
    from conftest import STAGES, models_dir

    out = {}
    for name in STAGES:
        spec = yaml.safe_load((models_dir() / f"{name}.yaml").read_text(encoding="utf-8")) or {}
        out[name] = str(spec.get("status", "unknown"))
    return out


def real_crops(n: int = 4) -> list[Path]:
    files = sorted(REAL_SMOKE.glob("*.jpg"))[:n]
    if not files:
        pytest.skip(f"no real-smoke crops in {REAL_SMOKE}")
    return files


# ------------------------------------------------------------------------------ no torch


@pytest.mark.server
def test_workers_never_load_torch(torchserve):
    from conftest import server_processes

    pids = [p for p in server_processes(torchserve.run_dir) if b"model_service_worker" in _cmdline(p)]
    assert len(pids) >= 4, f"expected 3 DAG workers + pipeline, found {pids}"
    on_serve_venv = patch.check(patch.installed_target()).action == "already-patched" or (
        ROOT / ".venv-serve" / "bin" / "python"
    ).exists()
    if not on_serve_venv:
        pytest.skip("no .venv-serve and unpatched TorchServe: run scripts/setup-serve")
    for pid in pids:
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "libtorch" not in maps and "/torch/lib/" not in maps, f"worker {pid} mapped torch"


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


# ------------------------------------------------------------------------ same answers


@pytest.mark.server
def test_synthetic_plate_read_by_both_modes(torchserve):
    body, text = synthetic_plate_scene()
    dag, pipe = post(torchserve, DAG, body), post(torchserve, PIPE, body)
    assert dag.status_code == 200 and pipe.status_code == 200, (dag.text, pipe.text)
    assert without_timings(dag.json()) == without_timings(pipe.json())
    # "trained[: how]" or "final" are finished models; "early"/"untrained" snapshots only get the DAG check
    untrained = {n: s for n, s in model_status().items() if s.split(":")[0] not in ("trained", "final")}
    if untrained:  # same convention as test_recognize: accuracy is only asserted for trained models
        pytest.skip(f"DAG == pipeline checked; text not checked, models not fully trained: {untrained}")
    plates = pipe.json()["plates"]
    assert plates, "no plate detected in an easy synthetic scene"
    assert plates[0]["text"].replace(" ", "") == text.replace(" ", "")
    assert set(dag.json()["timings_ms"]) == set(pipe.json()["timings_ms"])


@pytest.mark.server
def test_real_crops_give_a_result_in_both_modes(torchserve):
    read = 0
    for path in real_crops():
        body = path.read_bytes()
        dag, pipe = post(torchserve, DAG, body), post(torchserve, PIPE, body)
        assert dag.status_code == 200 and pipe.status_code == 200, (path.name, dag.text, pipe.text)
        doc = pipe.json()
        assert doc and set(doc) >= {"plates", "image", "timings_ms", "models"}
        with Image.open(path) as im:
            assert doc["image"] == {"width": im.width, "height": im.height}
        assert without_timings(dag.json()) == without_timings(doc), path.name
        read += bool(doc["plates"])
    # a plate crop sent on its own is read whole; detector v7's 5 x 2 px box on one crop once hid it
    untrained = [n for n, st in model_status().items() if st.split(":")[0] not in ("trained", "final")]
    if not untrained:
        assert read == len(real_crops()), f"{read} of {len(real_crops())} real crops came back with a plate"


@pytest.mark.server
@pytest.mark.parametrize("path", [DAG, PIPE])
def test_multipart_batch_answers_a_list_in_order(torchserve, path):
    crops = [p.read_bytes() for p in real_crops(2)]
    files = [
        ("first", ("a.jpg", crops[0], "image/jpeg")),
        # binary (a short printable part would be taken for a form field, not a file)
        ("second", ("b.pdf", b"%PDF-1.4\n" + bytes(512), "application/pdf")),
        ("third", ("c.jpg", crops[1], "image/jpeg")),
    ]
    r = requests.post(torchserve.inference_url + path, files=files, timeout=60)
    assert r.status_code == 200, r.text
    out = r.json()
    assert isinstance(out, list) and len(out) == 3
    assert out[1]["error"]["code"] == "not_an_image"
    singles = [post(torchserve, PIPE, c).json() for c in crops]
    assert without_timings([out[0], out[2]]) == without_timings(singles)


# --------------------------------------------------------------------------- bad input


def bad_inputs() -> dict:
    from thaiplate.testing.badinputs import EMPTY_RESULT, make_bad_inputs

    return {name: case for name, case in make_bad_inputs().items()}, EMPTY_RESULT


@pytest.mark.server
def test_bad_inputs_get_error_json_and_the_worker_survives(torchserve):
    cases, empty_result = bad_inputs()
    good = real_crops(1)[0].read_bytes()
    failures = []
    for name, (body, ctype, expected) in cases.items():
        for path in (PIPE, DAG):
            r = post(torchserve, path, body, ctype)
            got = _classify(r)
            if expected == empty_result:
                # a valid picture: a result document (whether a plate is found is the detector's tests' job)
                ok = r.status_code == 200 and isinstance(r.json(), dict) and isinstance(r.json().get("plates"), list)
            elif name == "malformed_multipart":
                # the Java frontend parses multipart itself and hands the worker no file: "empty", 400
                ok = r.status_code == (400 if path == PIPE else 200) and got in ("bad_multipart", "empty")
            elif path == PIPE:
                # our handler's status; bodies above max_request_size are refused by the frontend
                ok = (400 <= r.status_code < 500 and got == expected) or (
                    name == "body_30mb" and r.status_code == 413
                )
            else:
                # TorchServe 0.12 workflows drop node statuses: 200 + our error JSON (documented)
                ok = (r.status_code == 200 and got == expected) or (name == "body_30mb" and r.status_code == 413)
            if not ok:
                failures.append(f"{name} via {path}: HTTP {r.status_code} {r.text[:160]}")
            after = post(torchserve, path, good)
            if after.status_code != 200:
                failures.append(f"good request after {name} via {path}: HTTP {after.status_code}")
    assert not failures, "\n".join(failures)


def _classify(r: requests.Response) -> str | None:
    try:
        doc = r.json()
    except ValueError:
        return None
    return doc.get("error", {}).get("code") if isinstance(doc, dict) else None


# ------------------------------------------------------------------------ concurrency


@pytest.mark.server
def test_dag_under_concurrency_has_no_stalls(torchserve, capsys):
    """The DagExecutor race drops a fast node reply; TorchServe then logs a node timeout and retries."""
    bodies = [p.read_bytes() for p in real_crops(4)]
    for path in (DAG, PIPE):  # warm-up
        post(torchserve, path, bodies[0])

    def timed(args):
        path, body = args
        t0 = time.perf_counter()
        r = post(torchserve, path, body)
        return r.status_code, (time.perf_counter() - t0) * 1000

    report = {}
    for path in (DAG, PIPE):
        before = node_timeouts(torchserve)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(timed, [(path, bodies[i % 4]) for i in range(48)]))
        assert all(s == 200 for s, _ in results), results
        stalls = node_timeouts(torchserve) - before
        report[path] = (sorted(t for _, t in results), stalls)
        assert stalls == 0, f"{path}: {stalls} DAG node timeouts (dropped replies) at concurrency 4"
    with capsys.disabled():
        for path, (ms, stalls) in report.items():
            print(f"\n{path}: concurrency 4, p50 {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms, stalls {stalls}")


def node_timeouts(server) -> int:
    log = Path(server.log_file).read_text(errors="replace")
    return log.count("Timed out while executing")


# ------------------------------------------------------------------------------- patch


def test_patch_is_idempotent_and_refuses_unknown_files(tmp_path):
    src = patch.installed_target()
    target = tmp_path / "otf_message_handler.py"
    shutil.copy(src, target)
    if patch.check(target).action == "already-patched":
        patch.revert(target)
    assert patch.check(target).action == "pristine"
    assert patch.apply(target).action == "patched"
    assert patch.apply(target).action == "already-patched"
    text = target.read_text()
    assert "\nimport torch\n" not in text and 'sys.modules["torch"]' in text
    target.write_text(text + "# local edit\n")
    before = target.read_bytes()
    run = subprocess.run(
        [str(Path(patch.__file__).parents[2] / "scripts" / "patch-torchserve"), "--file", str(target)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "refusing" in run.stderr
    assert target.read_bytes() == before
