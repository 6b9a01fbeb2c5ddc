"""Controller and host dependencies are pinned, and the pins agree with each other."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# Measured (docs/facts.md): with these, server, worker, deployment and run work.
KNOWN_GOOD = {
    "fastapi": "0.141.1",
    "starlette": "1.3.1",
    "pydantic": "2.13.4",
    "pydantic-core": "2.46.4",
    "sqlalchemy": "2.0.45",
    "uvicorn": "0.52.0",
}


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-")):
            continue
        assert re.fullmatch(r"[A-Za-z0-9._\[\],-]+==[A-Za-z0-9.+!-]+", line), f"{path.name}: not pinned: {line}"
        name, version = line.split("==")
        pins[re.sub(r"[-_.]+", "-", name.split("[")[0].lower())] = version
    return pins


def _fleet_version() -> str:
    return yaml.safe_load((ROOT / "group_vars/all/fleet.yml").read_text())["fleet_prefect_version"]


def test_controller_requirements_are_fully_pinned():
    pins = _pins(ROOT / "requirements.txt")
    assert pins["ansible"].startswith("12."), "ansible-core 2.19 (ansible 12.x) is the one that runs on Python 3.11"
    for name in ("molecule", "molecule-plugins", "pytest", "pytest-testinfra", "ansible-lint", "yamllint", "ruff"):
        assert name in pins, f"requirements.txt lacks {name}"


def test_fleet_version_has_a_constraints_file_pinning_it():
    version = _fleet_version()
    pins = _pins(ROOT / "constraints" / f"prefect-{version}.txt")
    assert pins["prefect"] == version


def test_constraints_hold_the_measured_server_dependencies():
    pins = _pins(ROOT / "constraints" / f"prefect-{_fleet_version()}.txt")
    for name, version in KNOWN_GOOD.items():
        assert pins.get(name) == version, f"{name} must stay at {version} (docs/facts.md)"


def test_controller_and_hosts_run_the_same_versions():
    controller = _pins(ROOT / "requirements.txt")
    hosts = _pins(ROOT / "constraints" / f"prefect-{_fleet_version()}.txt")
    differ = {n: (controller[n], v) for n, v in hosts.items() if n in controller and controller[n] != v}
    assert not differ, f"controller and host pins differ: {differ}"
    assert controller["prefect"] == _fleet_version()


def test_requirements_yml_pins_every_collection_the_code_uses():
    pinned = {c["name"] for c in yaml.safe_load((ROOT / "requirements.yml").read_text())["collections"]}
    assert all(c.get("version") for c in yaml.safe_load((ROOT / "requirements.yml").read_text())["collections"])
    used = set()
    for path in list(ROOT.glob("roles/**/*.yml")) + list(ROOT.glob("lab/*.yml")) + list(ROOT.glob("playbooks/*.yml")):
        used |= set(
            re.findall(r"^\s*-?\s*((?!ansible\.builtin)[a-z_]+\.[a-z_]+)\.[a-z_]+:\s*$", path.read_text(), re.M)
        )
    assert used, "found no collection modules at all: the pattern is wrong"
    # The fleet's own collection ships in this repository.
    own = {"prefect_fleet.prefect"}
    assert (ROOT / "collections/ansible_collections/prefect_fleet/prefect/galaxy.yml").is_file()
    assert used - own <= pinned, f"not pinned in requirements.yml: {sorted(used - own - pinned)}"
