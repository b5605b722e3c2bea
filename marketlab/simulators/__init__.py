"""Market simulators: the agent-based LOB market (exchange.py, abm.py) and stylized facts (stylized.py).

Submodules are imported on use; importing this package stays cheap.
"""
