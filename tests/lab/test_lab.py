"""End to end on the lab fleet: the server answers from the controller at the pinned version, the
UI loads, auth is enforced, hosts are reached over SSH, and a second `make lab` changes nothing."""

from __future__ import annotations

import json
import re

import pytest

from lab.ansible import playbook, recaps, task_results
from tests.conftest import ROOT, run

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


def test_the_database_is_postgresql_on_its_own_host(lab):
    server, database = lab.groups["prefect_server"][0], lab.groups["prefect_database"][0]
    settings = lab.ssh(server, "cat /etc/prefect-server/server.env").stdout
    assert 'PREFECT_SERVER_DATABASE_DRIVER="postgresql+asyncpg"' in settings
    assert f'PREFECT_SERVER_DATABASE_HOST="{lab.addresses[database]}"' in settings
    assert lab.ssh(server, "test -e /var/lib/prefect-server/prefect.db", check=False).returncode != 0
    # The lab's flow runs (make lab ran some) are rows of the PostgreSQL database.
    runs = lab.ssh(database, "runuser -u postgres -- psql -tAc 'select count(*) from flow_run' prefect").stdout
    assert int(runs) > 0


def test_hosts_are_reached_over_ssh(lab):
    # Each host answers with its own name, and its environment shows the session came in over SSH
    # (not `docker exec`), as on a production host.
    script = 'echo "$(hostname) ${SSH_CONNECTION:+via-ssh}"'
    result = run(["ansible", "-i", lab.inventory, "all:!lab_machine", "-m", "ansible.builtin.shell", "-a", script])
    assert result.returncode == 0, result.stdout + result.stderr
    for host in lab.hosts:
        assert re.search(rf"^{re.escape(host)} via-ssh$", result.stdout, re.M), result.stdout


def test_a_converge_repairs_drift_and_a_second_make_lab_changes_nothing(lab):
    # A converge that changes nothing skips a host's phases only while the host is as the last full
    # converge left it: each kind of drift below makes that host converge in full, and is repaired.
    workers = lab.groups["prefect_workers"]
    edited_unit, stopped, edited_settings, moved = workers[0], workers[1], workers[2 % len(workers)], workers[0]
    unit = "/etc/systemd/system/prefect-worker@.service"
    settings = "/etc/prefect-worker/production.env"
    unit_before = lab.ssh(edited_unit, f"sha256sum {unit}").stdout
    settings_before = lab.ssh(edited_settings, f"sha256sum {settings}").stdout
    lab.ssh(edited_unit, f"echo '# edited by hand' >> {unit}")
    lab.ssh(stopped, "systemctl stop prefect-worker@staging.service")
    lab.ssh(edited_settings, f"echo 'EDITED_BY_HAND=1' >> {settings}")
    # A checkout moved by hand: the tree `current` points at goes elsewhere (`current` dangles).
    lab.ssh(moved, 'mv "$(readlink -f /opt/prefect/staging/current)" /root/moved-checkout')

    repair = playbook(lab.inventory, "site.yml", timeout=1200)
    totals = recaps(repair.stdout)
    for host in {edited_unit, stopped, edited_settings, moved}:
        assert totals[host]["changed"] > 0, f"{host}: drift not repaired: {totals[host]}"
    assert lab.ssh(edited_unit, f"sha256sum {unit}").stdout == unit_before
    assert lab.ssh(edited_settings, f"sha256sum {settings}").stdout == settings_before
    assert lab.ssh(stopped, "systemctl is-active prefect-worker@staging.service").stdout.strip() == "active"
    assert lab.ssh(moved, "test -d /opt/prefect/staging/current/.git", check=False).returncode == 0
    lab.ssh(moved, "rm -rf /root/moved-checkout")

    # The converge after the repair is a second `make lab` (hosts, remote, site.yml, the flows):
    # it changes nothing on any host, reuses the image and the wheelhouse, and every worker host
    # skips its phases (none converges in full).
    again = run(["make", "--no-print-directory", "lab", f"INVENTORY={lab.inventory}"], timeout=1200)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-2000:]
    totals = recaps(again.stdout)
    assert set(lab.groups["all"]) <= set(totals), f"no recap for {sorted(set(lab.groups['all']) - set(totals))}"
    changed = {host: c["changed"] for host, c in totals.items() if c["changed"]}
    assert not changed, f"the second make lab changed: {changed}"
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in totals.values())
    assert "build-image: reusing " + (ROOT / ".cache" / "lab-image").read_text().strip() in again.stderr
    assert "build-wheelhouse: reusing" in again.stderr
    results = task_results(again.stdout, "prefect_worker", "Converge in full]")
    assert sorted(host for _, host in results) == sorted(workers), results
    assert {status for status, _ in results} == {"skipping"}, results
