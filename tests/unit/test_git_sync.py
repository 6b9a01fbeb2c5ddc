"""`prefect-fleet git-sync` (prefect_fleet_host.git_sync), run for real on the controller against a local git remote: atomic
updates, stray local changes, a requirements change rebuilding the venv, an unreachable remote.
Its venvs install from the wheelhouse that `make wheelhouse` builds (no index)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml
from uv import find_uv_bin

from tests.conftest import ROOT

HOST_PACKAGE = ROOT / "host" / "src"
VERSION = yaml.safe_load((ROOT / "group_vars/all/fleet.yml").read_text())["fleet_prefect_version"]
WHEELHOUSE = ROOT / ".cache/wheelhouse" / f"prefect-{VERSION}.tar"
GIT = ["git", "-c", "user.name=tests", "-c", "user.email=tests@prefect-fleet.invalid"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    if not WHEELHOUSE.exists():
        pytest.fail(f"{WHEELHOUSE} is missing: run `make wheelhouse` first")
    root = tmp_path_factory.mktemp("sync")
    wheels = root / "wheels"
    with tarfile.open(WHEELHOUSE) as archive:
        archive.extractall(wheels, filter="data")
    remote, seed = root / "flows.git", root / "seed"
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(remote)], check=True)
    subprocess.run(["git", "clone", "-q", str(remote), str(seed)], check=True, capture_output=True)
    (seed / "flows").mkdir()
    (seed / "flows/requirements.txt").write_text("# nothing beyond Prefect\n")
    subprocess.run([*GIT, "-C", str(seed), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(seed), "commit", "-q", "-m", "seed"], check=True)
    subprocess.run(["git", "-C", str(seed), "push", "-q", "origin", "HEAD:production"], check=True)
    env = {
        **os.environ,
        "FLEET_REPO": f"file://{remote}",
        "FLEET_BRANCH": "production",
        "FLEET_ENV_DIR": str(root / "production"),
        "FLEET_PREFECT_VERSION": VERSION,
        # What prefect_base writes for uv (UV_*), and the uv it installs (FLEET_UV): here the
        # controller's, which requirements.txt pins as the hosts' constraints do.
        "UV_CONSTRAINT": str(ROOT / "constraints" / f"prefect-{VERSION}.txt"),
        "UV_OFFLINE": "1",
        "UV_FIND_LINKS": str(wheels),
        "FLEET_UV": find_uv_bin(),
        # As in the sync's unit, whose sandbox keeps the service user's home read-only: nothing
        # may need to write there (uv's cache would).
        "HOME": "/proc/none",
        "XDG_CACHE_HOME": "/proc/none",
    }
    return {"root": root, "remote": remote, "seed": seed, "env": env, "dir": root / "production"}


def sync(world, **overrides) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "prefect_fleet_host", "git-sync", "production"],
        env={**world["env"], "PYTHONPATH": str(HOST_PACKAGE), **overrides},
        capture_output=True,
        text=True,
        check=False,
    )


def head(path: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def push(world, message: str, requirements: str | None = None) -> str:
    seed = world["seed"]
    if requirements is not None:
        (seed / "flows/requirements.txt").write_text(requirements)
    else:
        (seed / "flows/CHANGE.md").write_text(message)
    return publish(world, message)


def publish(world, message: str) -> str:
    """Commit the seed as it is and push it to the branch; return the commit."""
    seed = world["seed"]
    subprocess.run([*GIT, "-C", str(seed), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(seed), "commit", "-q", "-m", message], check=True)
    subprocess.run(["git", "-C", str(seed), "push", "-q", "origin", "HEAD:production"], check=True)
    return head(seed)


def test_first_sync_checks_out_the_branch_head_and_builds_the_venv(world):
    result = sync(world)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"updated none -> {head(world['seed'])}")
    assert "venv " in result.stdout
    current = world["dir"] / "current"
    assert current.is_symlink()
    assert head(current) == head(world["seed"])
    assert (world["dir"] / "venv/bin/prefect").exists()
    assert not (world["dir"] / ".restart-worker").exists()
    # uv built it: the pinned Prefect, byte-compiled at install (a service user that cannot write
    # the venv would otherwise compile every module on every start).
    python = world["dir"] / "venv/bin/python"
    found = subprocess.run([python, "-c", "import prefect; print(prefect.__version__)"], capture_output=True, text=True)
    assert found.stdout.strip() == VERSION, found.stderr
    package = Path(subprocess.run([python, "-c", "import prefect; print(prefect.__file__)"], capture_output=True,
                                  text=True, check=True).stdout.strip()).parent  # fmt: skip
    assert list((package / "__pycache__").glob("flows.*.pyc")), "prefect's modules are not byte-compiled"


def test_second_sync_changes_nothing(world):
    before = os.readlink(world["dir"] / "current")
    result = sync(world)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"unchanged {head(world['seed'])}"
    assert os.readlink(world["dir"] / "current") == before


def test_a_stray_local_change_gets_a_fresh_tree(world):
    current = world["dir"] / "current"
    old_tree = Path(os.readlink(current))
    (current / "flows/requirements.txt").write_text("edited by hand on the host\n")
    result = sync(world)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("updated ")
    assert Path(os.readlink(current)) != old_tree
    assert (current / "flows/requirements.txt").read_text() == "# nothing beyond Prefect\n"
    assert "venv " not in result.stdout, "the committed requirements did not change: the venv stays"


def test_untracked_files_such_as_pycache_do_not_make_a_new_tree(world):
    current = world["dir"] / "current"
    tree = os.readlink(current)
    (current / "flows/__pycache__").mkdir()
    (current / "flows/__pycache__/report.cpython-311.pyc").write_bytes(b"\0")
    for _ in range(2):
        result = sync(world)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("unchanged "), result.stdout
    assert os.readlink(current) == tree


def test_a_tree_a_process_still_works_in_outlives_newer_commits(world):
    """A run in flight keeps its tree however many commits land meanwhile (only unused old trees go)."""
    tree = Path(os.readlink(world["dir"] / "current"))
    runner = subprocess.Popen(["sleep", "120"], cwd=tree / "flows")
    try:
        for n in range(4):
            push(world, f"commit {n} while a run works in the old tree")
            assert sync(world).returncode == 0
        trees = sorted(p.name for p in (world["dir"] / "trees").iterdir())
        assert tree.name in trees, trees
        assert len(trees) == 4, f"the three newest plus the one in use, got {trees}"
    finally:
        runner.kill()
        runner.wait()
    assert sync(world).returncode == 0
    assert not tree.exists(), "an old tree nobody uses any more is dropped"


def test_a_new_commit_is_swapped_in(world):
    commit = push(world, "a change")
    result = sync(world)
    assert result.returncode == 0, result.stderr
    assert head(world["dir"] / "current") == commit


def test_a_requirements_change_builds_a_new_venv_and_asks_for_a_restart(world):
    old_venv = os.readlink(world["dir"] / "venv")
    push(world, "new requirement", requirements="# nothing beyond Prefect\n# and now a comment\n")
    result = sync(world)
    assert result.returncode == 0, result.stderr
    assert "venv " in result.stdout
    assert os.readlink(world["dir"] / "venv") != old_venv
    assert (world["dir"] / "venv/bin/prefect").exists()
    assert (world["dir"] / ".restart-worker").exists()


def test_each_environment_builds_its_own_venv_in_its_own_directory(world):
    """The same requirements in staging: a venv of staging's own (its service user writes it, no
    other environment runs it), under staging's directory, with the same key."""
    staging = world["root"] / "staging"
    result = sync(world, FLEET_ENV_DIR=str(staging))
    assert result.returncode == 0, result.stderr
    assert "venv " in result.stdout
    venv, production = Path(os.readlink(staging / "venv")), Path(os.readlink(world["dir"] / "venv"))
    assert venv.parent == staging / "venvs"
    assert production.parent == world["dir"] / "venvs"
    assert venv.name == production.name
    assert (venv / ".complete").exists()


