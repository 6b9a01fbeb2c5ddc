"""Where a flow's tasks run: on the fleet's Dask cluster when `DASK_SCHEDULER_ADDRESS` names one
(the fleet puts it in each environment's worker settings), else on an in-process cluster, so that
the same flow runs with `python flows/<project>/<flow>.py` and no cluster at all.

prefect-dask's `DaskTaskRunner()` does not read `DASK_SCHEDULER_ADDRESS` itself (it starts a
`LocalCluster`), hence this helper:

    from fleet_dask import dask_task_runner

    @flow(task_runner=dask_task_runner(__name__))
    def my_flow(): ...

The flow's own module travels to the Dask workers by value (cloudpickle), from the checkout the
run started in: a production run sends the production branch's code, a staging run the main
branch's, and the cluster's image needs no rebuild when the code changes, only when the flows'
requirements do. Name any other local module the flow or its tasks use in `modules`.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

import cloudpickle
from prefect_dask import DaskTaskRunner

ADDRESS_VARIABLE = "DASK_SCHEDULER_ADDRESS"


def scheduler_address() -> str:
    """The scheduler this process should use, or "" for an in-process cluster."""
    return os.environ.get(ADDRESS_VARIABLE, "").strip()


def dask_task_runner(module: str, *modules: ModuleType, threads: int | None = None) -> DaskTaskRunner:
    """A task runner on the fleet's cluster, or on a cluster of threads in this process.

    `module` is the flow module's `__name__`; `modules` are further local modules its tasks use;
    `threads` sizes the in-process cluster (default: one per CPU).
    """
    address = scheduler_address()
    if not address:
        # In-process comms (inproc://) by name: with the fleet's Dask TLS settings in the
        # environment (require-encryption), LocalCluster would otherwise pick tls:// for itself
        # and fail without a scheduler certificate.
        return DaskTaskRunner(
            cluster_kwargs={"processes": False, "n_workers": 1, "threads_per_worker": threads, "protocol": "inproc://"}
        )
    # This helper is a local module too: the flow's function, which travels with the run's context,
    # refers to it.
    for by_value in [sys.modules.get(module), sys.modules[__name__], *modules]:
        # A script run as __main__ travels by value already.
        if by_value is not None and by_value.__name__ != "__main__":
            cloudpickle.register_pickle_by_value(by_value)
    return DaskTaskRunner(address=address)
