"""marketlab: a modular financial ML and market-simulation platform.

Importing the root package is cheap and imports no layer. ``import marketlab.envs`` registers the
gymnasium ids (``marketlab/Trading-v0`` ...); :mod:`marketlab.core.registry` resolves every component id.
"""

__version__ = "0.1.0"
