"""Write a lab inventory beside the shipped one: same settings, other hosts, network and subnet.

Used by the end-to-end test that proves another inventory gives another lab, and by the
benchmark, which converges a fleet of its own so that the main lab stays as it is.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def write_lab_inventory(dest: Path, network: str, subnet: str, groups: dict[str, dict[str, dict]]) -> Path:
    """Copy inventories/lab to `dest`, then give it `groups` ({group: {host: hostvars}}), `network`
    and `subnet`. Keys, secrets and caches stay under this checkout (lab_root)."""
    shutil.copytree(ROOT / "inventories" / "lab", dest)
    settings_file = dest / "group_vars" / "all" / "lab.yml"
    settings = yaml.safe_load(settings_file.read_text())
    settings.update(lab_root=str(ROOT), lab_network=network, lab_subnet=subnet)
    settings_file.write_text(yaml.safe_dump(settings, sort_keys=False))
    children = {group: {"hosts": hosts} for group, hosts in groups.items()}
    (dest / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": children}}, sort_keys=False))
    return dest
