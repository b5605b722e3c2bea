"""A batched torch implementation of ``marketlab/Trading-v0``: B episodes stepped at once on one device.

Same data, features, costs, action and reward semantics as :class:`~marketlab.envs.trading.TradingEnv`
(its setup is reused), with the execution arithmetic of :mod:`marketlab.envs.execution` written as
tensor ops over the batch, so it agrees with the single env step for step (tested). Accounting runs in
``dtype`` (float64 by default, which the agreement test needs; float32 is faster on GPUs), observations
are float32. Episodes that end are reset in the same call (SB3 VecEnv convention): the returned
observation is the new episode's first, and ``info["final_value"]`` holds the ended episodes' values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from marketlab.core.device import get_device
from marketlab.core.errors import SpecError
from marketlab.envs.data import MarketData
from marketlab.envs.execution import ABS_TOL, REL_TOL
from marketlab.envs.spec import TradingEnvConfig
from marketlab.envs.trading import TradingEnv

_LOG_FLOOR = float(np.log(1e-12))
WINDOW_MATRIX_BYTES = 512 * 2**20


def _is_close(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """vectorbt's is_close for finite tensors (cash, positions and prices here are always finite;
    a NaN still compares as not close)."""
    return (a - b).abs() <= torch.clamp(REL_TOL * torch.maximum(a.abs(), b.abs()), min=ABS_TOL)


def _near_zero(a: torch.Tensor) -> torch.Tensor:
    """is_close(a, 0): with rel_tol < 1 this is exactly |a| <= abs_tol."""
    return a.abs() <= ABS_TOL


def _add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a + b snapped to 0 when they cancel within tolerance (vectorbt's add_nb)."""
    s = a + b
    opposite = torch.sign(a) != torch.sign(b)
    zero = torch.where(opposite, _is_close(a.abs(), b.abs()), _near_zero(s))
    return torch.where(zero, 0.0, s)


