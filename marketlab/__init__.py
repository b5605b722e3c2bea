"""marketlab: a modular financial ML and market-simulation platform."""

__version__ = "0.1.0"
