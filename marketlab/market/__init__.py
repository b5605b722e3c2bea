"""The market-data view shared by envs, agents and backtests (layer 4: imports core, lob, store, features).

* :mod:`.data`: :class:`MarketData` (wide (T, N) arrays on one time axis), frame conversion, synthetic bars;
* :mod:`.signals`: stored signals aligned to the time grid, backwards only;
* :mod:`.spec`: the one :class:`DataSpec` and the one :class:`CostSpec`;
* :mod:`.loading`: reading from the store, and :func:`prepare_data`, the explicit ingest step;
* :mod:`.venues`: the replay venue (recorded LOB events through the matching engine).
"""

from marketlab.market.data import MarketData, market_from_frame, market_to_frame, synthetic_market
from marketlab.market.loading import ensure_dataset, load_market, load_market_spec, open_store, prepare_data
from marketlab.market.signals import align_signals, clip_signals
from marketlab.market.spec import CostSpec, DataSpec, IngestSpec

__all__ = [
    "CostSpec",
    "DataSpec",
    "IngestSpec",
    "MarketData",
    "align_signals",
    "clip_signals",
    "ensure_dataset",
    "load_market",
    "load_market_spec",
    "market_from_frame",
    "market_to_frame",
    "open_store",
    "prepare_data",
    "synthetic_market",
]
