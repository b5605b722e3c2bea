"""TRADES: a denoising-diffusion generator of limit-order-book order flow (Berti, Prenkaj, Velardi 2025).

Modules: :mod:`.tokens` (store events <-> order tokens, conditioning book, splits, statistics),
:mod:`.model` (the denoiser), :mod:`.diffusion` (schedule, hybrid loss, samplers, EMA),
:mod:`.train` (training from the store, checkpoints), :mod:`.decode` (samples -> valid engine orders),
:mod:`.world` (the generator as a world agent on the matching engine). Imported on use.
"""
