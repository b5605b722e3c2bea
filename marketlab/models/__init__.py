"""LOB trend predictors (TLOB, MLPLOB, DeepLOB, BiN-CTABL), their data, trainer and metrics, and the
CNN/LSTM OHLC forecasters.

Modules: ``layers`` (BiN, transformer/MLP blocks), ``tlob``, ``mlplob``, ``deeplob``, ``binctabl``,
``zoo`` (names -> classes, registry ids ``predictor/<name>-v1``), ``datasets`` (window sets, FI-2010,
LOBSTER preprocessing), ``sources`` (data resolution, store signals), ``train`` (trainer), ``metrics``,
``checkpoint`` (safetensors + JSON), ``forecasters`` (walk-forward OHLC models), ``api`` (what
``marketlab train``/``predict`` run: :class:`~marketlab.models.api.TrainSpec`, ``train_from_spec``,
``predict_to_store``). Import the module you
need; this package imports nothing heavy by itself.
"""
