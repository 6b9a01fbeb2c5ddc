"""End to end on the lab fleet: the server answers from the controller at the pinned version, the
UI loads, auth is enforced, hosts are reached over SSH, and a second `make lab` changes nothing."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from lab.inventory import write_lab_inventory
from tests.conftest import ROOT, run
from tests.lab.conftest import recaps

pytestmark = pytest.mark.lab


def test_api_health_from_the_controller(lab):
    status, body = lab.get("/api/health", auth=False)
    assert (status, json.loads(body)) == (200, True)


def test_server_reports_the_pinned_version(lab):
    status, body = lab.get("/api/admin/version")
    assert status == 200
    assert json.loads(body) == lab.server["fleet_prefect_version"]


def test_basic_auth_is_enforced(lab):
    assert lab.server["prefect_server_auth_string"], "the lab runs with basic auth on"
    status, _ = lab.get("/api/admin/version", auth=False)
    assert status == 401


def test_ui_loads(lab):
    status, body = lab.get("/")
    assert status == 200
    html = body.decode()
    assert "<title>Prefect" in html or "prefect" in html.lower()
    scripts = re.findall(r'src="(/[^"]+\.js)"', html)
    assert scripts, "the UI's page references no script"
    status, script = lab.get(scripts[0])
    assert status == 200
    assert len(script) > 1000
    status, body = lab.get("/ui-settings")
    assert status == 200
    assert json.loads(body)["api_url"] == lab.api_url


def test_hosts_are_reached_over_ssh(lab):
    # Each host answers with its own name, and its environment shows the session came in over SSH
    # (not `docker exec`), as on a production host.
    script = 'echo "$(hostname) ${SSH_CONNECTION:+via-ssh}"'
    result = run(["ansible", "-i", lab.inventory, "all", "-m", "ansible.builtin.shell", "-a", script])
    assert result.returncode == 0, result.stdout + result.stderr
    for host in lab.groups["all"]:
        assert re.search(rf"^{re.escape(host)} via-ssh$", result.stdout, re.M), result.stdout


def test_second_lab_run_changes_nothing(lab):
    result = run(["make", "--no-print-directory", "lab", f"INVENTORY={lab.inventory}"], timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    totals = recaps(result.stdout)
    hosts = set(lab.groups["all"])
    assert hosts <= set(totals), f"no recap for {sorted(hosts - set(totals))}"
    changed = {host: c["changed"] for host, c in totals.items() if c["changed"]}
    assert not changed, f"a second run changed: {changed}"
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in totals.values())
    # The expensive parts were reused, not rebuilt.
    assert "build-image: reusing " + (ROOT / ".cache" / "lab-image").read_text().strip() in result.stderr
    assert "build-wheelhouse: reusing" in result.stderr


def test_another_inventory_gives_another_lab(lab, tmp_path):
    """Hosts, network and subnet come from the inventory alone: a different one, a different fleet."""
    del lab  # the main lab stays up beside this one
    inventory = write_lab_inventory(
        tmp_path / "alt",
        network="prefect-fleet-lab-alt",
        subnet="172.30.78.0/24",
        groups={
            "prefect_server": {"alt-prefect-01": {"ansible_host": "172.30.78.10"}},
            # Carries the labels flows/deployments.yml targets, so that `make lab` deploys and runs them.
            "prefect_workers": {"alt-data05": {"ansible_host": "172.30.78.15", "fleet_labels": ["atd-data02", "etl"]}},
            "lab_git_remote": {"alt-git-01": {"ansible_host": "172.30.78.20"}},
        },
    )
    try:
        result = run(["make", "--no-print-directory", "lab", f"INVENTORY={inventory}"], timeout=1200)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        names = run(
            ["docker", "ps", "--filter", "label=prefect-fleet-lab=prefect-fleet-lab-alt", "--format", "{{.Names}}"]
        )
        assert sorted(names.stdout.split()) == [
            "prefect-fleet-lab-alt-alt-data05",
            "prefect-fleet-lab-alt-alt-git-01",
            "prefect-fleet-lab-alt-alt-prefect-01",
        ]
        # Every example flow ran, on the one worker host of this fleet.
        assert re.search(r"^fleet-report-production-atd-data02 .* alt-data05 .* COMPLETED\s*$", result.stdout, re.M)
        with urllib.request.urlopen("http://172.30.78.10:4200/api/health", timeout=20) as response:
            assert json.loads(response.read()) is True
    finally:
        down = run(["make", "--no-print-directory", "lab-down", f"INVENTORY={inventory}"], timeout=600)
    assert down.returncode == 0, down.stdout[-3000:]
    left = run(["docker", "ps", "-a", "--filter", "label=prefect-fleet-lab=prefect-fleet-lab-alt", "-q"])
    assert left.stdout.strip() == ""
