"""softres: the reproducible companion to *A Unified Scheme of ResNet and Softmax*.

Song, Wang and Yin (2023), arXiv:2309.13482, study the loss
``L(x) = ½‖⟨exp(Ax)+Ax, 1⟩⁻¹(exp(Ax)+Ax) − b‖² + ½‖WAx‖²``. This package computes it, its
gradient and Hessian with their structure, the paper's bounds, and Newton-type solvers.
"""

from softres import bounds, sketch
from softres.examples import random_problem
from softres.problem import DomainError, Problem
from softres.solvers import minimize

__all__ = ["DomainError", "Problem", "bounds", "minimize", "random_problem", "sketch"]
__version__ = "0.1.0"
