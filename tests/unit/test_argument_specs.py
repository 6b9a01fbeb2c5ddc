"""Every role documents every default in meta/argument_specs.yml, with the same default value
(the check prometheus-community/ansible runs in CI), and validates nothing it does not define."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = sorted(p for p in (Path(__file__).resolve().parents[2] / "roles").iterdir() if (p / "tasks").is_dir())


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_role_has_an_argument_spec(role):
    spec = role / "meta" / "argument_specs.yml"
    assert spec.is_file(), f"{role.name} has no meta/argument_specs.yml"
    assert _load(spec)["argument_specs"]["main"]["options"]


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_defaults_and_argument_specs_agree(role):
    defaults = _load(role / "defaults" / "main.yml")
    options = _load(role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert set(defaults) == set(options), (
        f"{role.name}: only in defaults: {sorted(set(defaults) - set(options))}; "
        f"only in argument_specs: {sorted(set(options) - set(defaults))}"
    )
    for name, value in defaults.items():
        assert options[name].get("default") == value, f"{role.name}: default of {name} differs"
        assert options[name].get("description"), f"{role.name}: {name} has no description"


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_public_variables_carry_the_role_prefix(role):
    prefix = role.name + "_"
    for name in _load(role / "defaults" / "main.yml"):
        assert name.startswith(prefix), f"{role.name}: {name} lacks the {prefix} prefix"
    for name in _load(role / "vars" / "main.yml") if (role / "vars" / "main.yml").exists() else {}:
        assert name.startswith("_" + prefix), f"{role.name}: internal {name} must start with _{prefix}"
