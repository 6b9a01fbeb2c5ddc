#!/usr/bin/python
# Copyright: prefect-fleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Ansible module: a Prefect Webhook block, idempotently."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: webhook_block
short_description: Create, update or delete a Prefect Webhook block
description:
  - Makes the Webhook block O(name) call O(url) through Prefect's REST API, or deletes it. An automation's
    C(call-webhook) action names the block (see M(prefect_fleet.prefect.automation)).
  - The URL and headers often hold a token (a chat's incoming-webhook URL); they are C(no_log), compared with the
    block's current ones, and never returned.
  - Supports check mode. Diff mode shows only whether the block changes.
options:
  name:
    description: The block's name (lower-case letters, digits and dashes).
    type: str
    required: true
  url:
    description: The URL the webhook calls. Required when O(state=present).
    type: str
  method:
    description: The HTTP method.
    type: str
    choices: [GET, POST, PUT, PATCH, DELETE]
    default: POST
  headers:
    description: Headers sent with each call.
    type: dict
    default: {}
  allow_private_urls:
    description: Whether the URL may be a private address (a receiver inside the network).
    type: bool
    default: true
  verify:
    description: Whether to verify the receiver's TLS certificate.
    type: bool
    default: true
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
- name: The operations team's webhook
  prefect_fleet.prefect.webhook_block:
    api_url: "{{ fleet_prefect_api_url }}"
    auth_string: "{{ prefect_server_auth_string }}"
    name: fleet-notify-ops
    url: "{{ vault_ops_webhook_url }}"
  no_log: true
"""

RETURN = r"""
block:
  description: The block's name and id (never its URL or headers).
  returned: when state is present
  type: dict
"""

import re

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
        url={"type": "str", "no_log": True},
        method={"type": "str", "choices": ["GET", "POST", "PUT", "PATCH", "DELETE"], "default": "POST"},
        headers={"type": "dict", "no_log": True, "default": {}},
        allow_private_urls={"type": "bool", "default": True},
        verify={"type": "bool", "default": True},
        state={"type": "str", "choices": ["present", "absent"], "default": "present"},
    )
    module = AnsibleModule(
        argument_spec=argument_spec, supports_check_mode=True, required_if=[("state", "present", ("url",))]
    )
    params = module.params
    if params["url"] is not None and not re.match(r"^https?://[^/\s]+", params["url"]):
        module.fail_json(msg="url must be an http(s) URL")
    data = {
        "method": params["method"],
        "url": params["url"],
        "headers": params["headers"],
        "allow_private_urls": params["allow_private_urls"],
        "verify": params["verify"],
    }
    api = PrefectAPI(module)
    try:
        ensure_block_document(module, api, "webhook", params["name"], data, params["state"])
    except PrefectAPIError as error:
        module.fail_json(msg=str(error))


if __name__ == "__main__":
    main()
