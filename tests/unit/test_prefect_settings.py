"""Every PREFECT_* setting the roles write into a settings file is a setting of the pinned Prefect,
or, for PREFECT_REDIS_MESSAGING_*, of the pinned prefect-redis: a misspelt name would be ignored
without a word."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.conftest import ROOT


def written_settings() -> set[str]:
    names = set()
    for role in ("prefect_server", "prefect_worker"):
        names |= set(re.findall(r"'(PREFECT_[A-Z0-9_]+)'", (ROOT / "roles" / role / "vars" / "main.yml").read_text()))
    return names


def test_the_roles_write_only_settings_prefect_knows(tmp_path):
    names = written_settings()
    assert "PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE" in names, "the pattern found the settings"
    assert len(names) > 15
    assert "PREFECT_REDIS_MESSAGING_URL" in names, "the HA settings were found"
    # prefect-redis' settings are not Prefect's: they are the fields of its RedisMessagingSettings,
    # read from PREFECT_REDIS_MESSAGING_<FIELD>.
    check = (
        "import json, sys, prefect.settings as s; from prefect_redis.client import RedisMessagingSettings as R; "
        "redis = lambda n: n.startswith('PREFECT_REDIS_MESSAGING_') "
        "and n.removeprefix('PREFECT_REDIS_MESSAGING_').lower() in R.model_fields; "
        "print(json.dumps(sorted(n for n in json.loads(sys.argv[1]) if not hasattr(s, n) and not redis(n))))"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            check,
            json.dumps(sorted(names | {"PREFECT_NOT_A_SETTING", "PREFECT_REDIS_MESSAGING_NOT_A_FIELD"})),
        ],
        env={"PREFECT_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == ["PREFECT_NOT_A_SETTING", "PREFECT_REDIS_MESSAGING_NOT_A_FIELD"], (
        "unknown to Prefect: " + result.stdout
    )
