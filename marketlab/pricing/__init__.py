"""Pricing: deep BSDE solvers (:mod:`marketlab.pricing.bsde`) and the layered deep xVA pipeline
(:mod:`marketlab.pricing.xva`)."""
