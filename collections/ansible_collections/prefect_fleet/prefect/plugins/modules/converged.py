#!/usr/bin/python
# Copyright: prefect-fleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: whether a host is still as a role's last full converge left it."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: converged
short_description: Record, and check, what a role's last full converge left on a host
description:
  - A role that converges a host in many tasks can skip them when nothing changed. With O(state=present), after
    a full converge, this module records the digest of the role's inputs (computed on the controller, for example
    with the P(prefect_fleet.prefect.inputs_digest#lookup) lookup) and a fingerprint of every file the role
    manages. With O(state=query), at the start of the next converge, it reports RV(current) only when the digest
    is the same, every file still has its recorded fingerprint, every unit of O(units) is active and enabled and
    every path of O(dirs) is a directory. Anything else, a hand-edited file, a stopped unit, a checkout moved
    away, a new input, is named in RV(problems), and the role converges in full.
  - A fingerprint is the file's type, mode, owner and group, and for a regular file the SHA-256 of its content,
    for a symbolic link its target. The record is a JSON file readable by root only; it holds no file's content.
  - O(state=absent) removes the record, which a role does before a full converge so that a converge that fails
    half-way is never taken for a complete one.
  - Supports check mode (nothing is written).
options:
  path:
    description: The record's file.
    type: path
    required: true
  digest:
    description: The digest of the role's inputs. Required unless O(state=absent).
    type: str
  files:
    description: The files, links and directories the role manages, fingerprinted.
    type: list
    elements: path
    default: []
  units:
    description: The systemd units that must be active and enabled (checked, never recorded).
    type: list
    elements: str
    default: []
  dirs:
    description: Paths that must resolve, following links, to directories (checked, never recorded).
    type: list
    elements: path
    default: []
  observed:
    description:
      - What the role read of the state it manages outside files, for example the specifications of its Docker
        services. Recorded as given; a later query reports a problem when it differs.
    type: raw
  state:
    description: V(query) reports, V(present) records, V(absent) removes the record.
    type: str
    choices: [query, present, absent]
    default: query
author:
  - prefect-fleet maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Read whether this host is as the last full converge left it
  prefect_fleet.prefect.converged:
    path: /var/lib/prefect-fleet/converged/prefect_worker.json
    digest: "{{ lookup('prefect_fleet.prefect.inputs_digest', role_path, data=my_role_vars) }}"
    files: [/etc/systemd/system/prefect-worker@.service, /etc/prefect-worker/production.env]
    units: [prefect-worker@production.service]
    dirs: [/opt/prefect/production/current]
  register: converged

- name: Converge in full
  ansible.builtin.include_tasks: full.yml
  when: not converged.current
"""

RETURN = r"""
current:
  description: Whether the host is as the last full converge with this digest left it (O(state=query)).
  returned: always
  type: bool
problems:
  description: Why the host is not current, one line each (O(state=query)).
  returned: always
  type: list
  elements: str
digest:
  description:
    - The digest given (O(state=query) and O(state=present)), so that the task recording a converge can reuse the
      one its query was given instead of computing it again.
  returned: when O(state) is not V(absent)
  type: str
"""

import hashlib
import json
import os
import stat

from ansible.module_utils.basic import AnsibleModule

VERSION = 1


def fingerprint(path):
    """The file's type, mode, owner, group and content (or target); None when it is missing."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    found = {"mode": stat.S_IMODE(info.st_mode), "uid": info.st_uid, "gid": info.st_gid}
    if stat.S_ISLNK(info.st_mode):
        found.update(type="link", target=os.readlink(path))
    elif stat.S_ISDIR(info.st_mode):
        found["type"] = "dir"
    elif stat.S_ISREG(info.st_mode):
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError:
            return None
        found.update(type="file", sha256=digest.hexdigest())
    else:
        found["type"] = "other"
    return found


def canonical(data):
    """`observed` as it compares: a round trip through JSON (tuples become lists, keys strings)."""
    return json.loads(json.dumps(data, sort_keys=True, default=str))


def read_record(path):
    try:
        with open(path) as handle:
            record = json.load(handle)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("version") == VERSION else None


def unit_states(module, units):
    """systemd's ActiveState and UnitFileState of each unit, in one call."""
    if not units:
        return {}
    systemctl = module.get_bin_path("systemctl", required=True)
    rc, out, err = module.run_command([systemctl, "show", "--property=Id,ActiveState,UnitFileState", "--", *units])
    if rc != 0:
        module.fail_json(msg=f"systemctl show failed: {err.strip()}")
    found = {}
    for block in out.strip().split("\n\n"):
        properties = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        found[properties.get("Id")] = properties
    return dict((unit, found.get(unit, {})) for unit in units)


def problems_of(module, record, digest, files, units, dirs, observed=None):
    if record is None:
        return ["no record of a full converge"]
    problems = []
    if record.get("digest") != digest:
        problems.append("the role's inputs changed")
    if record.get("observed") != observed:
        problems.append("what the role observes changed")
    recorded = record.get("files", {})
    for path in files:
        now = fingerprint(path)
        if now is None:
            problems.append(f"{path} is missing")
        elif path not in recorded:
            problems.append(f"{path} was not recorded")
        elif now != recorded[path]:
            changed = sorted(key for key in set(now) | set(recorded[path]) if now.get(key) != recorded[path].get(key))
            problems.append("{} changed ({})".format(path, ", ".join(changed)))
    for unit, state in unit_states(module, units).items():
        if state.get("ActiveState") != "active":
            problems.append("{} is {}".format(unit, state.get("ActiveState", "unknown")))
        if state.get("UnitFileState") not in ("enabled", "static", "indirect", "generated"):
            problems.append("{} is {}".format(unit, state.get("UnitFileState") or "not installed"))
    for path in dirs:
        if not os.path.isdir(path):
            problems.append(f"{path} is not a directory")
    return problems


def write_record(path, content):
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    temporary = f"{path}.{os.getpid()}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(content)
    os.rename(temporary, path)


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "digest": {"type": "str"},
            "files": {"type": "list", "elements": "path", "default": []},
            "units": {"type": "list", "elements": "str", "default": []},
            "dirs": {"type": "list", "elements": "path", "default": []},
            "observed": {"type": "raw"},
            "state": {"type": "str", "choices": ["query", "present", "absent"], "default": "query"},
        },
        required_if=[("state", "query", ("digest",)), ("state", "present", ("digest",))],
        supports_check_mode=True,
    )
    params = module.params
    path, state = params["path"], params["state"]

    if state == "absent":
        changed = os.path.lexists(path)
        if changed and not module.check_mode:
            os.unlink(path)
        module.exit_json(changed=changed, current=False, problems=[])

    if state == "query":
        problems = problems_of(
            module,
            read_record(path),
            params["digest"],
            params["files"],
            params["units"],
            params["dirs"],
            canonical(params["observed"]),
        )
        module.exit_json(changed=False, current=not problems, problems=problems, digest=params["digest"])

    files = {}
    for file_path in params["files"]:
        found = fingerprint(file_path)
        if found is None:
            module.fail_json(msg=f"{file_path} does not exist: a managed file the converge should have made")
        files[file_path] = found
    record = {"version": VERSION, "digest": params["digest"], "files": files, "observed": canonical(params["observed"])}
    content = json.dumps(record, indent=1, sort_keys=True)
    try:
        with open(path) as handle:
            changed = handle.read() != content
    except OSError:
        changed = True
    if changed and not module.check_mode:
        write_record(path, content)
    module.exit_json(changed=changed, current=True, problems=[], digest=params["digest"])


if __name__ == "__main__":
    main()
