"""CRNN / ProvinceNet: output contracts, size budgets, and that they can learn (tiny overfit)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)  # the CI box is shared; intra-op threads thrash under oversubscription

from toy_plates import toy_crop  # noqa: E402

from thaiplate import labels  # noqa: E402
from thaiplate.nets import CRNN, ProvinceNet  # noqa: E402
from thaiplate.nets.crnn import widen_stem_state  # noqa: E402
from thaiplate.nets.slim import slim_state  # noqa: E402
from thaiplate.preprocess import batch_tensor, plate_tensor  # noqa: E402


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_preprocess_contract():
    crop = np.full((40, 130, 3), 255, np.uint8)
    x = plate_tensor(crop)
    assert x.shape == (3, 64, 192) and x.dtype == np.float32
    assert x.max() == pytest.approx(1.0)
    big = np.zeros((300, 900, 3), np.uint8)
    assert plate_tensor(big).min() == pytest.approx(-1.0)
    b = batch_tensor([crop, big])
    assert b.shape == (2, 3, 64, 192)
    assert batch_tensor([]).shape == (0, 3, 64, 192)


@pytest.mark.parametrize("stem", ["strided", "full"])
def test_crnn_shapes_and_budget(stem):
    m = CRNN(stem=stem).eval()
    with torch.no_grad():
        out = m(torch.zeros(2, 3, 64, 192))
    assert out.shape == (2, 96, 1 + len(labels.charset()))
    assert torch.allclose(out.exp().sum(-1), torch.ones(2, 96), atol=1e-5)  # log_softmax
    assert n_params(m) * 4 <= 5_000_000  # <= 5 MB fp32


def test_taller_input_keeps_the_contract_and_exports(tmp_path):
    """A 96-px input merges its 3 feature rows back to 2: same T, same weights, ONNX parity."""
    from thaiplate.train.export import export_onnx

    m = CRNN(stem="full").eval()
    with torch.no_grad():
        out = m(torch.zeros(2, 3, 96, 192))
    assert out.shape == (2, 96, 1 + len(labels.charset()))
    tall = CRNN(stem="full")
    tall.load_state_dict(m.state_dict())  # a 64-px model's weights warm-start a 96-px one as they are
    report = export_onnx(tall, tmp_path / "r96.onnx", "log_probs", height=96, width=192)
    assert report.max_abs_diff <= 1e-4


def test_widened_stem_computes_the_same_function():
    """A strided-stem model's weights, widened, give the same outputs (the warm start of a full stem)."""
    torch.manual_seed(0)
    old = CRNN(stem="strided")
    with torch.no_grad():  # non-trivial BN statistics, as after training
        for mod in old.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
    old.eval()
    new = CRNN(stem="full")
    new.load_state_dict(widen_stem_state(old.state_dict(), noise=0.0))
    new.eval()
    x = torch.rand(3, 3, 64, 192) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(old(x), new(x), atol=1e-4)
    with pytest.raises(ValueError, match="strided-stem"):
        widen_stem_state(new.state_dict())


SLIM = {"hidden": 96, "stem": "full", "widths": (24, 32, 64, 64, 112, 128)}


def randomised_bn(model: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BN statistics and scales, as after training."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
    return model.eval()


def test_slim_to_the_same_widths_is_the_identity():
    torch.manual_seed(0)
    wide = randomised_bn(CRNN(stem="full"))
    copy = CRNN(stem="full").eval()
    copy.load_state_dict(slim_state(wide.state_dict(), copy.state_dict()))
    x = torch.rand(2, 3, 64, 192) * 2 - 1
    with torch.no_grad():
        assert torch.equal(wide(x), copy(x))


def test_slim_drops_dead_channels_without_changing_the_output():
    """Channels whose BN scale and shift are 0 output nothing, GRU units the head never reads and no other unit
    hears carry nothing: pruning exactly those must leave the function as it was (and keep every live one)."""
    torch.manual_seed(1)
    narrow = CRNN(**SLIM).eval()
    wide = randomised_bn(CRNN(stem="full"))
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        convs = [m for m in wide.features if isinstance(m, torch.nn.Sequential)]
        for block, keep in zip(convs[1:], SLIM["widths"], strict=True):
            dead = torch.randperm(block[1].weight.numel(), generator=g)[keep:]
            block[1].weight[dead] = 0
            block[1].bias[dead] = 0
        h = wide.rnn.hidden_size
        for d, suffix in enumerate(("", "_reverse")):
            dead = torch.randperm(h, generator=g)[SLIM["hidden"] :]
            getattr(wide.rnn, f"weight_hh_l0{suffix}")[:, dead] = 0
            wide.head.weight[:, d * h + dead] = 0
    cut = CRNN(**SLIM).eval()
    cut.load_state_dict(slim_state(wide.state_dict(), narrow.state_dict()))
    assert sum(p.numel() for p in cut.parameters()) < 0.55 * n_params(wide)
    x = torch.rand(2, 3, 64, 192) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(wide(x), cut(x), atol=1e-5)


def test_slim_refuses_a_different_layout():
    with pytest.raises(ValueError, match="layout"):
        slim_state(CRNN(stem="full").state_dict(), CRNN(hidden=96, stem="strided", widths=SLIM["widths"]).state_dict())
    with pytest.raises(ValueError, match="6 channel counts"):
        CRNN(widths=(8, 8))


def test_province_net_shapes_and_budget():
    m = ProvinceNet().eval()
    with torch.no_grad():
        out = m(torch.zeros(2, 3, 64, 192))
    assert out.shape == (2, len(labels.provinces()))
    assert n_params(m) <= 2_000_000


def toy_batch(n: int = 4):
    rng = np.random.default_rng(0)
    texts = ["1กข 1234", "ฆฎ 89", "9รถ 2019", "ทฬ 8414"][:n]
    provs = labels.provinces()[:n]
    crops = [toy_crop(t, p.name_th, rng) for t, p in zip(texts, provs, strict=True)]
    return torch.from_numpy(batch_tensor(crops)), texts, torch.arange(n)


def test_crnn_overfits_a_few_samples():
    torch.manual_seed(0)
    x, texts, _ = toy_batch()
    seqs = [labels.encode(t) for t in texts]
    targets = torch.tensor([c for s in seqs for c in s])
    lengths = torch.tensor([len(s) for s in seqs])
    m = CRNN(dropout=0.0)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        lp = m(x)
        loss = torch.nn.functional.ctc_loss(lp.transpose(0, 1), targets, torch.full((len(x),), 96), lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::8]


def test_province_net_overfits_a_few_samples():
    torch.manual_seed(0)
    x, _, y = toy_batch()
    m = ProvinceNet(dropout=0.0)
    opt = torch.optim.AdamW(m.parameters(), lr=2e-3)
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0], losses[::3]


def test_init_state_reads_exported_weights_and_run_checkpoints(tmp_path):
    from thaiplate.train.loop import init_state

    net = CRNN()
    state = net.state_dict()
    torch.save(state, tmp_path / "exported.pt")
    torch.save({"model": state, "metrics": {"plate_exact": 0.5}, "config": {}}, tmp_path / "best.pt")
    for name in ("exported.pt", "best.pt"):
        loaded = init_state(tmp_path / name)
        assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
        CRNN().load_state_dict(loaded)
