"""The host-side programs of prefect-fleet: one package, one command (`prefect-fleet`).

The roles install it on every worker host from a wheel the controller builds (host/), into a
virtualenv of its own; the units and the playbooks call its command, and the tests import it.
"""

__version__ = "1.4.0"
