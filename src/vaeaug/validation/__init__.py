"""Validation of generated candidates against the original: metrics, plots and a report.

Samples follow the vaeaug contract: float64 ``p4`` arrays (N, k, 4) with last
axis (px, py, pz, E) in GeV, ``objects`` naming the k daughters, optional
per-candidate weights (N,). :func:`validate` runs everything and writes the report.
"""

from .amplification import amplification, quantile_mse
from .c2st import c2st, c2st_with_floor
from .features import dalitz_variables, feature_table, pair_masses, parent_mass
from .massfit import fit_mass_peak, robust_peak
from .memorisation import memorisation
from .metrics import correlation_comparison, correlation_matrix, ks_test, one_d_metrics
from .regions import mass_regions
from .report import validate

__all__ = [
    "amplification",
    "c2st",
    "c2st_with_floor",
    "correlation_comparison",
    "correlation_matrix",
    "dalitz_variables",
    "feature_table",
    "fit_mass_peak",
    "ks_test",
    "mass_regions",
    "memorisation",
    "one_d_metrics",
    "pair_masses",
    "parent_mass",
    "quantile_mse",
    "robust_peak",
    "validate",
]
