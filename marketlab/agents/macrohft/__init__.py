"""MacroHFT (Zong et al., KDD 2024): regime sub-agents + a memory-augmented hyper-agent for minute trading.

Modules: ``data`` (Binance kline archives / store bars, gaps), ``splits`` (paper splits, train-only
scaling), ``regimes`` (market decomposition, macro context), ``supervisor`` (DP optimal Q*), ``nets``
(sub-agent and hyper-agent networks), ``memory`` (episodic memory), ``train`` (phase 1 and 2, checkpoints),
``evaluate`` (held-out roll-outs and paper metrics). Importing this package imports no submodule.
"""
