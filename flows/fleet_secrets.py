"""The secrets of a flow, from the Prefect Secret blocks the fleet makes from its vault.

The inventory's `vault_flow_secrets: {production: {warehouse-password: ...}}` becomes the Secret
block `production-warehouse-password`; a production run reads it with

    from fleet_secrets import secret

    password = secret("warehouse-password")

and a staging run, with the same code, reads `staging-warehouse-password`: the environment comes
from FLEET_ENVIRONMENT, which the fleet sets for every worker and run. The value never travels in
a deployment's parameters or job variables; do not log it or return it from a flow or task
(returned values may be persisted as results).
"""

from __future__ import annotations

import os


def block_name(name: str) -> str:
    """The Secret block that holds `name` for this run's environment."""
    return f"{os.environ.get('FLEET_ENVIRONMENT', 'local')}-{name}"


def secret(name: str) -> str:
    """The value of secret `name` in this run's environment (Prefect's Secret block)."""
    from prefect.blocks.system import Secret

    return Secret.load(block_name(name)).get()