def order_t(
    cash: torch.Tensor, pos: torch.Tensor, delta: torch.Tensor, price: torch.Tensor, fees: float, slippage: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batched :func:`marketlab.envs.execution.order_nb`: all tensors (B,); returns (cash, pos, filled, fees)."""
    zero = torch.zeros_like(cash)
    cash = torch.where(_near_zero(cash), 0.0, cash)
    pos = torch.where(_near_zero(pos), 0.0, pos)
    # buy branch
    adj_b = price * (1.0 + slippage)
    req = delta * adj_b
    req_fees = req * fees
    total = req + req_fees
    full = _is_close(total, cash) | (total < cash)
    max_req = cash / (1.0 + fees)
    size_b = torch.where(full, delta, max_req / adj_b)
    fee_b = torch.where(full, req_fees, cash - max_req)
    spent = torch.where(full, total, cash)
    ok_b = (delta > 0) & (cash != 0) & ~_near_zero(delta) & (full | (max_req > 0))
    # sell branch
    size_s = -delta
    acq = size_s * (price * (1.0 - slippage))
    fee_s = acq * fees
    final = _add(acq, -fee_s)
    ok_s = (delta <= 0) & (size_s != 0) & ~_near_zero(size_s) & (final >= 0)
    new_cash = torch.where(ok_b, _add(cash, -spent), torch.where(ok_s, cash + final, cash))
    new_pos = torch.where(ok_b, _add(pos, size_b), torch.where(ok_s, _add(pos, -size_s), pos))
    filled = torch.where(ok_b, size_b, torch.where(ok_s, -size_s, zero))
    paid = torch.where(ok_b, fee_b, torch.where(ok_s, fee_s, zero))
    return new_cash, new_pos, filled, paid


class BatchedTradingEnv:
    """``num_envs`` Trading-v0 episodes as tensors on ``device`` (``"auto"`` = CUDA when present).

    ``reset(seed=, starts=)`` -> obs (B, D) float32; ``step(actions)`` with actions (B,) long
    (discrete, one asset), (B, N) long (discrete, many) or (B, N) float (weights) ->
    (obs (B, D), reward (B,), terminated (B,) bool, truncated (B,) bool, info dict of tensors).
    """

    def __init__(
        self,
        config: TradingEnvConfig | dict[str, Any] | None = None,
        *,
        market: MarketData | None = None,
        store: Any = None,
        num_envs: int = 1024,
        device: str = "auto",
        dtype: torch.dtype = torch.float64,
        seed: int = 0,
    ) -> None:
        proto = TradingEnv(config, market=market, store=store)
        cfg = proto.config
        for key, kind, allowed in (
            ("env.observation.kind", cfg.observation.kind, ("window",)),
            ("env.action.kind", cfg.action.kind, ("discrete", "weights")),
            ("env.reward.kind", cfg.reward.kind, ("pnl", "log_return", "diff_sharpe")),
        ):
            if kind not in allowed:
                raise SpecError(None, key, f"the batched env supports {list(allowed)}, got {kind!r}")
        self.config = cfg
        self.proto = proto
        self.num_envs = int(num_envs)
        self.device = get_device(device)
        self.dtype = dtype
        dev, b = self.device, self.num_envs
        self.close = torch.as_tensor(proto.market.close, dtype=dtype, device=dev)
        self.n_assets = proto.market.n_assets
        self.window = cfg.observation.window
        flat = np.asarray(proto.state_interp.flat)
        n_feat = self.window * flat.shape[1]
        self.n_feat = n_feat
        n_w = self.n_assets if cfg.observation.include_position else 0
        # Observation rows precomputed once: (T, window*K + N) with the weight slots zero, so a step's
        # observation is one row gather (index_select) instead of a (B, window) fancy-index + cat.
        # Falls back to per-step gathering when the matrix would be too large.
        t_rows = flat.shape[0]
        if t_rows * (n_feat + n_w) * 4 <= WINDOW_MATRIX_BYTES:
            win = np.zeros((t_rows, n_feat + n_w), dtype=np.float32)
            view = np.lib.stride_tricks.sliding_window_view(flat, self.window, axis=0)  # (T-W+1, K, W)
            win[self.window - 1 :, :n_feat] = view.transpose(0, 2, 1).reshape(t_rows - self.window + 1, n_feat)
            self.win = torch.as_tensor(win, device=dev)
            self.flat = None
        else:
            self.win = None
            self.flat = torch.as_tensor(flat, device=dev)
        self.include_position = cfg.observation.include_position
        self.bound = proto.state_interp.bound
        self.obs_dim = int(proto.observation_space.shape[0])
        self.fees = float(proto.sim.fees)
        self.slippage = float(proto.sim.slippage)
        self.init_cash = float(proto.sim.init_cash)
        self.t_lo, self.t_hi = proto.t_lo, proto.t_hi
        self.offsets = torch.arange(-self.window + 1, 1, device=dev)
        if cfg.action.kind == "discrete":
            self.levels = torch.as_tensor(np.asarray(cfg.action.levels), dtype=dtype, device=dev)
        self.low = 0.0 if cfg.action.long_only else -1.0
        self.gen = torch.Generator(device="cpu").manual_seed(seed)
        self.cash = torch.full((b,), self.init_cash, dtype=dtype, device=dev)
        self.shares = torch.zeros((b, self.n_assets), dtype=dtype, device=dev)
        self.prev_target = torch.zeros_like(self.shares)
        self.value = self.cash.clone()
        self.t = torch.full((b,), self.t_lo, dtype=torch.long, device=dev)
        self.end = torch.full((b,), self.t_hi, dtype=torch.long, device=dev)
        self.ema_a = torch.zeros((b,), dtype=dtype, device=dev)
        self.ema_b = torch.zeros((b,), dtype=dtype, device=dev)
        self.arange_b = torch.arange(b, device=dev)
        self._zero_idx = torch.zeros((b, 1), dtype=torch.long, device=dev)

    # ------------------------------------------------------------------------------------------------
    def _draw_starts(self, n: int) -> torch.Tensor:
        length = self.config.episode_length
        if not self.config.random_start:
            return torch.full((n,), self.t_lo, dtype=torch.long)
        last = self.t_hi - (length if length else 1)
        return torch.randint(self.t_lo, last + 1, (n,), generator=self.gen)

    def _reset_rows(self, rows: torch.Tensor, starts: torch.Tensor) -> None:
        length = self.config.episode_length
        starts = starts.to(self.device)
        self.t[rows] = starts
        self.end[rows] = torch.clamp(starts + length, max=self.t_hi) if length else self.t_hi
        self.cash[rows] = self.init_cash
        self.shares[rows] = 0.0
        self.prev_target[rows] = 0.0
        self.value[rows] = self.init_cash
        self.ema_a[rows] = 0.0
        self.ema_b[rows] = 0.0

    def reset(self, *, seed: int | None = None, starts: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """Reset every episode; ``starts`` (B,) pins first decision steps, else drawn from the seeded generator."""
        if seed is not None:
            self.gen.manual_seed(seed)
        if starts is None:
            starts = self._draw_starts(self.num_envs)
        starts = torch.as_tensor(np.asarray(starts), dtype=torch.long)
        if ((starts < self.t_lo) | (starts >= self.t_hi)).any():
            raise ValueError(f"starts must lie in [{self.t_lo}, {self.t_hi})")
        self._reset_rows(self.arange_b, starts)
        return self._observe()

    def _weights(self) -> torch.Tensor:
        price = self.close[self.t]
        pos_value = torch.where(self.shares != 0, self.shares * price, torch.zeros_like(price))
        v = self.value[:, None]
        return torch.where(v > 0, pos_value / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(pos_value))

    def _observe(self) -> torch.Tensor:
        if self.win is not None:
            obs = self.win.index_select(0, self.t)
        else:
            idx = self.t[:, None] + self.offsets  # (B, W)
            feats = self.flat[idx].reshape(self.num_envs, -1)
            if not self.include_position:
                return feats
            obs = torch.cat([feats, torch.zeros((self.num_envs, self.n_assets), device=self.device)], dim=1)
        if self.include_position:
            obs[:, self.n_feat :] = torch.clamp(self._weights(), -self.bound, self.bound)
        return obs

    def to_weights(self, actions: torch.Tensor) -> torch.Tensor:
        """Actions -> target weights (B, N), the batched twin of the single env's action interpreter."""
        actions = torch.as_tensor(actions, device=self.device)
        if self.config.action.kind == "discrete":
            a = actions.long().reshape(self.num_envs, -1)
            w = self.levels[a]
            return w if self.n_assets == 1 else w / self.n_assets
        w = torch.clamp(actions.to(self.dtype).reshape(self.num_envs, self.n_assets), self.low, 1.0)
        gross = w.abs().sum(dim=1, keepdim=True)
        lev = self.config.action.max_leverage
        return torch.where(gross > lev, w * (lev / torch.where(gross > 0, gross, torch.ones_like(gross))), w)

    def _portfolio_value(self, price: torch.Tensor) -> torch.Tensor:
        pv = torch.where(self.shares != 0, self.shares * price, torch.zeros_like(price))
        return self.cash + pv.sum(dim=1)

    def _rebalance(self, target: torch.Tensor, trade: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        price = self.close[self.t]  # (B, N)
        value = self._portfolio_value(price)
        trade = trade & (value > 0)
        if self.n_assets > 1:
            approx = target * value[:, None] - self.shares * price
            order = torch.sort(approx, dim=1, stable=True).indices
        else:
            order = self._zero_idx
        fees_paid = torch.zeros_like(value)
        traded = torch.zeros_like(value)
        cash = self.cash
        for k in range(self.n_assets):
            j = order[:, k : k + 1]
            pos = self.shares.gather(1, j).squeeze(1)
            p = price.gather(1, j).squeeze(1)
            tg = target.gather(1, j).squeeze(1)
            pos = torch.where(_near_zero(pos), 0.0, pos)
            delta = tg * value / p - pos
            new_cash, new_pos, filled, fee = order_t(cash, pos, delta, p, self.fees, self.slippage)
            cash = torch.where(trade, new_cash, cash)
            did = trade & (filled != 0)
            self.shares.scatter_(1, j, torch.where(did, new_pos, self.shares.gather(1, j).squeeze(1)).unsqueeze(1))
            fees_paid = fees_paid + torch.where(did, fee, torch.zeros_like(fee))
            fill_px = torch.where(filled > 0, p * (1.0 + self.slippage), p * (1.0 - self.slippage))
            traded = traded + torch.where(did, filled.abs() * fill_px, torch.zeros_like(fee))
        self.cash = cash
        return fees_paid, traded

    def _reward(self, prev: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        rc = self.config.reward
        if rc.kind == "pnl":
            return (value - prev) * (rc.scale / self.init_cash)
        if rc.kind == "log_return":
            ok = (value > 0) & (prev > 0)
            safe = torch.where(ok, value / torch.where(ok, prev, torch.ones_like(prev)), torch.ones_like(prev))
            return rc.scale * torch.where(ok, torch.log(safe), torch.full_like(prev, _LOG_FLOOR))
        r = torch.where(prev > 0, value / torch.where(prev > 0, prev, torch.ones_like(prev)) - 1.0, -torch.ones_like(prev))
        a, b = self.ema_a, self.ema_b
        da = r - a
        db = r * r - b
        var = b - a * a
        pos_var = var > 1e-12
        d = torch.where(pos_var, (b * da - 0.5 * a * db) / torch.where(pos_var, var, torch.ones_like(var)) ** 1.5, torch.zeros_like(var))
        self.ema_a = a + rc.eta * da
        self.ema_b = b + rc.eta * db
        return rc.scale * d

    def step(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        target = self.to_weights(actions)
        if self.config.trade_on_change:
            trade = (target != self.prev_target).any(dim=1)
        else:
            trade = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        fees, traded = self._rebalance(target, trade)
        self.prev_target = torch.where(trade[:, None], target, self.prev_target)
        prev = self.value
        self.t = self.t + 1
        value = self._portfolio_value(self.close[self.t])
        self.value = value
        reward = self._reward(prev, value)
        terminated = (self.t >= self.end) | (value <= 0)
        info = {"value": value.clone(), "fees": fees, "traded": traded, "t": self.t.clone()}
        if bool(terminated.any()):
            rows = terminated.nonzero().squeeze(1)
            info["final_value"] = torch.where(terminated, value, torch.full_like(value, float("nan")))
            self._reset_rows(rows, self._draw_starts(int(rows.numel())))
        obs = self._observe()
        return obs, reward.to(torch.float32), terminated, torch.zeros_like(terminated), info
