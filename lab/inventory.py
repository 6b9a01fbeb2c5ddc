"""Write a lab inventory beside the shipped one: same settings, other hosts, network and subnet.

Used by the end-to-end test that proves another inventory gives another lab, and by the
benchmark, which converges a fleet of its own so that the main lab stays as it is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def write_lab_inventory(
    dest: Path,
    network: str,
    subnet: str,
    groups: dict[str, dict[str, dict]],
    environments: dict[str, dict] | None = None,
    settings: dict | None = None,
    children: dict[str, list[str]] | None = None,
    group_vars: dict[str, dict] | None = None,
) -> Path:
    """Copy inventories/lab to `dest`, then give it `groups` ({group: {host: hostvars}}), `network`
    and `subnet`, and optionally other `environments` (fleet_environments), other lab `settings`,
    `children` ({group: [child group, ...]}) and `group_vars` ({group: {variable: value}}). Keys,
    secrets and caches stay under this checkout (lab_root). Writing over an inventory written
    before keeps its directory (a second converge of the same lab)."""
    shutil.copytree(ROOT / "inventories" / "lab", dest, dirs_exist_ok=True)
    settings_file = dest / "group_vars" / "all" / "lab.yml"
    lab = yaml.safe_load((ROOT / "inventories" / "lab" / "group_vars" / "all" / "lab.yml").read_text())
    lab.update(lab_root=str(ROOT), lab_network=network, lab_subnet=subnet, **(settings or {}))
    settings_file.write_text(yaml.safe_dump(lab, sort_keys=False))
    if environments is not None:
        (dest / "group_vars" / "all" / "environments.yml").write_text(
            yaml.safe_dump({"fleet_environments": environments}, sort_keys=False)
        )
    tree = {group: {"hosts": hosts} for group, hosts in groups.items()}
    for group, subgroups in (children or {}).items():
        tree.setdefault(group, {})["children"] = {child: {} for child in subgroups}
    (dest / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": tree}}, sort_keys=False))
    for group, variables in (group_vars or {}).items():
        (dest / "group_vars" / f"{group}.yml").write_text(yaml.safe_dump(variables, sort_keys=False))
    return dest


def resolve(inventory: str | Path, names: list[str]) -> dict:
    """Fleet-wide variables of an inventory, templated as a play on the controller sees them."""
    bin_dir = Path(sys.executable).parent
    expr = "{{ {" + ", ".join(f"'{n}': {n}" for n in names) + "} | to_json }}"
    result = subprocess.run(
        [
            str(bin_dir / "ansible"),
            "--playbook-dir",
            str(ROOT),
            "-i",
            str(inventory),
            "localhost",
            "-m",
            "ansible.builtin.debug",
            "-a",
            f"msg={expr}",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"cannot resolve {names} in {inventory}:\n{result.stdout}{result.stderr}")
    msg = json.loads(result.stdout.split("=>", 1)[1])["msg"]
    return json.loads(msg) if isinstance(msg, str) else msg
