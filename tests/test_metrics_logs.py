"""Observability (issue 7): Prometheus metrics and one JSON log line per request, on a REAL TorchServe
started with the production config (conftest.torchserve_prod); plus the record/header logic offline.
"""

from __future__ import annotations

import json
import uuid

import pytest
from prod_client import DAG, PIPE, infer, log_records, sample, scrape, small_jpeg, wait_for

from thaiplate.image import ImageError
from thaiplate.serving import observe
from thaiplate.serving.handler_base import Work
from thaiplate.serving.stages import PipelineStage

MODES = {PIPE: "pipeline", DAG: "dag"}
STAGES = ("decode", "detect", "recognize", "classify", "total")
LATENCY, PLATES, ERRORS = observe.STAGE_LATENCY, observe.PLATES, observe.ERRORS


# ------------------------------------------------------------------------------- server


@pytest.mark.server
@pytest.mark.parametrize("path", [PIPE, DAG])
def test_each_request_logs_one_json_line_with_its_request_id(torchserve_prod, path):
    rid = f"test-{uuid.uuid4()}"
    r = infer(torchserve_prod, path, small_jpeg(), headers={"X-Request-Id": rid})
    assert r.status_code == 200, r.text
    bad = infer(torchserve_prod, path, b"%PDF-1.4\n" + bytes(300), headers={"X-Request-Id": rid + "-bad"})
    assert bad.json()["error"]["code"] == "not_an_image"

    def mine() -> dict[str, dict]:
        return {d["request_id"]: d for d in log_records(torchserve_prod) if d["request_id"].startswith(rid)}

    got = wait_for(lambda: len(mine()) == 2 and mine())
    assert got, f"no JSON log line for {rid} in {torchserve_prod.log_file}"
    ok, err = got[rid], got[rid + "-bad"]
    assert ok["mode"] == MODES[path] and ok["status"] == 200 and ok["error"] is None
    assert ok["images"] == 1 and ok["plates"] == len(r.json()["plates"])
    assert set(ok["timings_ms"]) == set(STAGES) and all(v >= 0 for v in ok["timings_ms"].values())
    assert ok["severity"] == "INFO" and rid not in ok["message"]
    assert err["status"] == 400 and err["error"] == "not_an_image" and err["severity"] == "WARNING"


@pytest.mark.server
def test_requests_without_an_id_are_logged_with_torchserves_job_id(torchserve_prod):
    before = {d["request_id"] for d in log_records(torchserve_prod)}
    assert infer(torchserve_prod, PIPE, small_jpeg(1)).status_code == 200
    new = wait_for(lambda: [d for d in log_records(torchserve_prod) if d["request_id"] not in before])
    assert new, "no JSON log line for a request without X-Request-Id"
    job_id = new[0]["request_id"]
    assert uuid.UUID(job_id)  # TorchServe's id: the frontend logs it too, so the lines can be joined
    log = torchserve_prod.log_file.read_text(errors="replace")
    assert f"jobId {job_id}" in log


@pytest.mark.server
def test_metrics_port_exports_stage_latency_plates_and_errors(torchserve_prod):
    n = 3
    before = scrape(torchserve_prod)
    for path in (PIPE, DAG):
        for i in range(n):
            assert infer(torchserve_prod, path, small_jpeg(i)).status_code == 200
        infer(torchserve_prod, path, b"not an image at all" * 20)

    def counted(m: dict) -> bool:
        return all(
            sample(m, f"{LATENCY}_count", Stage="total", Mode=mode)
            - sample(before, f"{LATENCY}_count", Stage="total", Mode=mode) >= n
            and sample(m, ERRORS, Code="not_an_image", Mode=mode) - sample(before, ERRORS, Code="not_an_image", Mode=mode) >= 1
            for mode in MODES.values()
        )  # fmt: skip

    after = wait_for(lambda: (m := scrape(torchserve_prod)) and counted(m) and m)
    assert after, "handler metrics did not reach the metrics port"
    for mode in MODES.values():
        for stage in STAGES:
            count = sample(after, f"{LATENCY}_count", Stage=stage, Mode=mode)
            total = sample(after, f"{LATENCY}_sum", Stage=stage, Mode=mode)
            assert count >= n and 0 <= total / count < 30, (mode, stage, count, total)
            # buckets are cumulative and end with +Inf == count
            assert sample(after, f"{LATENCY}_bucket", Stage=stage, Mode=mode, le="+Inf") == count
        plates = sample(after, f"{PLATES}_count", Mode=mode)
        assert plates >= n and 0 <= sample(after, f"{PLATES}_sum", Mode=mode) / plates <= 10
    # pipeline: the stages add up to the total
    mean = {s: sample(after, f"{LATENCY}_sum", Stage=s, Mode="pipeline") for s in STAGES}
    assert sum(mean[s] for s in STAGES[:-1]) <= mean["total"] * 1.01 + 0.01
    # TorchServe's own metrics are still there
    names = {name for name, _ in after}
    assert {"ts_inference_requests_total", "Requests2XX", "ts_queue_latency_microseconds", "PredictionTime"} <= names


