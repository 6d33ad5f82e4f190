"""softres: the reproducible companion to *A Unified Scheme of ResNet and Softmax*.

Song, Wang and Yin (2023), arXiv:2309.13482, study the loss
``L(x) = ½‖⟨exp(Ax)+Ax, 1⟩⁻¹(exp(Ax)+Ax) − b‖² + ½‖WAx‖²``. This package computes it, its
gradient and Hessian with their structure, the paper's bounds, and Newton-type solvers.
"""

from softres import bounds, sketch
from softres.examples import random_problem
from softres.problem import DomainError, Problem
from softres.solvers import minimize

__all__ = ["DomainError", "Problem", "bounds", "dask_client", "minimize", "random_problem", "sketch"]


def dask_client(address: str | None = None, **cluster_options: object) -> object:  # a distributed.Client
    """The ``dask.distributed`` client for problems on Dask arrays (:func:`softres._dask.dask_client`).

    With ``address``, a client of that scheduler; else the current client, else a local cluster of two
    workers started once (``cluster_options`` go to ``distributed.LocalCluster``). Needs ``softres[dask]``.
    """
    from softres._dask import dask_client as client

    return client(address, **cluster_options)
__version__ = "0.1.0"
