#!/usr/bin/env bash
# Build the hosts' wheelhouse for one Prefect version: a wheel for every package pinned in
# constraints/prefect-<version>.txt (the full, tested set a host's venv holds, whatever the host's
# Python), packed into a reproducible tar that the roles copy to hosts
# (prefect_server_wheelhouse_archive). Rebuilt only when the constraints file changes.
# Usage: lab/build-wheelhouse.sh VERSION [PYTHON]   prints the archive's path.
set -euo pipefail
version=${1:?usage: build-wheelhouse.sh VERSION [PYTHON]}
python=${2:-.venv/bin/python}
top=$(cd "$(dirname "$0")/.." && pwd)
constraints="$top/constraints/prefect-$version.txt"
[[ -f $constraints ]] || { echo "build-wheelhouse: no $constraints" >&2; exit 2; }
out="$top/.cache/wheelhouse"
archive="$out/prefect-$version.tar"
key=$( { sha256sum "$constraints" "$0" | cut -c1-64; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -c1-64)

if [[ -f $archive && -f $archive.key && $(cat "$archive.key") == "$key" ]]; then
  echo "build-wheelhouse: reusing $archive" >&2
  echo "$archive"
  exit 0
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$out"
echo "build-wheelhouse: collecting the wheels pinned in $constraints" >&2
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$dir" -r "$constraints" >&2
chmod 0755 "$dir"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$dir" -cf "$archive.tmp" .
mv "$archive.tmp" "$archive"
echo "$key" > "$archive.key"
echo "build-wheelhouse: $(tar -tf "$archive" | grep -c '\.whl$') wheels in $archive" >&2
echo "$archive"