def test_the_store_keeps_the_current_venv_the_newest_and_those_in_use(world):
    """Six venvs in production's store: the current one (the oldest), the two newest and one a
    process runs in stay; the rest go. (Four of the six are stand-ins: the clean-up reads only
    directories, their times and the processes' directories, and a real build costs seconds.)"""
    store = world["dir"] / "venvs"
    used = Path(os.readlink(world["dir"] / "venv"))
    unused = [p for p in store.iterdir() if not p.name.startswith(".") and p != used]
    assert unused, "the requirements change above left the previous venv in the store"
    stand_ins = [store / f"{n:016x}" for n in range(4)]
    for n, stand_in in enumerate(stand_ins):
        (stand_in / "bin").mkdir(parents=True)
        (stand_in / ".complete").touch()
        os.utime(stand_in, (100 + n, 100 + n))
    for old in [used, *unused]:
        os.utime(old, (1, 1))  # older than the stand-ins
    running = subprocess.Popen(["sleep", "60"], cwd=stand_ins[0])
    try:
        result = sync(world)
    finally:
        running.kill()
        running.wait()
    assert result.returncode == 0, result.stderr
    kept = sorted(p.name for p in store.iterdir() if not p.name.startswith("."))
    assert kept == sorted([used.name, stand_ins[0].name, stand_ins[2].name, stand_ins[3].name])
    assert (used / ".complete").exists()


