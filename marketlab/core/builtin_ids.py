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
    "env/MacroHFT-v0": "marketlab.envs.macrohft_env:MinuteTradingEnv",
    # LOB trend predictors
    "predictor/tlob-v1": "marketlab.models.tlob:TLOB",
    "predictor/mlplob-v1": "marketlab.models.mlplob:MLPLOB",
    "predictor/deeplob-v1": "marketlab.models.deeplob:DeepLOB",
    "predictor/binctabl-v1": "marketlab.models.binctabl:BiNCTABL",
    # store ingest formats: each is a pure parser ``parse(paths, *, dataset=None, **options)``
    "ingest/lobster": "marketlab.store.ingest.lobster:iter_batches",  # streams bounded batches
    "ingest/fi2010": "marketlab.store.ingest.fi2010:parse",
    "ingest/binance-raw": "marketlab.store.ingest.binance_raw:iter_batches",  # streams bounded batches
    "ingest/ohlcv": "marketlab.store.ingest.ohlcv:iter_batches",  # streams bounded batches
    "ingest/ashare": "marketlab.store.ingest.ashare:parse",
    "ingest/mbo": "marketlab.store.ingest.mbo:parse",  # generic order-by-order (L3) feeds
    # OHLC price forecasters (ForecasterSpec constants)
    "forecaster/cnn_univ_5-v1": "marketlab.models.forecasters:CNN_UNIV_5",
    "forecaster/cnn_multv_10-v1": "marketlab.models.forecasters:CNN_MULTV_10",
    "forecaster/lstm_univ_10-v1": "marketlab.models.forecasters:LSTM_UNIV_10",
    "forecaster/lstm_ed_10-v1": "marketlab.models.forecasters:LSTM_ED_10",
    "forecaster/cnn_lstm_ed_10-v1": "marketlab.models.forecasters:CNN_LSTM_ED_10",
    "forecaster/naive-v1": "marketlab.models.forecasters:NAIVE",
    # deep BSDE benchmark equations (classes, or factories for the Black-Scholes variants)
    "equation/hjb_lq": "marketlab.pricing.bsde.equations:HJBLQ",
    "equation/allen_cahn": "marketlab.pricing.bsde.equations:AllenCahn",
    "equation/pricing_default_risk": "marketlab.pricing.bsde.equations:PricingDefaultRisk",
    "equation/pricing_diff_rate": "marketlab.pricing.bsde.equations:PricingDiffRate",
    "equation/burgers_type": "marketlab.pricing.bsde.equations:BurgersType",
    "equation/quadratic_gradient": "marketlab.pricing.bsde.equations:QuadraticGradient",
    "equation/reaction_diffusion": "marketlab.pricing.bsde.equations:ReactionDiffusion",
    "equation/bs_call": "marketlab.pricing.bsde.equations:bs_call",
    "equation/bs_put": "marketlab.pricing.bsde.equations:bs_put",
    "equation/bs_forward": "marketlab.pricing.bsde.equations:bs_forward",
    "equation/basket_call": "marketlab.pricing.bsde.equations:basket_call",
    # alpha-expression operators (OpSpec constants; the parser reads them once into tokens.OPERATORS)
    "op/Abs": "marketlab.features.expr.ops:Abs",
    "op/Log": "marketlab.features.expr.ops:Log",
    "op/Sign": "marketlab.features.expr.ops:Sign",
    "op/CSRank": "marketlab.features.expr.ops:CSRank",
    "op/CSZScore": "marketlab.features.expr.ops:CSZScore",
    "op/Add": "marketlab.features.expr.ops:Add",
    "op/Sub": "marketlab.features.expr.ops:Sub",
    "op/Mul": "marketlab.features.expr.ops:Mul",
    "op/Div": "marketlab.features.expr.ops:Div",
    "op/Pow": "marketlab.features.expr.ops:Pow",
    "op/Greater": "marketlab.features.expr.ops:Greater",
    "op/Less": "marketlab.features.expr.ops:Less",
    "op/Ref": "marketlab.features.expr.ops:Ref",
    "op/Delta": "marketlab.features.expr.ops:Delta",
    "op/Mean": "marketlab.features.expr.ops:Mean",
    "op/Sum": "marketlab.features.expr.ops:Sum",
    "op/Std": "marketlab.features.expr.ops:Std",
    "op/Var": "marketlab.features.expr.ops:Var",
    "op/Skew": "marketlab.features.expr.ops:Skew",
    "op/Kurt": "marketlab.features.expr.ops:Kurt",
    "op/Max": "marketlab.features.expr.ops:Max",
    "op/Min": "marketlab.features.expr.ops:Min",
    "op/Med": "marketlab.features.expr.ops:Med",
    "op/Mad": "marketlab.features.expr.ops:Mad",
    "op/Rank": "marketlab.features.expr.ops:Rank",
    "op/WMA": "marketlab.features.expr.ops:WMA",
    "op/EMA": "marketlab.features.expr.ops:EMA",
    "op/Cov": "marketlab.features.expr.ops:Cov",
    "op/Corr": "marketlab.features.expr.ops:Corr",
    # env rewards (one numba kernel each, shared by the single and the batched env)
    "reward/pnl-v1": "marketlab.envs.rewards:PnLReward",
    "reward/log-return-v1": "marketlab.envs.rewards:LogReturnReward",
    "reward/diff-sharpe-v1": "marketlab.envs.rewards:DiffSharpeReward",
    # env state and action interpreters
    "state/window-v1": "marketlab.envs.interpreters:WindowState",
    "action/discrete-v1": "marketlab.envs.interpreters:DiscreteAction",
    "action/weights-v1": "marketlab.envs.interpreters:WeightsAction",
    # venues of the LOB envs (core.protocols.Venue)
    "venue/replay-v1": "marketlab.market.venues:ReplayVenue",
    "venue/abm-v1": "marketlab.simulators.venues:AbmVenue",
    # backtest signal sources (core.protocols.SignalSource)
    "signal/ma-cross-v1": "marketlab.backtests.sources:MACross",
    "signal/mean-reversion-v1": "marketlab.backtests.sources:MeanReversion",
    "signal/momentum-v1": "marketlab.backtests.sources:Momentum",
    "signal/alpha-v1": "marketlab.backtests.sources:StoredAlpha",
    "signal/predictions-v1": "marketlab.backtests.sources:StoredPredictions",
    "signal/rl-v1": "marketlab.backtests.sources:PolicyWeights",
    "signal/macrohft-v1": "marketlab.backtests.sources:MacroHFTPolicy",
    "signal/weights-v1": "marketlab.backtests.sources:GivenWeights",
    "signal/frame-v1": "marketlab.backtests.sources:FrameScores",
    # whole-day simulators
    "simulator/abm-v1": "marketlab.simulators.abm:Simulation",
    "venue/trades-v1": "marketlab.simulators.trades.venue:TradesVenue",
    "simulator/trades-v1": "marketlab.simulators.trades.simulation:TradesSimulation",
    # runnable spec kinds of sweeps and fleets (marketlab.sweep)
    "runner/backtest": "marketlab.sweep.runners:BacktestRunner",
    "runner/simulate": "marketlab.sweep.runners:SimulateRunner",
    "runner/probe": "marketlab.sweep.runners:ProbeRunner",
    "runner/xva": "marketlab.sweep.runners:XvaRunner",
    "runner/rl": "marketlab.sweep.runners:RLRunner",
    "runner/mine": "marketlab.sweep.runners:MineRunner",
}
