"""Deep BSDE library: equations (forward SDE, generator, terminal condition), Z-networks and the solver."""

from marketlab.pricing.bsde.equations import (
    AllenCahn,
    BlackScholesLinear,
    BurgersType,
    Equation,
    HJBLQ,
    PathBatch,
    PricingDefaultRisk,
    PricingDiffRate,
    QuadraticGradient,
    ReactionDiffusion,
    equation_names,
    make_equation,
)
from marketlab.pricing.bsde.solver import DeepBSDESolver, SolverConfig, TrainResult, relative_error, solve

__all__ = [
    "AllenCahn", "BlackScholesLinear", "BurgersType", "DeepBSDESolver", "Equation", "HJBLQ",
    "PathBatch", "PricingDefaultRisk", "PricingDiffRate", "QuadraticGradient", "ReactionDiffusion",
    "SolverConfig", "TrainResult", "equation_names", "make_equation", "relative_error", "solve",
]
