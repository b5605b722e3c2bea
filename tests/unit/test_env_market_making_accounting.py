"""MarketMaking-v0 cash / inventory / P&L accounting against a fill sequence computed by hand.

Replay venue, 5 recorded events, warm-up 2, one event per step, quotes at the touch (action 0), 5 lots:

  book after warm-up: ask 10 @101 (order 1), bid 2 @99 (order 2)
  step 1: agent bids 5 @99 (behind order 2) and offers 5 @101 (behind order 1);
          event 3 = a sell of 7 @99 -> order 2 (2 lots), then the agent: bought 5 @99.
          inventory 5, cash -495; bids now empty -> mid = best ask 101; P&L = -495 + 5*101 = 10
  step 2: quotes cancelled; no bid to join; agent offers 5 @101 behind order 1;
          event 4 = a buy of 12 @101 -> order 1 (10 lots), then the agent: sold 2 @101.
          inventory 3, cash -293; the agent's own 3 lots are the ask: mid 101; P&L = 10
  step 3: quotes cancelled; the book is empty, nothing quoted; event 5 = a bid 4 @100 -> mid 100;
          P&L = -293 + 3*100 = 7
  reward = (P&L change - penalty * inventory^2) / quote size, penalty 0.01.
"""

from __future__ import annotations

import numpy as np
import pytest

from marketlab.envs.market_making import MarketMakingEnv

EVENTS = [
    (1, 1, 1, -1, 101, 10),
    (2, 1, 2, 1, 99, 2),
    (3, 1, 3, -1, 99, 7),
    (4, 1, 4, 1, 101, 12),
    (5, 1, 5, 1, 100, 4),
]


def _env() -> MarketMakingEnv:
    ev = np.array(EVENTS, dtype=[(c, np.int64) for c in ("ts", "type", "order_id", "side", "price", "size")])
    cfg = {"venue": "replay-v1", "warmup_events": 2, "step_events": 1, "horizon": 3, "quote_size": 5,
           "inventory_penalty": 0.01, "random_start": False}
    return MarketMakingEnv(cfg, events=ev)


def test_market_making_accounting_matches_hand_computed_fills():
    env = _env()
    _, info = env.reset(seed=0)
    assert info["mid"] == 100.0 and env.cash == 0.0 and env.inventory == 0
    want = [  # (inventory, cash, mid, pnl, reward)
        (5, -495.0, 101.0, 10.0, (10.0 - 0.0 - 0.01 * 25) / 5),
        (3, -293.0, 101.0, 10.0, (10.0 - 10.0 - 0.01 * 9) / 5),
        (3, -293.0, 100.0, 7.0, (7.0 - 10.0 - 0.01 * 9) / 5),
    ]
    for k, (inv, cash, mid, pnl, reward) in enumerate(want):
        _, r, done, _, info = env.step(0)
        assert (info["inventory"], env.cash, info["mid"], info["pnl_ticks"]) == (inv, cash, mid, pnl), f"step {k + 1}"
        assert r == pytest.approx(reward, rel=1e-12)
        assert done == (k == 2)
    assert env.venue.resting() == 0  # the episode's end cancels the quotes
