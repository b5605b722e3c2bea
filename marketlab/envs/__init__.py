"""Gymnasium environments: bar trading (single env and a batched env), LOB execution, market making.

Importing this package registers the gymnasium ids (``marketlab/Trading-v0`` ...) with lazy entry points;
the environment modules themselves are imported when an id is first made.
"""

import marketlab.envs.register  # noqa: F401  (gymnasium ids; cheap, lazy entry points)
