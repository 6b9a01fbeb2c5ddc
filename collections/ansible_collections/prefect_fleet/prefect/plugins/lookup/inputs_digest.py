# Copyright: prefect-fleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Lookup: one digest of everything a role's converge depends on, computed on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: inputs_digest
short_description: The SHA-256 of a role's files and variables
description:
  - Returns one hexadecimal SHA-256 over the files under the given paths (each file's path relative to its term,
    and its content; directories walked in sorted order) and over O(data) as canonical JSON. Two converges with
    the same digest would write the same files, which the P(prefect_fleet.prefect.converged#module) module uses
    to let a role skip a converge that would change nothing.
  - Missing paths count as empty (an optional file that does not exist is an input too).
options:
  _terms:
    description: Files or directories (walked recursively) on the controller.
    type: list
    elements: path
    required: true
  data:
    description: Anything JSON can represent, usually the role's resolved variables.
    type: raw
    default: null
  exclude:
    description: Names of files and directories left out wherever they are.
    type: list
    elements: str
    default: [__pycache__, .pytest_cache, molecule, dist, .git]
author:
  - prefect-fleet maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: The digest of this role's inputs
  ansible.builtin.set_fact:
    my_role_digest: "{{ lookup('prefect_fleet.prefect.inputs_digest', role_path, data={'port': my_role_port}) }}"
"""

RETURN = r"""
_raw:
  description: One hexadecimal SHA-256 digest.
  type: list
  elements: str
"""

import hashlib
import json
import os

from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.lookup import LookupBase

# The default of the `exclude` option (DOCUMENTATION says the same; a unit test compares them).
EXCLUDE = ("__pycache__", ".pytest_cache", "molecule", "dist", ".git")


def canonical(data):
    """JSON with sorted keys; what JSON cannot represent (Ansible's unsafe strings are str) as its str."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def files_under(root, exclude):
    """(relative path, absolute path) of every file under root, in a stable order."""
    if os.path.isfile(root):
        yield os.path.basename(root), root
        return
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if d not in exclude)
        for name in sorted(files):
            if name in exclude or name.endswith(".pyc"):
                continue
            path = os.path.join(directory, name)
            yield os.path.relpath(path, root), path


def digest(paths, data=None, exclude=EXCLUDE):
    total = hashlib.sha256()
    for root in paths:
        total.update(b"\0root\0")
        for relative, path in files_under(root, set(exclude)):
            total.update(b"\0file\0" + to_bytes(relative) + b"\0")
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    total.update(chunk)
    total.update(b"\0data\0" + to_bytes(canonical(data)))
    return total.hexdigest()


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return [digest(terms, self.get_option("data"), self.get_option("exclude"))]
