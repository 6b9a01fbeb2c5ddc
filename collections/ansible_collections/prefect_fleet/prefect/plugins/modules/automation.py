#!/usr/bin/python
# Copyright: prefect-fleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: manage a Prefect 3 automation (trigger + actions) through the REST API."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: automation
short_description: Manage a Prefect 3 automation
description:
  - Creates, updates or deletes an automation (a trigger and the actions it fires) through
    Prefect's REST API, idempotently. The automation is found by its name, which must therefore be
    unique; two automations of that name are an error that names their ids.
  - I(trigger) and I(actions) take the API's own JSON shape (as C(prefect automation inspect
    --json) prints it). Only the keys given are compared, so fields the server fills in (ids,
    defaults) do not count as changes; lists of plain values compare as sets, as Prefect stores
    them.
  - Supports check mode and diff mode.
options:
  name:
    description: Automation name, unique on the server.
    type: str
    required: true
  state:
    description: Whether the automation exists.
    type: str
    choices: [present, absent]
    default: present
  description:
    description: Free text shown in the UI.
    type: str
    default: ""
  enabled:
    description: Whether the server evaluates the automation.
    type: bool
    default: true
  tags:
    description: Tags of the automation.
    type: list
    elements: str
    default: []
  trigger:
    description:
      - The trigger, as the API takes it (C(type) C(event), C(compound), ...). Required when
        I(state=present).
    type: dict
  actions:
    description: The actions fired when the trigger fires. Required when I(state=present).
    type: list
    elements: dict
extends_documentation_fragment:
  - prefect_fleet.prefect.api
author:
  - prefect-fleet maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Mark flow runs whose heartbeats stopped (Prefect's "zombie" recipe)
  prefect_fleet.prefect.automation:
    api_url: "{{ fleet_prefect_api_url }}"
    name: Crash zombie flows
    trigger:
      type: event
      posture: Proactive
      after: [prefect.flow-run.heartbeat]
      expect: [prefect.flow-run.heartbeat, prefect.flow-run.Completed, prefect.flow-run.Failed,
               prefect.flow-run.Cancelled, prefect.flow-run.Crashed]
      match: {prefect.resource.id: [prefect.flow-run.*]}
      for_each: [prefect.resource.id]
      threshold: 1
      within: 90
    actions:
      - type: change-flow-run-state
        state: CRASHED
        message: No heartbeat for 90 s
"""

RETURN = r"""
automation:
  description: The automation as the API returned it after the change (or as it is, with no change).
  returned: when state is present
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.prefect_fleet.prefect.plugins.module_utils.api import (
    API_ARGUMENT_SPEC,
    PrefectAPI,
    PrefectAPIError,
    path_segment,
)


def covers(current, desired):
    """Whether `current` (as the server returns it) holds every key and value of `desired`.

    Dicts: each desired key, recursively. Lists of dicts: element by element, same length. Other
    lists: as sets (the API stores after/expect/for_each as sets and returns them in any order).
    """
    if isinstance(desired, dict):
        return isinstance(current, dict) and all(
            key in current and covers(current[key], value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        if not isinstance(current, list) or len(current) != len(desired):
            return False
        if any(isinstance(value, (dict, list)) for value in desired):
            return all(covers(c, d) for c, d in zip(current, desired))  # noqa: B905 - lengths checked; modules run on Python 3.8+
        return sorted(map(str, current)) == sorted(map(str, desired))
    if isinstance(desired, float) or isinstance(current, float):
        return current is not None and float(current) == float(desired)
    return current == desired


def main():
    argument_spec = dict(
        API_ARGUMENT_SPEC,
        name={"type": "str", "required": True},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        description={"type": "str", "default": ""},
        enabled={"type": "bool", "default": True},
        tags={"type": "list", "elements": "str", "default": []},
        trigger={"type": "dict"},
        actions={"type": "list", "elements": "dict"},
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[("state", "present", ("trigger", "actions"))],
    )
    params = module.params
    api = PrefectAPI(module)
    name = params["name"]

    try:
        found = api.request("POST", "/automations/filter", {"automations": {"name": {"any_": [name]}}})
        if len(found) > 1:
            module.fail_json(
                msg="{} automations are named {!r} ({}): this module needs the name to be unique; "
                "delete the extra ones".format(len(found), name, ", ".join(a["id"] for a in found))
            )
        current = found[0] if found else None

        if params["state"] == "absent":
            if current is None:
                module.exit_json(changed=False)
            if not module.check_mode:
                api.request("DELETE", "/automations/" + path_segment(current["id"]))
            module.exit_json(changed=True, diff={"before": {"name": name}, "after": {}})

        desired = {
            "name": name,
            "description": params["description"],
            "enabled": params["enabled"],
            "tags": params["tags"],
            "trigger": params["trigger"],
            "actions": params["actions"],
        }
        if current is None:
            if not module.check_mode:
                created = api.request("POST", "/automations/", desired)
                module.exit_json(changed=True, diff={"before": {}, "after": desired}, automation=created)
            module.exit_json(changed=True, diff={"before": {}, "after": desired}, automation=desired)

        changed = [key for key, value in desired.items() if not covers(current.get(key), value)]
        if not changed:
            module.exit_json(changed=False, automation=current)
        before = {key: current.get(key) for key in changed}
        after = {key: desired[key] for key in changed}
        if not module.check_mode:
            # PUT replaces the whole automation; the server keeps its id.
            path = "/automations/" + path_segment(current["id"])
            api.request("PUT", path, desired)
            current = api.request("GET", path)
        module.exit_json(changed=True, diff={"before": before, "after": after}, automation=current)
    except PrefectAPIError as error:
        module.fail_json(msg=str(error))


if __name__ == "__main__":
    main()
