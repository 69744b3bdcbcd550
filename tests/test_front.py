"""The HTTP front: the DAG endpoint gets the same status codes as the all-in-one handler."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from test_serving import _classify as _code  # noqa: E402 - tests/ is on sys.path

from thaiplate.serving.front import Front, not_served_body, raw_body_headers, serve_in_thread, workflow_status
from thaiplate.testing.badinputs import EMPTY_RESULT, make_bad_inputs

DAG = "/wfpredict/thaiplate"
PIPE = "/predictions/pipeline"


def _err(code: str) -> dict:
    return {"error": {"code": code, "message": "m"}}


@pytest.mark.parametrize(
    ("doc", "status"),
    [
        ({"plates": [], "image": {"width": 1, "height": 1}}, 200),
        (_err("not_an_image"), 400),
        (_err("too_many_pixels"), 413),
        (_err("too_many_images"), 413),
        ([_err("truncated"), _err("empty")], 400),
        ([_err("truncated"), {"plates": []}], 200),  # a batch with one good image is a success
        ([], 200),
        ({"error": "not our schema"}, 200),
    ],
)
def test_workflow_status_maps_error_documents(doc, status):
    assert workflow_status(json.dumps(doc).encode()) == status


def test_workflow_status_tolerates_non_json():
    assert workflow_status(b'{"error": ') == 200
    assert workflow_status(b"\x89PNG") == 200


def test_a_404_on_an_inference_path_names_the_endpoints_served():
    from thaiplate.serving.server import endpoints_hint

    both = "this server (THAIPLATE_MODE=both) answers POST /wfpredict/thaiplate and /predictions/pipeline"
    assert endpoints_hint("both") == both
    assert endpoints_hint("dag").endswith("; /predictions/pipeline is served with THAIPLATE_MODE=pipeline or both")
    assert "/wfpredict/thaiplate is served with THAIPLATE_MODE=dag or both" in endpoints_hint("pipeline")
    upstream = b'{"code": 404, "type": "ModelNotFoundException", "message": "Model not found: x"}'
    doc = json.loads(not_served_body("/predictions/x", upstream, "hint"))
    assert doc == {"error": {"code": "not_served", "message": "Model not found: x; hint"}}
    assert json.loads(not_served_body("/p", b"<html>", ""))["error"]["message"] == "nothing is served at /p"


@pytest.fixture(scope="module")
def front(torchserve) -> Iterator[str]:
    srv = Front(("127.0.0.1", 0), torchserve.ports.inference, max_body=25 * 1024 * 1024)
    serve_in_thread(srv)
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.mark.server
def test_dag_through_the_front_answers_like_the_pipeline(front, torchserve):
    """Every bad-input case: same status and error code on /wfpredict (front) as on /predictions."""
    mismatches = []
    for name, (body, ctype, expected) in make_bad_inputs().items():
        headers = {"Content-Type": ctype} if ctype else {}
        dag = requests.post(front + DAG, data=body, headers=headers, timeout=60)
        pipe = requests.post(front + PIPE, data=body, headers=headers, timeout=60)
        if expected == EMPTY_RESULT:
            ok = dag.status_code == 200 and dag.json().get("plates") is not None
        elif name == "body_30mb":
            ok = dag.status_code == pipe.status_code == 413 and _code(dag) == "too_large"
        else:
            ok = (
                dag.status_code == pipe.status_code
                and 400 <= dag.status_code < 500
                and _code(dag) == _code(pipe)
            )
        if not ok:
            mismatches.append(
                f"{name}: DAG {dag.status_code} {dag.text[:100]} | pipeline {pipe.status_code} {pipe.text[:100]}"
            )
    assert not mismatches, "\n".join(mismatches)


def test_form_content_type_is_forwarded_as_raw_bytes():
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8", "X-Request-Id": "a"}
    assert raw_body_headers(form) == {"Content-Type": "application/octet-stream", "X-Request-Id": "a"}
    for kept in ({"Content-Type": "image/jpeg"}, {"content-type": "multipart/form-data; boundary=x"}, {}):
        assert raw_body_headers(kept) == kept


@pytest.mark.server
def test_curl_without_content_type_gets_a_reading_or_our_400(front, torchserve):
    """`curl --data-binary @car.jpg` with no -H sends application/x-www-form-urlencoded: TorchServe alone
    answers 500 with a form-decoder message; through the front the body is read as the image it is."""
    from test_serving import synthetic_plate_scene

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body, _text = synthetic_plate_scene()
    junk = bytes((i * 97 + 13) % 256 for i in range(5000))
    direct = requests.post(torchserve.inference_url + DAG, data=junk, headers=form, timeout=60)
    assert direct.status_code == 500  # the upstream behaviour this works around
    for path in (DAG, PIPE):
        good = requests.post(front + path, data=body, headers=form, timeout=60)
        assert good.status_code == 200 and good.json()["plates"], good.text[:200]
        bad = requests.post(front + path, data=junk, headers=form, timeout=60)
        assert bad.status_code == 400 and _code(bad) == "not_an_image", bad.text[:200]
        cut = requests.post(front + path, data=body[: len(body) // 2], headers=form, timeout=60)
        assert cut.status_code == 400 and _code(cut) == "truncated", cut.text[:200]


@pytest.mark.server
def test_front_passes_good_requests_and_other_endpoints_through(front, torchserve):
    from test_serving import synthetic_plate_scene, without_timings

    body, _text = synthetic_plate_scene()
    via_front = requests.post(front + DAG, data=body, headers={"Content-Type": "image/jpeg"}, timeout=60)
    direct = requests.post(
        torchserve.inference_url + DAG, data=body, headers={"Content-Type": "image/jpeg"}, timeout=60
    )
    assert via_front.status_code == 200, via_front.text
    assert without_timings(via_front.json()) == without_timings(direct.json())
    ping = requests.get(front + "/ping", timeout=10)
    assert ping.status_code == 200 and ping.json()["status"] == "Healthy"
    missing = requests.post(front + "/wfpredict/nope", data=body, timeout=10)
    assert missing.status_code == 404  # TorchServe's own errors keep their status, in our error document
    assert _code(missing) == "not_served" and "nope" in missing.json()["error"]["message"], missing.text
    chunked = requests.post(
        front + PIPE,
        data=iter([body[:1000], body[1000:]]),
        headers={"Content-Type": "image/jpeg"},
        timeout=60,
    )
    assert chunked.status_code == 200 and chunked.json()["plates"]


@pytest.mark.server
def test_entrypoint_serves_the_front_on_port(tmp_path):
    """scripts/serve (the container entrypoint): $PORT is the front, TorchServe hides on loopback."""
    from thaiplate.bench import entrypoint

    entry = entrypoint.start(tmp_path / "store", mode="dag", run_dir=tmp_path, timeout=240)
    try:
        port = entry.server.ports.inference  # the entrypoint's $PORT
        assert f"localhost:{port}/wfpredict/thaiplate" in entry.log.read_text()  # the printed curl targets the front
        r = requests.post(
            f"http://127.0.0.1:{port}{DAG}", data=b"not an image", headers={"Content-Type": "image/jpeg"}, timeout=60
        )
        assert r.status_code == 400 and _code(r) == "not_an_image", r.text
        other = requests.post(f"http://127.0.0.1:{port}{PIPE}", data=b"x", headers={"Content-Type": "image/jpeg"}, timeout=60)
        message = other.json()["error"]["message"]  # the all-in-one endpoint of the other mode: say where to go
        assert other.status_code == 404 and _code(other) == "not_served", other.text
        assert "Model not found" in message and DAG in message and "THAIPLATE_MODE=pipeline or both" in message
        config = (entry.server.run_dir / "config.properties").read_text()
        assert "inference_address=http://127.0.0.1:" in config and f":{port}\n" not in config
    finally:
        rc = entry.stop()
    assert rc == 0
