"""The flows' virtualenv built by pip and by uv, side by side on a lab worker host (`make lab` first).

  python -m benchmarks.venv [ROUNDS] [INVENTORY]

Each round builds, on the last worker host, the venv a sync builds (Prefect at the fleet's pin and
the flows' requirements, from the host's wheelhouse and constraints, byte-compiled) twice, into
scratch directories: once the way the fleet did before uv (`python3 -m venv`, then its pip, with
the PIP_* settings prefect_base writes) and once the way the sync does now (the host's uv, with the
UV_* settings of the environment's settings file). The two alternate, so that both meet the same
machine. Printed per way: the median wall time and CPU time (the builds' processes, from the
host's rusage of its children) and the ratio of the medians. Numbers, not verdicts: nothing here
fails on a timing. The scratch directories are removed; the host's own venvs are not touched.
"""

from __future__ import annotations

import json
import statistics
import sys

from lab.fleet import Lab, workers

ENVIRONMENT = "production"
# Run on the host as root (python3 -), one build per call; prints {"wall": s, "cpu": s}.
BUILD = r"""
import json, os, resource, shlex, shutil, subprocess, sys, time
way, target = sys.argv[1], "/var/tmp/bench-venv-" + sys.argv[1]
settings = {}
for line in open("/etc/prefect-worker/{environment}.env"):
    if "=" in line and not line.startswith("#"):
        key, _, value = line.strip().partition("=")
        settings[key] = (shlex.split(value) or [""])[0]
version = settings["FLEET_PREFECT_VERSION"]
requirements = os.path.realpath("/opt/prefect/{environment}/current") + "/" + settings.get("FLEET_REQUIREMENTS", "flows/requirements.txt")
uv = {k: v for k, v in settings.items() if k.startswith("UV_") or k == "SSL_CERT_FILE"}
pip = {"PIP_CONSTRAINT": uv["UV_CONSTRAINT"], "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
if "UV_FIND_LINKS" in uv:
    pip.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=uv["UV_FIND_LINKS"])
env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root", **(uv if way == "uv" else pip)}
if way == "uv":
    steps = [[settings["FLEET_UV"], "venv", "--quiet", "--python", "python3", target],
             [settings["FLEET_UV"], "pip", "install", "--quiet", "--python", target + "/bin/python",
              "prefect==" + version, "--requirement", requirements]]
else:
    steps = [["python3", "-m", "venv", target],
             [target + "/bin/pip", "install", "--quiet", "prefect==" + version, "--requirement", requirements]]
shutil.rmtree(target, ignore_errors=True)
start, before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
for step in steps:
    subprocess.run(step, env=env, check=True)
after = resource.getrusage(resource.RUSAGE_CHILDREN)
wall = time.monotonic() - start
cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
found = subprocess.run([target + "/bin/python", "-c", "import prefect; print(prefect.__version__)"],
                       capture_output=True, text=True).stdout.strip()
compiled = bool(subprocess.run(["find", target, "-name", "*.pyc", "-path", "*prefect/__pycache__*", "-print", "-quit"],
                               capture_output=True, text=True).stdout.strip())
shutil.rmtree(target, ignore_errors=True)
print(json.dumps({"wall": wall, "cpu": cpu, "prefect": found, "compiled": compiled}))
"""


def build(lab: Lab, host: str, way: str) -> dict:
    script = BUILD.replace("{environment}", ENVIRONMENT)
    result = lab.ssh(host, f"python3 - {way}", input=script, timeout=900)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(rounds: int, inventory: str) -> int:
    lab = Lab.of(inventory)
    host = workers(lab)[-1]
    results: dict[str, list[dict]] = {"pip": [], "uv": []}
    print(f"{host}: the {ENVIRONMENT} flows' venv, {rounds} rounds, pip and uv alternating", flush=True)
    for n in range(rounds):
        for way in ("pip", "uv") if n % 2 == 0 else ("uv", "pip"):
            done = build(lab, host, way)
            assert done["prefect"], f"the {way} venv does not import prefect"
            results[way].append(done)
            print(f"  round {n + 1} {way:3s}: wall {done['wall']:6.1f} s  cpu {done['cpu']:6.1f} s"
                  f"  prefect {done['prefect']}  byte-compiled {done['compiled']}", flush=True)  # fmt: skip
    medians = {
        way: {key: statistics.median(r[key] for r in runs) for key in ("wall", "cpu")} for way, runs in results.items()
    }
    for way, m in medians.items():
        print(f"{way:3s}: median wall {m['wall']:6.1f} s   median cpu {m['cpu']:6.1f} s")
    print(
        f"pip/uv: wall {medians['pip']['wall'] / medians['uv']['wall']:.2f}x   "
        f"cpu {medians['pip']['cpu'] / medians['uv']['cpu']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 3, sys.argv[2] if len(sys.argv) > 2 else "inventories/lab")
    )
