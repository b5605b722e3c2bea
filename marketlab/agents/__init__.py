"""Agents: SB3 agents (``sb3``), rule baselines (``baselines``), AlphaGen (``alphagen``), MacroHFT (``macrohft``).

Submodules are imported on demand; this package import stays cheap.
"""
