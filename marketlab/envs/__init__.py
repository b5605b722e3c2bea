"""Gymnasium environments: bar trading (single env and a batched torch env), LOB execution, market making.

Importing this package is cheap; the environments themselves are imported lazily by their gymnasium ids
(``marketlab/Trading-v0`` ...), registered by :mod:`marketlab.envs.register` when ``import marketlab`` runs.
"""
