"""Options every prefect_* module shares: how to reach and authenticate to the Prefect API."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  api_url:
    description: Prefect API URL, for example C(http://atd-prefect-01:4200/api).
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
  timeout:
    description: Seconds to wait for each API call.
    type: int
    default: 30
"""
