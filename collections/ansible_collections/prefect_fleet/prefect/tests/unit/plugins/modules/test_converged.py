"""converged on real files in a temporary directory (systemd faked): what it records, and each kind
of drift it reports."""

from __future__ import annotations

import json
import os

import pytest
from ansible.module_utils import basic

from ansible_collections.prefect_fleet.prefect.plugins.modules import converged


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A record path, two managed files, a checkout directory, and systemd's answers by unit."""
    unit = tmp_path / "prefect-worker@.service"
    unit.write_text("[Service]\nExecStart=/bin/true\n")
    settings = tmp_path / "production.env"
    settings.write_text('PREFECT_API_URL="http://server:4200/api"\n')
    settings.chmod(0o600)
    (tmp_path / "current").mkdir()
    systemd = {"prefect-worker@production.service": ("active", "enabled")}

    def run_command(_self, args, **_kwargs):
        units = args[args.index("--") + 1 :]
        blocks = []
        for name in units:
            active, enabled = systemd.get(name, ("inactive", ""))
            blocks.append(f"Id={name}\nActiveState={active}\nUnitFileState={enabled}\n")
        return 0, "\n".join(blocks), ""

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda _self, name, **_kw: "/bin/" + name)
    return {
        "record": tmp_path / "state" / "converged.json",
        "unit": unit,
        "settings": settings,
        "checkout": tmp_path / "current",
        "systemd": systemd,
    }


def args(host, **extra):
    return {
        "path": str(host["record"]),
        "digest": "d1",
        "files": [str(host["unit"]), str(host["settings"])],
        "units": ["prefect-worker@production.service"],
        "dirs": [str(host["checkout"])],
        **extra,
    }


def query(run_module, host, **extra):
    return run_module(converged, args(host, **extra), api=False)


def record(run_module, host, **extra):
    return run_module(converged, {**args(host, **extra), "state": "present"}, api=False)


def test_without_a_record_the_host_is_not_current(run_module, host):
    result = query(run_module, host)
    assert (result["current"], result["problems"], result["changed"]) == (
        False,
        ["no record of a full converge"],
        False,
    )


def test_after_a_record_the_host_is_current_and_the_record_is_private(run_module, host):
    assert record(run_module, host)["changed"] is True
    assert query(run_module, host) == {
        "failed": False,
        "changed": False,
        "current": True,
        "problems": [],
        "digest": "d1",
    }
    assert host["record"].stat().st_mode & 0o777 == 0o600
    # It holds fingerprints, never a file's content.
    assert "http://server" not in host["record"].read_text()
    # Recording the same state again changes nothing.
    assert record(run_module, host)["changed"] is False


def test_an_edited_file_is_drift(run_module, host):
    record(run_module, host)
    with host["unit"].open("a") as handle:
        handle.write("# edited by hand\n")
    assert query(run_module, host)["problems"] == [f"{host['unit']} changed (sha256)"]


def test_a_changed_mode_and_a_missing_file_are_drift(run_module, host):
    record(run_module, host)
    host["settings"].chmod(0o644)
    host["unit"].unlink()
    assert query(run_module, host)["problems"] == [f"{host['unit']} is missing", f"{host['settings']} changed (mode)"]


def test_new_inputs_are_drift(run_module, host):
    record(run_module, host)
    assert query(run_module, host, digest="d2")["problems"] == ["the role's inputs changed"]


def test_a_file_managed_now_but_not_recorded_is_drift(run_module, host, tmp_path):
    record(run_module, host)
    extra = tmp_path / "staging.env"
    extra.write_text("")
    result = query(run_module, host, files=[str(host["unit"]), str(host["settings"]), str(extra)])
    assert result["problems"] == [f"{extra} was not recorded"]


def test_a_stopped_or_disabled_unit_is_drift(run_module, host):
    record(run_module, host)
    host["systemd"]["prefect-worker@production.service"] = ("inactive", "disabled")
    assert query(run_module, host)["problems"] == [
        "prefect-worker@production.service is inactive",
        "prefect-worker@production.service is disabled",
    ]


def test_a_checkout_moved_away_is_drift(run_module, host):
    record(run_module, host)
    host["checkout"].rename(host["checkout"].with_name("moved"))
    assert query(run_module, host)["problems"] == [f"{host['checkout']} is not a directory"]


def test_what_the_role_observes_is_compared_as_recorded(run_module, host):
    observed = {"services": [{"Name": "dask-production-scheduler", "Replicas": 1}], "images": ["sha256:1"]}
    record(run_module, host, observed=observed)
    assert query(run_module, host, observed=json.loads(json.dumps(observed)))["current"] is True
    scaled = {**observed, "services": [{"Name": "dask-production-scheduler", "Replicas": 0}]}
    assert query(run_module, host, observed=scaled)["problems"] == ["what the role observes changed"]


def test_a_link_is_fingerprinted_by_its_target(run_module, host, tmp_path):
    link = tmp_path / "prefect-fleet"
    link.symlink_to("/usr/local/lib/prefect-fleet/venv/bin/prefect-fleet")
    record(run_module, host, files=[str(link)])
    link.unlink()
    link.symlink_to("/elsewhere")
    assert query(run_module, host, files=[str(link)])["problems"] == [f"{link} changed (target)"]


def test_recording_a_missing_file_fails_and_writes_nothing(run_module, host, tmp_path):
    result = record(run_module, host, files=[str(tmp_path / "absent")])
    assert result["failed"] is True
    assert "absent does not exist" in result["msg"]
    assert not host["record"].exists()


def test_check_mode_writes_nothing_and_absent_removes_the_record(run_module, host):
    result = run_module(converged, {**args(host), "state": "present"}, check_mode=True, api=False)
    assert result["changed"] is True
    assert not host["record"].exists()
    record(run_module, host)
    assert run_module(converged, {"path": str(host["record"]), "state": "absent"}, api=False)["changed"] is True
    assert not os.path.exists(host["record"])
    assert run_module(converged, {"path": str(host["record"]), "state": "absent"}, api=False)["changed"] is False
