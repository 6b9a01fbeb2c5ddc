"""Whether an environment's Dask client runs the same Python and packages as its cluster.

`prefect-fleet status --dask ENV CLUSTER ADDRESS` runs this file's source with the environment's
own venv (the one its flow runs use: it has `distributed`, this package's venv has not), as the
environment's service user, once per venv with the scheduler address of every environment that
shares it, and puts each answer into its environment's report. Standard library and
`distributed` only, since it runs outside this package. It never fails: what went wrong is its
answer, {"error": ...}; otherwise {"distributed": client's version, "differ": [what differs]}, as
Dask's own Client.get_versions reports it.
"""

from __future__ import annotations

import json
import socket
import sys
from urllib.parse import urlsplit

# The packages whose versions must agree between a client and its cluster (what Dask itself warns
# about, and the interpreter).
COMPARED = ("python", "distributed", "dask", "cloudpickle", "msgpack", "toolz", "tornado")


def _packages(versions: dict) -> dict:
    return {"python": versions["host"]["python"], **{k: v for k, v in versions["packages"].items() if v}}


def differences(versions: dict) -> list[str]:
    """Client.get_versions() -> what differs from the client, one line each."""
    client = _packages(versions["client"])
    others = {"scheduler": _packages(versions["scheduler"])}
    others.update({worker: _packages(v) for worker, v in versions["workers"].items()})
    return sorted(
        {
            f"{name} {where}={theirs} (client {client.get(name)})"
            for where, theirs_all in others.items()
            for name, theirs in theirs_all.items()
            if name in COMPARED and theirs != client.get(name)
        }
    )


def compare(address: str) -> dict:
    try:
        # A scheduler that does not listen is refused at once; a client would wait its timeout.
        parts = urlsplit(address)
        socket.create_connection((parts.hostname, parts.port), timeout=3).close()
        from distributed import Client

        with Client(address, timeout=10) as client:
            versions = client.get_versions()
    except Exception as exc:  # every failure is an answer
        return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return {"distributed": _packages(versions["client"]).get("distributed"), "differ": differences(versions)}


if __name__ == "__main__":
    # One answer per scheduler address, in order: the environments that share a venv are compared
    # in one process, which imports distributed once.
    print(json.dumps([compare(address) for address in sys.argv[1:]]))