# ------------------------------------------------------------------------------ offline


class FakeMetric:
    def __init__(self, calls: list, name: str):
        self.calls, self.name = calls, name

    def add_or_update(self, value: float, dimension_values: list, request_id: str = "") -> None:
        self.calls.append((self.name, value, tuple(dimension_values), request_id))


class FakeMetrics:
    """The part of ts.metrics' cache the handlers use; ``get_metric`` fails like an undeclared metric."""

    def __init__(self):
        self.calls: list = []

    def get_metric(self, name, metric_type):
        raise KeyError(name)

    def add_metric_to_cache(self, name, unit, dimension_names, metric_type):
        return FakeMetric(self.calls, name)


class FakeContext:
    def __init__(self, headers: list[dict], ids: dict[int, str]):
        self.headers, self.request_ids, self.model_name = headers, ids, "pipeline"
        self.metrics = FakeMetrics()
        self.status: dict = {}

    def get_all_request_header(self, idx):
        return self.headers[idx]

    def set_response_status(self, code, phrase="", idx=0):
        self.status[idx] = code

    def set_response_content_type(self, idx, value):
        pass


def test_request_id_prefers_the_clients_header():
    ctx = FakeContext([{"X-Request-Id": "abc"}, {"x-request-id": "x" * 500}, {}], {0: "j0", 1: "j1", 2: "j2"})
    assert [observe.request_id(ctx, i) for i in range(3)] == ["abc", "x" * 128, "j2"]


def test_record_sums_timings_over_images_and_names_the_first_error():
    outcomes = [
        observe.ImageOutcome.of({"plates": [{}, {}], "timings_ms": {"detect": 10.0, "total": 12.5}}),
        observe.ImageOutcome.of(ImageError("truncated", "cut", 400)),
        observe.ImageOutcome.of({"plates": [], "timings_ms": {"detect": 5.0, "total": 6.0}}),
    ]
    rec = observe.RequestRecord.of("r1", "dag", "thaiplate__classifier", 200, outcomes)
    assert (rec.images, rec.plates, rec.error) == (3, 2, "truncated")
    assert rec.timings_ms == {"detect": 15.0, "total": 18.5}
    doc = json.loads(rec.to_json())
    assert doc["event"] == "thaiplate.request" and doc["request_id"] == "r1" and doc["severity"] == "INFO"


def test_pipeline_handler_reports_metrics_and_a_log_line(caplog):
    class FakePipeline:
        def run(self, data: bytes):
            from thaiplate.results import PipelineResult

            if data.startswith(b"bad"):
                raise ImageError("not_an_image", "bad bytes", 400)
            return PipelineResult(plates=[], image={"width": 1, "height": 1}, timings_ms={"detect": 2.0})

    handler = PipelineStage()
    handler.pipeline = FakePipeline()  # type: ignore[assignment]
    ctx = FakeContext([{"X-Request-Id": "good"}, {}, {}], {0: "j0", 1: "j1", 2: "j2"})
    with caplog.at_level("INFO", logger="thaiplate.requests"):
        handler.handle([{"body": b"\xff\xd8ok"}, {"body": b"bad" + bytes(300)}, {"body": b""}], ctx)
    lines = [json.loads(r.getMessage()) for r in caplog.records]
    assert [(d["request_id"], d["status"], d["error"]) for d in lines] == [
        ("good", 200, None), ("j1", 400, "not_an_image"), ("j2", 400, "empty"),
    ]  # fmt: skip
    calls = ctx.metrics.calls
    assert (LATENCY, 0.002, ("detect", "pipeline"), "good") in calls
    assert (PLATES, 0, ("pipeline",), "good") in calls
    assert [c[2] for c in calls if c[0] == ERRORS] == [("not_an_image", "pipeline"), ("empty", "pipeline")]


def test_work_carries_the_request_id_through_the_dag_payload():
    from thaiplate.serving.stages import DetectorStage, RecognizerStage

    detector = DetectorStage()
    reply = detector.postprocess([Work(single=True, error=ImageError("empty", "none", 400), request_id="abc")])[0]
    works = RecognizerStage().preprocess([{"body": reply.body}])
    assert works[0].request_id == "abc"
