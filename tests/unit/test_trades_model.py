"""TRADES denoiser: real attention mixes tokens, the reference einsum does not, parameter counts, shapes."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from marketlab.simulators.trades.model import CPU, PAPER, Block, Core, Denoiser, DenoiserShape, count_parameters

# Measured by the research notes by instantiating the reference module (DeepMarket d5aaed9, default config):
REFERENCE_TRADES_PARAMS = 9_971_464
REFERENCE_UNUSED_FINAL_LN = 2 * 128  # TransformerEncoder.layer_norm: built, never called; we leave it out


def test_core_parameter_count_matches_the_reference_module() -> None:
    assert count_parameters(Core(PAPER)) == REFERENCE_TRADES_PARAMS - REFERENCE_UNUSED_FINAL_LN
    # the reference runs 1 head; the count does not depend on it
    one_head = dataclasses.replace(PAPER, heads=1)
    assert count_parameters(Core(one_head)) == REFERENCE_TRADES_PARAMS - REFERENCE_UNUSED_FINAL_LN
    # the flatten heads alone: 2 * (256*128*128 + 128), as the notes measured
    core = Core(PAPER)
    assert count_parameters(core.fc_noise) + count_parameters(core.fc_var) == 8_388_864


def _block(reference: bool) -> Block:
    torch.manual_seed(0)
    blk = Block(16, 2, 0.0, reference)
    return blk.eval()


@pytest.mark.parametrize("reference", [False, True])
def test_attention_mixing(reference: bool) -> None:
    blk = _block(reference)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 6, 16, generator=g)
    x2 = x.clone()
    x2[0, 4] += torch.randn(16, generator=g)  # perturb token j = 4
    with torch.no_grad():
        out, v = blk.head_outputs(x)  # (1, H, N, d)
        out2, _ = blk.head_outputs(x2)
        full, full2 = blk.attention(x), blk.attention(x2)
    changed = (full2 - full)[0, :4].abs().amax(dim=-1)  # at tokens i != j
    delta = (out2 - out)[0, :, :4]  # per head
    cos = torch.nn.functional.cosine_similarity(delta, v[0, :, :4], dim=-1).abs()
    if reference:
        # Only token i's own value reaches token i: out_i = att_ii * v_i per head. The softmax normaliser
        # sees every key, so perturbing j rescales v_i at i != j, but no content of token j arrives.
        ratio = out[0] / v[0]
        assert torch.allclose(ratio, ratio[..., :1].expand_as(ratio), rtol=1e-4, atol=1e-6)
        assert torch.all(cos > 0.9999)
    else:
        assert torch.all(changed > 1e-3)
        assert torch.all(cos < 0.99)  # content of token j arrived at every token i != j


def test_reference_flag_reproduces_the_reference_einsums() -> None:
    blk = _block(True)
    x = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        q, k, v = (blk._split(f(x)) for f in (blk.to_q, blk.to_k, blk.to_v))
        q = q * (1 / 16**0.5)
        e = torch.einsum("b h l j, b h k i -> b h l k", q, k)  # the reference's formula, literally
        att = torch.nan_to_num(torch.softmax(e, dim=-1))
        ref = torch.einsum("b h l l, b h l j -> b h l j", att, v)
        want = blk.to_out(ref.transpose(1, 2).reshape(2, 5, 16))
        assert torch.allclose(blk.attention(x), want, atol=1e-6)
        # and its scores are the outer product of sums, not q k^T
        assert torch.allclose(e, q.sum(-1)[..., :, None] * k.sum(-1)[..., None, :], atol=1e-5)


def test_denoiser_shapes_for_both_configs_and_sequence_mixing_end_to_end() -> None:
    for shape in (CPU, dataclasses.replace(PAPER, depth=1)):
        m = Denoiser(shape).eval()
        b, w = 2, shape.window
        x = torch.randn(b, 1, 8)
        cond = torch.randn(b, w - 1, 8)
        book = torch.randn(b, w, 4 * shape.levels)
        t = torch.tensor([0, shape.steps - 1])
        eps, v = m(x, t, cond, book)
        assert eps.shape == (b, 1, 8) and v.shape == (b, 1, 8)
    assert CPU.window <= 64 and 2 <= CPU.depth <= 4
    assert (PAPER.window, PAPER.depth, PAPER.width) == (256, 8, 128)


def test_bad_head_count_is_refused() -> None:
    with pytest.raises(ValueError, match="not divisible"):
        Denoiser(DenoiserShape(window=4, depth=1, augment_dim=8, heads=3))


def test_the_paper_training_config_builds_the_paper_model_and_runs_a_forward_pass_on_cpu() -> None:
    """``TradesConfig.paper()`` (what ``marketlab trades train --config`` selects for a GPU) is the same code
    as the CPU config: its architecture is the paper's (256 x 8 x 128, 2 heads, T = 100) and the full-depth
    denoiser runs one forward pass at batch 1 on CPU with finite outputs."""
    from marketlab.simulators.trades.train import TradesConfig

    cfg = TradesConfig.paper()
    assert cfg.shape() == PAPER
    assert (cfg.batch_size, cfg.lr, cfg.lambda_vlb, cfg.ema_decay) == (256, 1e-3, 0.01, 0.999)
    torch.manual_seed(0)
    m = Denoiser(cfg.shape()).eval()
    with torch.no_grad():
        eps, v = m(torch.randn(1, 1, 8), torch.tensor([50]), torch.randn(1, cfg.window - 1, 8),
                   torch.randn(1, cfg.window, 4 * cfg.levels))
    assert eps.shape == v.shape == (1, 1, 8) and torch.isfinite(eps).all() and torch.isfinite(v).all()
