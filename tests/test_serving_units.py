"""Handler plumbing without TorchServe or models: payload codec, reply shaping, per-request statuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from thaiplate.image import ImageError
from thaiplate.results import Candidate, Detection, PipelineResult, TextReading
from thaiplate.serving import payload
from thaiplate.serving.handler_base import Work, request_content_type, shape_reply
from thaiplate.serving.stages import PipelineStage


class FakeContext:
    """The parts of ts.context.Context a handler uses."""

    def __init__(self, headers: list[dict]):
        self.headers = headers
        self.status: dict[int, tuple[int, str]] = {}
        self.content_type: dict[int, str] = {}

    def get_all_request_header(self, idx: int) -> dict:
        return self.headers[idx]

    def set_response_status(self, code: int, phrase: str = "", idx: int = 0) -> None:
        self.status[idx] = (code, phrase)

    def set_response_content_type(self, idx: int, value: str) -> None:
        self.content_type[idx] = value


def test_payload_roundtrip_keeps_arrays_and_results():
    det = Detection((1.5, 2.0, 30.25, 14.0), np.float32(0.875), ((1.0, 2.0), (3.0, 4.0), (5.0, 6.0), (7.0, 8.0)))
    reading = TextReading("กข 12", 0.9, [0.9, 0.8], [Candidate("กข 12", 0.9)], "กข12", True, "car")
    crops = [np.arange(64 * 192 * 3, dtype=np.uint8).reshape(64, 192, 3), np.zeros((5, 7, 3), np.uint8)]
    doc = {"single": True, "items": [{"detections": payload.to_json([det]), "readings": payload.to_json([reading])}]}
    back, arrays = payload.unpack(payload.pack(doc, crops))
    assert all(np.array_equal(a, b) for a, b in zip(arrays, crops, strict=True))
    assert payload.detection(back["items"][0]["detections"][0]) == Detection(
        (1.5, 2.0, 30.25, 14.0), float(np.float32(0.875)), ((1.0, 2.0), (3.0, 4.0), (5.0, 6.0), (7.0, 8.0))
    )
    assert payload.reading(back["items"][0]["readings"][0]) == reading


def test_payload_rejects_foreign_bytes():
    with pytest.raises(payload.PayloadError):
        payload.unpack(b"\xff\xd8\xff\xe0 a jpeg, not a payload")


def test_reply_shapes():
    err = ImageError("not_an_image", "nope", 400)
    ok = {"plates": []}
    assert shape_reply(Work(single=True), [ok]).body == ok
    assert shape_reply(Work(single=True), [err]).status == 400
    mixed = shape_reply(Work(single=False), [ok, err])
    assert mixed.status == 200 and mixed.body[1] == err.to_dict()
    assert shape_reply(Work(single=False), [err, err]).status == 400
    big = ImageError("too_many_images", "17", 413)
    assert shape_reply(Work(single=True, error=big), []).status == 413


def test_content_type_from_parameter_or_request_header():
    ctx = FakeContext([{"body": {"content-type": "image/png"}}, {"Content-Type": "application/json"}, {}])
    assert [request_content_type(ctx, i) for i in range(3)] == ["image/png", "application/json", None]


def test_pipeline_handler_answers_each_request_with_its_own_status(monkeypatch):
    class FakePipeline:
        def run(self, data: bytes) -> PipelineResult:
            if data.startswith(b"bad"):
                raise ImageError("not_an_image", "bad bytes", 400)
            return PipelineResult(plates=[], image={"width": 1, "height": 1})

    handler = PipelineStage()
    handler.pipeline = FakePipeline()  # type: ignore[assignment]
    handler.initialized = True
    ctx = FakeContext([{"body": {"content-type": "image/jpeg"}}] * 3)
    out = handler.handle([{"body": b"\xff\xd8good"}, {"body": b"bad" + bytes(300)}, {"body": b""}], ctx)
    assert len(out) == 3
    assert json.loads(out[0])["plates"] == [] and 0 not in ctx.status
    assert json.loads(out[1])["error"]["code"] == "not_an_image" and ctx.status[1][0] == 400
    assert json.loads(out[2])["error"]["code"] == "empty" and ctx.status[2] == (400, "Bad Request")
    assert set(ctx.content_type.values()) == {"application/json"}


def test_detector_node_crop_size_covers_both_models(tmp_path):
    """Crops leave the detector node at the shared plate input, or at the larger side of each when the
    recogniser and classifier inputs differ (a 96-px recogniser must not get 64-px crops)."""
    import shutil

    import yaml

    from thaiplate.runtime import default_models_dir
    from thaiplate.serving.stages import shared_input_size

    for name in ("recognizer", "classifier"):
        shutil.copy(default_models_dir() / f"{name}.yaml", tmp_path / f"{name}.yaml")
    rec = yaml.safe_load((tmp_path / "recognizer.yaml").read_text(encoding="utf-8"))
    cls = yaml.safe_load((tmp_path / "classifier.yaml").read_text(encoding="utf-8"))
    assert shared_input_size(tmp_path) == (rec["input"]["height"], rec["input"]["width"])
    rec["input"]["height"], cls["input"]["height"] = 96, 64
    (tmp_path / "recognizer.yaml").write_text(yaml.safe_dump(rec, allow_unicode=True), encoding="utf-8")
    (tmp_path / "classifier.yaml").write_text(yaml.safe_dump(cls, allow_unicode=True), encoding="utf-8")
    assert shared_input_size(tmp_path) == (96, max(rec["input"]["width"], cls["input"]["width"]))
    (tmp_path / "classifier.yaml").unlink()
    assert shared_input_size(tmp_path) is None


def test_archive_accepts_relative_paths(tmp_path, monkeypatch):
    """`thaiplate archive --models-dir runs/x/models --out store` (docs/VERSIONING.md): the archivers run in a
    scratch cwd, so relative paths used to name files that were not there (a regression test)."""
    import shutil
    import zipfile

    import yaml
    from conftest import ROOT, models_dir

    from thaiplate.serving.archive import build_all, tool

    try:
        tool("torch-model-archiver")
    except Exception as e:
        pytest.skip(str(e))
    (tmp_path / "m").mkdir()
    spec = models_dir() / "classifier.yaml"
    for f in ("classifier.yaml", str(yaml.safe_load(spec.read_text(encoding="utf-8"))["file"])):
        shutil.copy(models_dir() / f, tmp_path / "m" / f)
    monkeypatch.chdir(tmp_path)
    (mar,) = build_all(Path("m"), Path("store"), root=ROOT, only=("classifier",))
    assert mar == tmp_path / "store" / "classifier.mar"
    with zipfile.ZipFile(mar) as z:
        assert "classifier.yaml" in z.namelist()


def test_served_modes_and_their_endpoints():
    from thaiplate.bench.entrypoint import endpoints_for
    from thaiplate.serving.server import MODES, served_modes

    assert [served_modes(m) for m in MODES] == [("dag",), ("pipeline",), ("dag", "pipeline")]
    assert endpoints_for("both") == {"dag": "/wfpredict/thaiplate", "pipeline": "/predictions/pipeline"}
