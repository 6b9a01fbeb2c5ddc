"""inputs_digest on real files: the same inputs give the same digest, any change another."""

from __future__ import annotations

import yaml

from ansible_collections.prefect_fleet.prefect.plugins.lookup import inputs_digest
from ansible_collections.prefect_fleet.prefect.plugins.lookup.inputs_digest import digest


def role(tmp_path):
    (tmp_path / "role" / "templates").mkdir(parents=True)
    (tmp_path / "role" / "templates" / "unit.j2").write_text("ExecStart={{ command }}\n")
    (tmp_path / "role" / "tasks").mkdir()
    (tmp_path / "role" / "tasks" / "main.yml").write_text("---\n")
    return str(tmp_path / "role")


def test_the_same_inputs_give_the_same_digest(tmp_path):
    path = role(tmp_path)
    assert digest([path], {"b": 1, "a": [1, 2]}) == digest([path], {"a": [1, 2], "b": 1})
    assert len(digest([path])) == 64


def test_a_file_a_name_or_a_variable_that_changes_changes_it(tmp_path):
    path = role(tmp_path)
    before = digest([path], {"port": 4200})
    assert digest([path], {"port": 4201}) != before
    (tmp_path / "role" / "templates" / "unit.j2").write_text("ExecStart={{ command }} --verbose\n")
    edited = digest([path], {"port": 4200})
    assert edited != before
    (tmp_path / "role" / "templates" / "unit.j2").rename(tmp_path / "role" / "templates" / "unit2.j2")
    assert digest([path], {"port": 4200}) != edited


def test_caches_and_test_scenarios_are_not_inputs(tmp_path):
    path = role(tmp_path)
    before = digest([path])
    (tmp_path / "role" / "molecule").mkdir()
    (tmp_path / "role" / "molecule" / "converge.yml").write_text("---\n")
    (tmp_path / "role" / "__pycache__").mkdir()
    (tmp_path / "role" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert digest([path]) == before


def test_a_missing_path_counts_as_empty_and_a_single_file_is_hashed(tmp_path):
    path = role(tmp_path)
    assert digest([path, str(tmp_path / "absent")]) != digest([path])
    single = tmp_path / "constraints.txt"
    single.write_text("prefect==3.8.8\n")
    before = digest([str(single)])
    single.write_text("prefect==3.9.1\n")
    assert digest([str(single)]) != before


def test_the_documented_exclusions_are_the_default_ones():
    documented = yaml.safe_load(inputs_digest.DOCUMENTATION)["options"]["exclude"]["default"]
    assert documented == list(inputs_digest.EXCLUDE)
