"""The repository explains itself: no tracked file sends the reader to a document outside it."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import ROOT

# The developers keep notes in a directory beside the checkout, which never ships: no file may send
# a reader there, by a relative path or by one of its documents' names.
NOTES_DIR = "shared"
OUTSIDE = re.compile(rf"\.\./{NOTES_DIR}/|\b{NOTES_DIR}/[A-Z]+\.md\b|\b(DESIGN|STYLE)\.md\b")


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [name for name in out.split("\0") if name]


def test_no_file_refers_to_documents_outside_the_repository():
    files = tracked_files()
    assert len(files) > 100, "git ls-files found too little: the check would pass vacuously"
    offenders = []
    for name in files:
        path = ROOT / name
        if path.is_symlink() or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        offenders += [f"{name}:{n}" for n, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]
    assert not offenders, f"these lines point outside the repository: {offenders}"


def test_docs_named_in_the_repository_exist():
    named = set()
    for name in tracked_files():
        if name.endswith((".md", ".yml", ".py", ".sh", ".j2", ".cfg")) or name in ("Makefile",):
            named |= set(re.findall(r"\bdocs/[a-z0-9-]+\.md\b", (ROOT / name).read_text(errors="replace")))
    assert named, "no file names a document of docs/: the pattern is wrong"
    missing = sorted(doc for doc in named if not (ROOT / doc).is_file())
    assert not missing, f"named but missing: {missing}"
