"""softres: the reproducible companion to *A Unified Scheme of ResNet and Softmax*.

Song, Wang and Yin (2023), arXiv:2309.13482, study the loss
``L(x) = ½‖⟨exp(Ax)+Ax, 1⟩⁻¹(exp(Ax)+Ax) − b‖² + ½‖WAx‖²``. This package computes it, its
gradient and Hessian with their structure, the paper's bounds, and Newton-type solvers.
"""

from softres.examples import random_problem
from softres.problem import DomainError, Problem

__all__ = ["DomainError", "Problem", "random_problem"]
__version__ = "0.1.0"