def test_the_shared_store_of_the_layout_before_goes_once_no_environment_uses_it(world):
    """The host's store of the layout before (root/_venvs, shared by environments): a venv an
    environment still links to stays, the others go, and the store goes with its last venv."""
    from prefect_fleet_host.git_sync import prune_shared_store

    shared = world["root"] / "_venvs"
    linked, stale = shared / "0123456789abcdef", shared / "fedcba9876543210"
    for venv in (linked, stale):
        (venv / "bin").mkdir(parents=True)
    (shared / ".lock").touch()
    qa = world["root"] / "qa"  # an environment not synced in the new layout yet
    qa.mkdir()
    os.symlink(linked, qa / "venv")
    prune_shared_store(world["root"])
    assert linked.exists()
    assert not stale.exists()
    os.unlink(qa / "venv")
    prune_shared_store(world["root"])
    assert not shared.exists()


def test_without_uv_a_requirements_change_fails_clearly_and_keeps_the_venv(world):
    venv = os.readlink(world["dir"] / "venv")
    push(world, "needs a new venv", requirements="# nothing beyond Prefect\n# a third version\n")
    result = sync(world, FLEET_UV="", PATH="/usr/bin:/bin")
    assert result.returncode == 1
    assert "no uv to build the venv with" in result.stderr
    assert os.readlink(world["dir"] / "venv") == venv
    result = sync(world)  # uv back: the next sync builds it
    assert result.returncode == 0, result.stderr
    assert os.readlink(world["dir"] / "venv") != venv


def test_an_unreachable_remote_keeps_the_checkout_and_fails(world):
    before = os.readlink(world["dir"] / "current")
    result = sync(world, FLEET_REPO="file:///nonexistent/flows.git")
    assert result.returncode != 0
    assert "failed; keeping the current checkout" in result.stderr
    assert os.readlink(world["dir"] / "current") == before
    # Why, for the status; a sync that succeeds clears it.
    assert "failed; keeping the current checkout" in (world["dir"] / "sync-error").read_text()
    assert sync(world).returncode == 0
    assert not (world["dir"] / "sync-error").exists()


@pytest.mark.parametrize(
    ("link", "target"),
    [
        ("flows/requirements.txt", "/etc/prefect-worker/production.env"),  # the file itself
        ("flows/requirements.txt", "../../../../settings.env"),  # relative, out of the tree
        ("flows", "/etc/prefect-worker"),  # a directory on the way
    ],
)
def test_a_requirements_file_leading_out_of_the_checkout_is_refused_before_it_is_current(world, link, target):
    """A branch's symbolic link is checked out as a link; followed, uv would read (and print) the
    file it points at. The commit is refused: `current` and the venv stay, nothing of it runs,
    and the sync fails naming the link, in its log and its error record."""
    seed = world["seed"]
    before = (os.readlink(world["dir"] / "current"), os.readlink(world["dir"] / "venv"))
    kept = seed / "kept"
    os.rename(seed / link, kept)
    try:
        os.symlink(target, seed / link)
        pushed = publish(world, f"link {link}")
        result = sync(world)
        assert result.returncode == 1, result.stdout
        expected = f"commit {pushed[:12]} refused: {link} -> {target} leads out of the checkout"
        assert expected in result.stderr
        assert expected in (world["dir"] / "sync-error").read_text()
        assert (os.readlink(world["dir"] / "current"), os.readlink(world["dir"] / "venv")) == before
        assert not list((world["dir"] / "trees").glob(".incoming-*")), "the refused checkout is left behind"
    finally:
        (seed / link).unlink()
        os.rename(kept, seed / link)
        publish(world, f"undo {link}")
    result = sync(world)
    assert result.returncode == 0, result.stderr
    assert not (world["dir"] / "sync-error").exists()
