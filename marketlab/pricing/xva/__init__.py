"""Layered deep xVA: portfolios, credit models (intensity / structural first passage), measure change,
exposures, the four BSDE layers and the spec-driven :class:`XvaRun`."""

from marketlab.pricing.xva.run import XvaRun
from marketlab.pricing.xva.spec import XvaSpec

__all__ = ["XvaRun", "XvaSpec"]
