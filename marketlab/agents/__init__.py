"""Agents: SB3 agents (``sb3``) and rule baselines (``baselines``) on ``marketlab/Trading-v0``, and the
AlphaGen alpha miner (``alphagen``).

Submodules are imported on demand; this package import stays cheap.
"""
