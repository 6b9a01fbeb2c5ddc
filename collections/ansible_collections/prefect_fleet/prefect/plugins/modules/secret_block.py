#!/usr/bin/python
# Copyright: prefect-fleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: a Prefect Secret block, idempotently."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: secret_block
short_description: Create, update or delete a Prefect Secret block
description:
  - Makes the Secret block O(name) hold O(value) through Prefect's REST API, or deletes it. Flows read it with
    C(Secret.load(name).get()), so the value never travels in a deployment's parameters or job variables.
  - The module reads the block's current value to compare it (the API returns it only when asked) and never
    returns or logs the value; its option is C(no_log).
  - Supports check mode. Diff mode shows only whether the value changes, never the value.
options:
  name:
    description: The block's name (lower-case letters, digits and dashes, as Prefect requires).
    type: str
    required: true
  value:
    description: The secret. Required when O(state=present).
    type: str
  state:
    description: Whether the block exists.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - prefect_fleet.prefect.api
author:
  - prefect-fleet maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: The warehouse password of production's flows
  prefect_fleet.prefect.secret_block:
    api_url: "{{ fleet_prefect_api_url }}"
    auth_string: "{{ prefect_server_auth_string }}"
    name: production-warehouse-password
    value: "{{ vault_warehouse_password }}"
  no_log: true
"""

RETURN = r"""
block:
  description: The block's name and id (never its value).
  returned: when state is present
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.prefect_fleet.prefect.plugins.module_utils.api import (
    API_ARGUMENT_SPEC,
    PrefectAPI,
    PrefectAPIError,
    ensure_block_document,
)


def main():
    argument_spec = dict(
        API_ARGUMENT_SPEC,
        name={"type": "str", "required": True},
        value={"type": "str", "no_log": True},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[("state", "present", ("value",))],
    )
    params = module.params
    api = PrefectAPI(module)
    try:
        ensure_block_document(module, api, "secret", params["name"], {"value": params["value"]}, params["state"])
    except PrefectAPIError as error:
        module.fail_json(msg=str(error))


if __name__ == "__main__":
    main()
