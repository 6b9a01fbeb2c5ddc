"""Every role documents every default in meta/argument_specs.yml, with the same default value
(the check prometheus-community/ansible runs in CI), and validates nothing it does not define."""

from __future__ import annotations

import re
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


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_every_role_has_a_readme_listing_its_variables(role):
    """Each role's README (what it does, its variables, an example play) names every variable of
    its defaults, and its example sets only variables the role has."""
    readme = role / "README.md"
    assert readme.is_file(), f"{role.name} has no README.md"
    text = readme.read_text()
    missing = [name for name in _load(role / "defaults" / "main.yml") if f"`{name}`" not in text]
    assert not missing, f"{role.name}/README.md does not list {missing}"
    assert "## Example playbook" in text
    example = text.split("## Example playbook", 1)[1]
    used = set(re.findall(rf"^\s+({role.name}_\w+):", example, re.M))
    unknown = sorted(used - set(_load(role / "defaults" / "main.yml")))
    assert not unknown, f"{role.name}/README.md's example sets variables the role does not have: {unknown}"
