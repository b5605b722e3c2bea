"""Frozen configs of the agent-based market, loaded from TOML specs in ``simulators/*.toml``.

Units: times in seconds (floats) unless the name ends in ``_ns``; prices in integer ticks of the
instrument; sizes in integer lots. Rates are Poisson intensities per second. Unknown keys and wrong
types (and non-finite numbers such as ``limit_rate = inf``) are rejected by the :class:`~marketlab.core.config.Spec`
loader with the file and dotted key named; :meth:`SimSpec.validate` adds range checks with the same one-line
:class:`SpecError`, including upper bounds that keep a day finite (a rate of 1e12 per second would never
finish): rates at most :data:`MAX_RATE` per second, at most :data:`MAX_AGENTS` agents of a kind, sessions of
at most a week, time grids of at most :data:`MAX_GRID` points.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from marketlab.core.config import Identifier, Spec
from marketlab.core.errors import SpecError

MAX_RATE = 10_000.0  # messages (or wake-ups) per second and per agent: far above any real venue's per-trader rate
MAX_AGENTS = 10_000  # agents of one kind
MAX_DURATION_S = 7 * 86_400.0  # one week of simulated time
MAX_GRID = 10_000_000  # points of the fundamental/activity time grids (duration_s / step_s)
MIN_INTERVAL_S = 1e-3  # shortest periodic wake-up interval (market maker, POV trader)
MAX_LOTS = 10**12  # largest size in lots anywhere in a spec
MAX_LATENCY_US = 60e6  # one minute

@dataclass(frozen=True)
class MarketConfig:
    """The session and instrument: ``start`` is an ISO UTC time, ``duration_s`` the session length."""

    dataset: Identifier = "abm_default"
    symbol: Identifier = "ABM"
    tick_size: float = 0.01  # currency per tick
    lot_size: float = 1.0  # units per lot
    currency: str = "USD"
    start: str = "2024-01-02T14:30:00"  # 09:30 New York
    duration_s: float = 23_400.0  # 6.5 hours
    book_levels: int = 10  # depth L of the stored snapshots
    initial_price: int = 10_000  # ticks ($100.00 at a 1-cent tick)


@dataclass(frozen=True)
class FundamentalConfig:
    """Mean-reverting Ornstein-Uhlenbeck fundamental with Poisson jumps ("megashocks", ABIDES RMSC style).

    dr = kappa (r_bar - r) dt + sigma a(t)^(activity_exponent/2) dW + J dN, with N Poisson(jump_rate) and
    |J| ~ N(jump_mean, jump_std) with a random sign; r_bar defaults to the initial price. Simulated once on
    a ``step_s`` grid.

    ``activity_exponent`` ties the news flow to the trading activity a(t) of :class:`ActivityConfig`
    (Clark's 1973 mixture-of-distributions hypothesis: one latent information-arrival rate drives both
    the variance of price changes and the number of trades). With exponent 1 the variance per second is
    proportional to a(t): minute returns become a variance mixture, so they are fat-tailed (excess
    kurtosis 3(E[a^2]-1) for Gaussian shocks), their magnitude clusters with a(t), and busy minutes are
    volatile minutes (the volume-volatility correlation). 0 gives a constant-volatility fundamental.
    Large rare jumps were the old source of fat tails and gave a kurtosis near 12 and a Hill index
    below 2 against 2.5-3.4 and about 3.2 on the real days; small jumps are kept for news events.
    """

    kappa: float = 1e-4  # 1/s
    sigma: float = 0.3  # ticks / sqrt(s)
    jump_rate: float = 1.0 / 3600.0  # per s
    jump_mean: float = 40.0  # ticks
    jump_std: float = 15.0  # ticks
    step_s: float = 1.0
    activity_exponent: float = 0.0


@dataclass(frozen=True)
class ActivityConfig:
    """Stochastic trading activity: the crowd's and momentum traders' rates are multiplied by
    a(t) = exp(x_t - sigma^2/2), x an OU process with correlation time ``tau_s`` and stationary std
    ``sigma`` (E[a] = 1). Persistent busy and quiet spells give volatility clustering and fat-tailed
    minute returns; ``sigma = 0`` switches it off. The value traders' wake rates and (through
    ``fundamental.activity_exponent``) the fundamental's variance follow the same a(t).
    """

    tau_s: float = 900.0
    sigma: float = 0.6
    step_s: float = 1.0


@dataclass(frozen=True)
class LatencyConfig:
    """One-way agent <-> exchange latency: ``base_us`` plus a lognormal jitter with median ``jitter_median_us``.

    Messages of one agent keep their order (FIFO per agent, as on one TCP session).
    """

    base_us: float = 50.0
    jitter_median_us: float = 20.0
    jitter_sigma: float = 1.0


@dataclass(frozen=True)
class NoiseConfig:
    """Zero-intelligence crowd (Farmer-Daniels / Cont-Stoikov-Talreja style).

    Limit orders arrive at ``limit_rate``: with probability ``inside_prob`` one tick inside the spread
    (when the spread is wider than a tick), otherwise ``d`` ticks behind the same-side best, d in
    0..max_depth-1 with P(d) proportional to (d+1)**(-depth_alpha). Market orders arrive at
    ``market_rate``; every resting crowd order is cancelled at ``cancel_rate`` per second and, with
    probability ``replace_prob``, at once replaced by a new limit order on the same side (order
    repositioning: the cancel-replace bursts of real feeds). Sizes are lognormal (median
    ``size_median`` lots), rounded to ``size_round`` lots with probability ``round_prob``; market orders
    are scaled by ``market_size_factor`` (aggressive orders are smaller than resting ones on real
    feeds: a 100-lot market order that sweeps many 100-lot orders prints a burst of same-nanosecond
    executions that LOBSTER days do not show).

    Self-excitation (``excite_ratio`` n, ``excite_delay_s``): every crowd message triggers, with
    probability n, one more message of the same kind an Exp(``excite_delay_s``) delay later (a branching
    process with at most one offspring per event: a geometric cascade with mean size 1/(1-n)). This is
    the Hawkes-process picture of order flow (Bacry, Mastromatteo & Muzy 2015): most messages are
    reactions to recent messages, so arrivals come in bursts (inter-arrival CV well above 1, most gaps
    far below the mean) while the baseline rates still follow a(t). The rates above are the *total*
    mean rates: the spontaneous (immigrant) rates are scaled by (1-n) so the mean message rate does not
    depend on n.
    """

    count: int = 1
    limit_rate: float = 5.5
    market_rate: float = 0.5
    cancel_rate: float = 0.2
    replace_prob: float = 0.5
    inside_prob: float = 0.15
    max_depth: int = 20
    depth_alpha: float = 0.3
    size_median: float = 100.0
    size_sigma: float = 0.7
    size_round: int = 100
    round_prob: float = 0.5
    max_size: int = 5_000
    market_size_factor: float = 1.0
    excite_ratio: float = 0.0
    excite_delay_s: float = 0.05


@dataclass(frozen=True)
class ValueConfig:
    """Value traders around the fundamental (ABIDES ValueAgent): each wakes at ``wake_rate``.

    On waking: cancel its resting order, observe the fundamental plus N(0, obs_noise) noise, shrink the
    estimate toward the mean (weight ``prior_weight`` on r_bar), then buy if the estimate is above the
    mid (sell if below) at min(estimate, ask) (max(estimate, bid)): marketable when the estimate is
    beyond the opposite best, else resting at the estimate; with probability ``aggressive_prob`` it
    crosses the spread regardless. Wake rates are multiplied by the activity a(t) (informed traders
    trade when information arrives, the same a(t) that scales the fundamental's variance).

    A resting (non-marketable) order is non-displayed with probability ``hidden_prob``: informed
    traders hide their intentions, and inside a wide spread such an order is what an incoming market
    order meets first (a type-5 hidden execution, see :mod:`marketlab.simulators.exchange`).
    """

    count: int = 50
    wake_rate: float = 1.0 / 30.0
    obs_noise: float = 5.0  # ticks
    prior_weight: float = 0.0
    aggressive_prob: float = 0.05
    size_min: int = 20
    size_max: int = 100
    hidden_prob: float = 0.0


@dataclass(frozen=True)
class MomentumConfig:
    """Trend followers (ABIDES MomentumAgent): compare a short and a long mean of the mids they saw."""

    count: int = 25
    wake_rate: float = 1.0 / 20.0
    short_window: int = 20
    long_window: int = 50
    threshold_ticks: float = 3.0
    size_min: int = 1
    size_max: int = 50


@dataclass(frozen=True)
class MarketMakerConfig:
    """A ladder market maker: every ``interval_s`` it cancels its quotes and posts ``levels`` per side.

    Quotes start ``half_spread`` ticks from the mid and step ``level_spacing`` ticks outwards; the centre
    is skewed by ``-skew_ticks * inventory / max_inventory`` and sizes shrink on the side that would grow
    the inventory beyond ``max_inventory``. Quotes whose price is still wanted are kept (a real market
    maker does not give up queue priority to re-post the same price), so a requote only costs messages
    where the ladder moved.
    """

    count: int = 1
    interval_s: float = 5.0
    levels: int = 5
    half_spread: int = 2
    level_spacing: int = 1
    size: int = 100
    max_inventory: int = 20_000
    skew_ticks: float = 3.0


@dataclass(frozen=True)
class POVConfig:
    """Experimental participation-of-volume buyer/seller (market-impact experiments).

    From ``start_s`` to ``end_s`` after the open it wakes every ``interval_s`` and trades ``pov`` times the
    market volume (other agents') since its previous wake with a market order, up to ``quantity`` lots.
    """

    enabled: bool = False
    side: int = 1
    pov: float = 0.1
    start_s: float = 900.0
    end_s: float = 3_600.0
    interval_s: float = 60.0
    quantity: int = 100_000


@dataclass(frozen=True)
class OutputConfig:
    """What is written: the snapshot depth is ``market.book_levels``; ``write_trades`` adds the trades kind."""

    write_trades: bool = True


@dataclass(frozen=True)
class SimSpec(Spec):
    """A whole simulated day: ``seed`` is the master seed every RNG stream is derived from.

    Load with ``SimSpec.from_toml(path)`` (or ``from_dict``); both validate (:meth:`validate`).
    """

    seed: int = 0
    market: MarketConfig = field(default_factory=MarketConfig)
    fundamental: FundamentalConfig = field(default_factory=FundamentalConfig)
    activity: ActivityConfig = field(default_factory=ActivityConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    value: ValueConfig = field(default_factory=ValueConfig)
    momentum: MomentumConfig = field(default_factory=MomentumConfig)
    market_maker: MarketMakerConfig = field(default_factory=MarketMakerConfig)
    pov: POVConfig = field(default_factory=POVConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def validate(self, path: str | Path | None = None) -> None:
        """Range checks: counts >= 0, rates/intervals/sizes positive where needed, windows ordered."""

        def need(ok: bool, key: str, problem: str) -> None:
            if not ok:
                raise SpecError(path, key, problem)

        need(0 <= self.seed < 2**63, "seed", f"must be in [0, 2**63), got {self.seed}")
        m = self.market
        need(m.duration_s > 0, "market.duration_s", f"must be > 0, got {m.duration_s}")
        need(m.duration_s <= MAX_DURATION_S, "market.duration_s", f"must be <= {MAX_DURATION_S:g} s, got {m.duration_s}")
        need(m.initial_price <= 2**40, "market.initial_price", f"must be <= 2**40 ticks, got {m.initial_price}")
        need(m.tick_size > 0, "market.tick_size", f"must be > 0, got {m.tick_size}")
        need(m.lot_size > 0, "market.lot_size", f"must be > 0, got {m.lot_size}")
        need(1 <= m.book_levels <= 50, "market.book_levels", f"must be in 1..50, got {m.book_levels}")
        need(m.initial_price > 100, "market.initial_price", f"must be > 100 ticks, got {m.initial_price}")
        try:
            from datetime import datetime

            datetime.fromisoformat(m.start)
        except ValueError:
            need(False, "market.start", f"not an ISO date-time: {m.start!r}")
        need(self.fundamental.kappa >= 0, "fundamental.kappa", "must be >= 0")
        need(self.fundamental.sigma >= 0, "fundamental.sigma", "must be >= 0")
        need(self.fundamental.step_s > 0, "fundamental.step_s", "must be > 0")
        for key, step in (("fundamental.step_s", self.fundamental.step_s), ("activity.step_s", self.activity.step_s)):
            if step > 0:
                need(m.duration_s / step <= MAX_GRID, key, f"gives more than {MAX_GRID:,} grid points over the session")
        need(self.fundamental.jump_rate >= 0, "fundamental.jump_rate", "must be >= 0")
        need(self.activity.tau_s > 0, "activity.tau_s", "must be > 0")
        need(self.activity.sigma >= 0, "activity.sigma", "must be >= 0")
        need(self.activity.step_s > 0, "activity.step_s", "must be > 0")
        need(self.latency.base_us >= 0 and self.latency.jitter_median_us >= 0, "latency", "latencies must be >= 0")
        for f in fields(self.latency):
            v = getattr(self.latency, f.name)
            if f.name.endswith("_us"):
                need(v <= MAX_LATENCY_US, f"latency.{f.name}", f"must be <= {MAX_LATENCY_US:g} us, got {v}")
        need(0 <= self.latency.jitter_sigma <= 10, "latency.jitter_sigma", f"must be in [0, 10], got {self.latency.jitter_sigma}")
        for section in ("noise", "value", "momentum", "market_maker"):
            cfg = getattr(self, section)
            need(cfg.count >= 0, f"{section}.count", f"must be >= 0, got {cfg.count}")
            need(cfg.count <= MAX_AGENTS, f"{section}.count", f"must be <= {MAX_AGENTS}, got {cfg.count}")
            for f in fields(cfg):
                v = getattr(cfg, f.name)
                key = f"{section}.{f.name}"
                if f.name.endswith(("_rate", "interval_s")) or f.name in ("size", "size_median"):
                    need(v > 0, key, f"must be > 0, got {v}")
                if f.name.endswith("_rate"):
                    need(v <= MAX_RATE, key, f"must be <= {MAX_RATE:g} per second, got {v}")
                if f.name.endswith("interval_s"):
                    need(v >= MIN_INTERVAL_S, key, f"must be >= {MIN_INTERVAL_S:g} s, got {v}")
                if f.name.startswith(("size", "max_size", "max_inventory")) or f.name == "size":
                    need(v <= MAX_LOTS, key, f"must be <= {MAX_LOTS:g} lots, got {v}")
        n = self.noise
        need(1 <= n.max_depth <= 100_000, "noise.max_depth", f"must be in 1..100000, got {n.max_depth}")
        need(0 <= n.size_sigma <= 5, "noise.size_sigma", f"must be in [0, 5], got {n.size_sigma}")
        need(0 <= n.round_prob <= 1, "noise.round_prob", "must be in [0, 1]")
        need(0 <= n.replace_prob <= 1, "noise.replace_prob", "must be in [0, 1]")
        need(0 <= n.inside_prob <= 1, "noise.inside_prob", "must be in [0, 1]")
        need(n.size_round >= 1 and n.max_size >= 1, "noise.size_round", "sizes must be >= 1")
        need(n.market_size_factor > 0, "noise.market_size_factor", f"must be > 0, got {n.market_size_factor}")
        need(0 <= n.excite_ratio < 1, "noise.excite_ratio", f"must be in [0, 1), got {n.excite_ratio}")
        need(n.excite_delay_s > 0, "noise.excite_delay_s", f"must be > 0, got {n.excite_delay_s}")
        need(self.fundamental.activity_exponent >= 0, "fundamental.activity_exponent", "must be >= 0")
        v = self.value
        need(1 <= v.size_min <= v.size_max, "value.size_min", "need 1 <= size_min <= size_max")
        need(0 <= v.aggressive_prob <= 1, "value.aggressive_prob", "must be in [0, 1]")
        need(0 <= v.prior_weight <= 1, "value.prior_weight", "must be in [0, 1]")
        need(0 <= v.hidden_prob <= 1, "value.hidden_prob", "must be in [0, 1]")
        mo = self.momentum
        need(1 <= mo.short_window < mo.long_window, "momentum.short_window", "need 1 <= short_window < long_window")
        need(mo.long_window <= 1_000_000, "momentum.long_window", f"must be <= 1000000, got {mo.long_window}")
        need(1 <= mo.size_min <= mo.size_max, "momentum.size_min", "need 1 <= size_min <= size_max")
        mm = self.market_maker
        need(mm.levels >= 1 and mm.half_spread >= 1 and mm.level_spacing >= 1, "market_maker.levels",
             "levels, half_spread and level_spacing must be >= 1")
        need(mm.max_inventory > 0, "market_maker.max_inventory", "must be > 0")
        need(mm.levels <= 1_000, "market_maker.levels", f"must be <= 1000, got {mm.levels}")
        p = self.pov
        need(p.side in (1, -1), "pov.side", f"must be 1 (buy) or -1 (sell), got {p.side}")
        need(0 < p.pov <= 1, "pov.pov", f"must be in (0, 1], got {p.pov}")
        need(0 <= p.start_s < p.end_s, "pov.start_s", "need 0 <= start_s < end_s")
        need(p.interval_s > 0 and p.quantity > 0, "pov.interval_s", "interval_s and quantity must be > 0")
        need(p.interval_s >= MIN_INTERVAL_S, "pov.interval_s", f"must be >= {MIN_INTERVAL_S:g} s, got {p.interval_s}")
        need(p.quantity <= MAX_LOTS, "pov.quantity", f"must be <= {MAX_LOTS:g} lots, got {p.quantity}")
        need(n.excite_delay_s <= MAX_DURATION_S, "noise.excite_delay_s", f"must be <= {MAX_DURATION_S:g} s")
