"""Options every prefect_* module shares: how to reach and authenticate to the Prefect API."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  api_url:
    description: Prefect API URL, for example C(https://atd-prefect-01:4200/api).
    type: str
    required: true
  auth_string:
    description: Basic auth C(user:password) when the server has C(PREFECT_SERVER_API_AUTH_STRING) set.
    type: str
    default: ""
  api_key:
    description:
      - A Prefect Cloud API key, sent as a bearer token (with O(api_url) a workspace's URL,
        C(https://api.prefect.cloud/api/accounts/<id>/workspaces/<id>)). Excludes O(auth_string).
    type: str
    default: ""
  validate_certs:
    description: Verify the server's TLS certificate.
    type: bool
    default: true
  ca_path:
    description:
      - A CA certificate file on the host that certifies the server (the fleet CA's); the only CA
        trusted then. Empty trusts the system's CAs.
    type: path
    default: ""
  timeout:
    description: Seconds to wait for each API call.
    type: int
    default: 30
"""
