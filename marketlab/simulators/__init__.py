"""Market simulators: the agent-based LOB market (exchange.py, abm.py) and stylized facts (stylized.py).

Submodules are imported on use; importing this package stays cheap.
"""

from marketlab.core.registry import register as _register

# Registry ids for higher layers (envs, cli, demo), resolved lazily.
_register("sim/abm-v1", "marketlab.simulators.abm:Simulation")
_register("sim/abm-day-v1", "marketlab.simulators.abm:simulate_day")
_register("sim/stylized-v1", "marketlab.simulators.stylized:facts_for_dataset")
