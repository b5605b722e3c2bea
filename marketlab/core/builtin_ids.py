"""marketlab's own components: registry id -> ``"marketlab.<module>:<attr>"``, imported on first use.

This is the single table of built-ins (see :mod:`marketlab.core.registry`). Each package that adds a
component adds its line here; the string is only a lazy pointer inside marketlab, never read from a file.
Bump an id's version suffix whenever the component's observable behaviour changes.
"""

from __future__ import annotations

BUILTIN_IDS: dict[str, str] = {
    # gymnasium environments (also registered with gymnasium by marketlab.envs.register)
    "env/Trading-v0": "marketlab.envs.trading:TradingEnv",
    "env/LOBExecution-v0": "marketlab.envs.lob_execution:LOBExecutionEnv",
    "env/MarketMaking-v0": "marketlab.envs.market_making:MarketMakingEnv",
    "env/BatchedTrading-v0": "marketlab.envs.batched:BatchedTradingEnv",
    # LOB trend predictors
    "predictor/tlob-v1": "marketlab.models.tlob:TLOB",
    "predictor/mlplob-v1": "marketlab.models.mlplob:MLPLOB",
    "predictor/deeplob-v1": "marketlab.models.deeplob:DeepLOB",
    "predictor/binctabl-v1": "marketlab.models.binctabl:BiNCTABL",
    # store ingest formats: each is a pure parser ``parse(paths, *, dataset=None, **options)``
    "ingest/lobster": "marketlab.store.ingest.lobster:parse",
    "ingest/fi2010": "marketlab.store.ingest.fi2010:parse",
    "ingest/binance-raw": "marketlab.store.ingest.binance_raw:parse",
    "ingest/ohlcv": "marketlab.store.ingest.ohlcv:parse",
    "ingest/ashare": "marketlab.store.ingest.ashare:parse",
    # whole-day simulators
    "simulator/abm-v1": "marketlab.simulators.abm:Simulation",
}
