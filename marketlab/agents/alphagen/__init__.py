"""AlphaGen-style formulaic alpha mining: token env + MaskablePPO (LSTM), alpha pool, GP and hand-factor
baselines, and the ``marketlab mine`` runner (:mod:`.mine`)."""
