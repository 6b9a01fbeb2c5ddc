# Copyright: prefect-fleet maintainers
# SPDX-License-Identifier: Apache-2.0
"""Lookup: which certificates on the controller are missing or end within a number of days."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: certificates_due
short_description: The certificates that are missing, unreadable or end soon
description:
  - Returns the paths, among the given ones, of the files that are missing, are no PEM X.509 certificate, or whose
    certificate ends within O(days) days from now. A role that renews a certificate within that many days of its
    end puts this list in the digest of its inputs (P(prefect_fleet.prefect.inputs_digest#lookup)), so that a
    converge that would otherwise change nothing issues again when a certificate comes due.
  - Reads on the controller, with the C(cryptography) library that M(community.crypto.x509_certificate) uses there.
options:
  _terms:
    description: Paths of PEM certificates on the controller.
    type: list
    elements: path
    required: true
  days:
    description: How many days before its end a certificate is due.
    type: int
    required: true
author:
  - prefect-fleet maintainers (!UNKNOWN)
"""

EXAMPLES = r"""
- name: The host's certificate, if it is due
  ansible.builtin.debug:
    msg: "{{ query('prefect_fleet.prefect.certificates_due', '/etc/ca/hosts/web-01.crt', days=30) }}"
"""

RETURN = r"""
_raw:
  description: The paths that are due, in the order given.
  type: list
  elements: path
"""

import datetime

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

try:
    from cryptography import x509
except ImportError:  # pragma: no cover - the controller's requirements pin it
    x509 = None


def ends(path):
    """When the PEM certificate at `path` ends (UTC), or None if there is none to read."""
    try:
        with open(path, "rb") as handle:
            certificate = x509.load_pem_x509_certificate(handle.read())
    except (OSError, ValueError):
        return None
    return certificate.not_valid_after_utc


def due(paths, days, now=None):
    limit = (now or datetime.datetime.now(datetime.UTC)) + datetime.timedelta(days=days)
    return [path for path in paths if (end := ends(path)) is None or end <= limit]


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        if x509 is None:
            raise AnsibleLookupError("certificates_due needs the Python library cryptography on the controller")
        self.set_options(var_options=variables, direct=kwargs)
        return due(terms, self.get_option("days"))
