"""ONNX export of both nets: contract names, dynamic batch, torch-vs-ORT parity <= 1e-4."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # the CI box is shared; intra-op threads thrash under oversubscription
ort = pytest.importorskip("onnxruntime")

from thaiplate.nets import CRNN, ProvinceNet  # noqa: E402
from thaiplate.train.export import export_onnx, parity  # noqa: E402


@pytest.mark.parametrize(
    ("net", "output", "shape"),
    [(CRNN, "log_probs", (96, 54)), (ProvinceNet, "logits", (78,))],
)
def test_export_parity_and_dynamic_batch(tmp_path, net, output, shape):
    torch.manual_seed(0)
    model = net().eval()
    # non-trivial BatchNorm statistics, so parity also covers the folded running stats
    for mod in model.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
    report = export_onnx(model, tmp_path / "m.onnx", output)
    assert report.max_abs_diff <= 1e-4
    sess = ort.InferenceSession(str(report.path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["image"]
    assert [o.name for o in sess.get_outputs()] == [output]
    for n in (1, 5):
        x = np.random.default_rng(n).uniform(-1, 1, (n, 3, 64, 192)).astype(np.float32)
        assert sess.run(None, {"image": x})[0].shape == (n, *shape)
        assert parity(model, report.path, x) <= 1e-4


def test_onnx_latency_bench_times_models_side_by_side(tmp_path, capsys):
    import json

    from thaiplate.bench import onnx_latency
    from thaiplate.runtime import default_models_dir

    rec, cls = default_models_dir() / "recognizer.onnx", default_models_dir() / "classifier.onnx"
    out = tmp_path / "lat.json"
    assert onnx_latency.main([str(rec), str(cls), "--runs", "3", "--out", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert [r["model"] for r in doc["rows"]] == [str(rec), str(cls)]
    assert doc["rows"][0]["cpu_ratio"] == 1.0 and all(r["cpu_ms"] > 0 and r["mb"] > 0 for r in doc["rows"])
    assert "x first" in capsys.readouterr().out
