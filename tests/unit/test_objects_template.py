"""The prefect_objects role gives every pool the process worker's own base job template, kept in
the role per Prefect release: it must be exactly what the pinned release's ProcessWorker makes."""

from __future__ import annotations

import json

from prefect import __version__ as prefect_version
from prefect.workers.process import ProcessWorker

from tests.conftest import ROOT

ROLE = ROOT / "roles" / "prefect_objects"


def test_the_roles_template_is_the_pinned_process_workers():
    stored = json.loads((ROLE / "files" / f"process-base-job-template-{prefect_version}.json").read_text())
    assert stored == ProcessWorker.get_default_base_job_template()


def test_the_role_defaults_to_the_fleets_release():
    fleet = (ROOT / "group_vars" / "all" / "fleet.yml").read_text()
    assert f'fleet_prefect_version: "{prefect_version}"' in fleet
    assert f'prefect_objects_version: "{prefect_version}"' in (ROLE / "defaults" / "main.yml").read_text()
