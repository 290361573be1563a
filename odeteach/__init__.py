"""odeteach: a hands-on course on Neural Ordinary Differential Equations.

The solver core (``odeint``, ``solve``) is a transparent, drop-in stand-in for torchdiffeq's
``odeint`` that counts its own function evaluations and records every step it tries.
"""

from .errors import SolverError
from .integrate import Solution, Stats, StepRecord, odeint, rk_step, solve
from .tableaux import METHODS, TABLEAUX, Tableau
from .adjoint import AdjointSolution, odeint_adjoint, solve_adjoint
from .memory import MemoryReport, measure_saved
from .latent import LatentODE, RNNBaseline
from .flows import CNF
from .classifier import Classifier, ODEBlock, ODEFunc

__all__ = [
    "METHODS", "TABLEAUX", "Tableau", "SolverError", "Solution", "Stats", "StepRecord",
    "odeint", "rk_step", "solve",
    "AdjointSolution", "odeint_adjoint", "solve_adjoint", "MemoryReport", "measure_saved",
    "LatentODE", "RNNBaseline",
    "CNF",
    "Classifier", "ODEBlock", "ODEFunc",
]
__version__ = "0.1.0"
