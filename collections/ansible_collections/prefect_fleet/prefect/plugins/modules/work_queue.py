#!/usr/bin/python
# Copyright: prefect-fleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: manage a work queue of a Prefect 3 work pool through the REST API."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: work_queue
short_description: Manage a work queue of a Prefect 3 work pool
description:
  - Creates, updates or deletes a work queue inside a work pool through Prefect's REST API,
    idempotently.
  - In this fleet a host label (C(atd-data02)) is a work queue in each environment's pool.
  - Supports check mode and diff mode.
options:
  pool:
    description: Name of the work pool; it must exist.
    type: str
    required: true
  name:
    description: Queue name.
    type: str
    required: true
  state:
    description: Whether the queue exists.
    type: str
    choices: [present, absent]
    default: present
  description:
    description: Free text shown in the UI.
    type: str
  concurrency_limit:
    description: Most flow runs the queue runs at once; C(0) removes the limit.
    type: int
  priority:
    description: Queue priority in its pool, 1 the highest.
    type: int
  paused:
    description: Whether the queue is paused.
    type: bool
extends_documentation_fragment:
  - prefect_fleet.prefect.api
author:
  - prefect-fleet maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: A queue per host label in the production pool
  prefect_fleet.prefect.work_queue:
    api_url: "{{ fleet_prefect_api_url }}"
    auth_string: "{{ prefect_server_auth_string }}"
    pool: production
    name: atd-data02
"""

RETURN = r"""
queue:
  description: The queue as the API returned it after the change (or as it is, with no change).
  returned: when state is present
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.prefect_fleet.prefect.plugins.module_utils.api import (
    API_ARGUMENT_SPEC,
    PrefectAPI,
    PrefectAPIError,
    ensure_absent,
    ensure_present,
    given_fields,
    path_segment,
)


def main():
    argument_spec = dict(
        API_ARGUMENT_SPEC,
        pool={"type": "str", "required": True},
        name={"type": "str", "required": True},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
        description={"type": "str"},
        concurrency_limit={"type": "int"},
        priority={"type": "int"},
        paused={"type": "bool"},
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    api = PrefectAPI(module)
    pool_path = "/work_pools/" + path_segment(params["pool"])
    path = pool_path + "/queues/" + path_segment(params["name"])

    for key in ("concurrency_limit", "priority"):
        if params[key] is not None and params[key] < (0 if key == "concurrency_limit" else 1):
            module.fail_json(
                msg="{} must be {}, got {}".format(
                    key, "0 or more" if key == "concurrency_limit" else "1 or more", params[key]
                )
            )

    desired = given_fields(
        params,
        {
            "description": "description",
            "concurrency_limit": "concurrency_limit",
            "priority": "priority",
            "paused": "is_paused",
        },
    )

    try:
        if api.get_or_none(pool_path) is None:
            if params["state"] == "absent":
                module.exit_json(changed=False)
            module.fail_json(
                msg="work pool {} does not exist: create it first (prefect_fleet.prefect.work_pool)".format(
                    params["pool"]
                )
            )
        current = api.get_or_none(path)
        if params["state"] == "absent":
            ensure_absent(module, api, current, path, params["name"])
        body = dict(desired, name=params["name"])
        ensure_present(
            module,
            api,
            path,
            current,
            desired if current else body,
            lambda: api.request("POST", pool_path + "/queues", body),
            "queue",
        )
    except PrefectAPIError as error:
        module.fail_json(msg=str(error))


if __name__ == "__main__":
    main()
