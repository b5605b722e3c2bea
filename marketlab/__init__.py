"""marketlab: a modular financial ML and market-simulation platform."""

__version__ = "0.1.0"

import marketlab.envs.register  # noqa: E402,F401  (gymnasium ids "marketlab/..."; lazy entry points)
