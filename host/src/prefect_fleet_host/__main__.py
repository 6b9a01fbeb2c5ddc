"""python -m prefect_fleet_host: the `prefect-fleet` command."""

import sys

from prefect_fleet_host.cli import main

sys.exit(main())
