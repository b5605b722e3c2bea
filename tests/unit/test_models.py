"""LOB predictor architectures: reference parameter counts, shapes, and the fixed reference faults."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from marketlab.core.errors import DataError, SpecError
from marketlab.models.binctabl import BiNCTABL, BiNCTABLConfig
from marketlab.models.checkpoint import load_model, save_model
from marketlab.models.deeplob import DeepLOB, DeepLOBConfig
from marketlab.models.layers import BiN, count_parameters
from marketlab.models.mlplob import MLPLOB, MLPLOBConfig
from marketlab.models.tlob import TLOB, TLOBConfig
from marketlab.models.zoo import build_model


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (lambda: TLOB(TLOBConfig.fi2010()), 2_656_724),
        (lambda: TLOB(TLOBConfig.lobster()), 1_173_693),
        (lambda: TLOB(TLOBConfig(num_features=40, hidden_dim=40)), 1_135_974),
        (lambda: MLPLOB(MLPLOBConfig.fi2010()), 6_327_908),
        (lambda: MLPLOB(MLPLOBConfig.lobster()), 3_074_003),
        (lambda: DeepLOB(), 143_907),
        (lambda: BiNCTABL(), 11_446),
        (lambda: BiNCTABL(BiNCTABLConfig(num_features=144)), 17_894),
    ],
)
def test_reference_parameter_counts(model, expected: int) -> None:
    assert count_parameters(model()) == expected


TINY = {
    "tlob": ({"num_features": 40, "hidden_dim": 40, "seq_size": 16, "num_layers": 2}, 16, 40),
    "mlplob": ({"num_features": 40, "hidden_dim": 40, "seq_size": 16, "num_layers": 2}, 16, 40),
    "deeplob": ({"seq_size": 24}, 24, 40),
    "binctabl": ({}, 10, 40),
}


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("batch", [1, 3])
def test_forward_shapes_and_logits(name: str, batch: int) -> None:
    cfg, t, f = TINY[name]
    torch.manual_seed(0)
    m = build_model(name, cfg).eval()
    out = m(torch.randn(batch, t, f))
    assert out.shape == (batch, 3)
    assert torch.isfinite(out).all()
    # logits, not probabilities (the DeepLOB / BiN-CTABL references end in a softmax before cross-entropy)
    assert not torch.allclose(out.sum(1), torch.ones(batch), atol=1e-3) or (out < 0).any()


def test_deeplob_has_no_softmax_layer() -> None:
    assert not any(isinstance(mod, torch.nn.Softmax) for mod in DeepLOB().modules())


def test_bin_negative_mix_weight_reset_on_cpu_keeps_parameter_in_optimizer() -> None:
    # The loss must depend on y1: ``out.sum()`` does not (a z-score sums to zero over its axis, and B1 = 0),
    # so its gradient is float round-off and the old assertion "y1 moved" held only by luck. A fixed weighting
    # ``w`` gives dL/dy1 = sum(w * feature_branch), computed here independently of BiN.forward.
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    b = BiN(4, 6)
    opt = torch.optim.SGD(b.parameters(), lr=0.1)
    with torch.no_grad():
        b.y1.fill_(-0.3)
    ident = id(b.y1)
    x = torch.randn(2, 4, 6, generator=g)
    w = torch.randn(2, 4, 6, generator=g)
    out = b(x)
    assert b.y1.item() == pytest.approx(0.01)
    assert id(b.y1) == ident  # same tensor: the optimizer still updates it
    (w * out).sum().backward()
    z = (x - x.mean(dim=1, keepdim=True)) / x.std(dim=1, keepdim=True)  # feature-branch z-score over F
    feat = b.l1.detach().transpose(0, 1) * z + b.B1.detach().transpose(0, 1)
    expected_grad = float((w * feat).sum())
    assert abs(expected_grad) > 0.1  # a real gradient, not round-off
    assert b.y1.grad is not None
    assert b.y1.grad.item() == pytest.approx(expected_grad, rel=1e-5)
    opt.step()
    assert b.y1.item() == pytest.approx(0.01 - 0.1 * expected_grad, rel=1e-5)


def test_bin_constant_snapshot_is_finite() -> None:
    x = torch.ones(2, 5, 8)  # zero std along both axes
    assert torch.isfinite(BiN(5, 8)(x)).all()


@pytest.mark.parametrize("cls", [TLOB, MLPLOB])
def test_event_type_embedding_is_trained(cls) -> None:
    cfg_cls = cls.config_class
    kw = {"num_features": 46, "hidden_dim": 46, "seq_size": 16, "num_layers": 1 if cls is TLOB else 2,
          "event_type_index": 41}
    torch.manual_seed(0)
    m = cls(cfg_cls(**kw))
    x = torch.randn(4, 16, 46)
    x[:, :, 41] = torch.randint(0, 3, (4, 16)).float()
    m(x).sum().backward()
    g = m.order_type_embedder.weight.grad
    assert g is not None and g.abs().sum() > 0


def test_binctabl_tabl_lambda_stays_in_unit_interval() -> None:
    m = BiNCTABL()
    with torch.no_grad():
        m.TABL.l.fill_(1.7)
    m(torch.randn(2, 10, 40))
    assert 0.0 <= m.TABL.l.item() <= 1.0


def test_binctabl_max_norm_constraint() -> None:
    m = BiNCTABL().train()
    with torch.no_grad():
        m.BL.W1.mul_(100.0)
    m(torch.randn(2, 10, 40))
    assert torch.linalg.matrix_norm(m.BL.W1).item() <= 10.0 + 1e-4


def test_build_model_rejects_unknown_key_and_bad_values() -> None:
    with pytest.raises(SpecError, match="model.hiden_dim"):
        build_model("tlob", {"hiden_dim": 3})
    with pytest.raises(SpecError, match="unknown predictor id .transformer.*predictor/tlob-v1"):
        build_model("transformer")
    with pytest.raises(SpecError, match="40 LOB features"):
        build_model("deeplob", {"num_features": 144})
    with pytest.raises(ValueError):
        DeepLOBConfig(seq_size=10)


@pytest.mark.parametrize("name", sorted(TINY))
def test_checkpoint_roundtrip_safetensors(tmp_path, name: str) -> None:
    cfg, t, f = TINY[name]
    torch.manual_seed(1)
    m = build_model(name, cfg).eval()
    save_model(tmp_path, m, name, {"note": "x"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    m2, meta = load_model(tmp_path)
    x = torch.randn(2, t, f)
    torch.testing.assert_close(m(x), m2.eval()(x))
    assert meta["model"] == name and meta["note"] == "x"


def test_load_model_names_bad_config(tmp_path) -> None:
    (tmp_path / "config.json").write_text('{"model": "tlob", "config": {"depth": 3}}')
    with pytest.raises(SpecError, match="depth"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(DataError, match=r"config\.json.*invalid JSON"):
        load_model(tmp_path)


def test_sinusoidal_positions_are_a_buffer_not_parameters() -> None:
    m = TLOB(TLOBConfig(num_features=8, hidden_dim=8, seq_size=8, num_layers=1))
    assert "pos" not in dict(m.named_parameters())
    assert np.isclose(m.pos[0, 1].item(), 1.0)  # cos(0)
