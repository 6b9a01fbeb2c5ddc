#!/usr/bin/env bash
# Build the lab hosts' base image (Debian 12, systemd as PID 1, sshd, python3) locally with
# debootstrap, since no container registry is reachable. The image is tagged with a hash of its
# recipe (this script, the package list, the apt mirror and the CA bundle), so a second run reuses
# it and any change to the recipe builds a new one.
# Usage: lab/build-image.sh [IMAGE_NAME]   prints the image reference on stdout.
set -euo pipefail

name=${1:-prefect-fleet-lab}
here=$(cd "$(dirname "$0")" && pwd)
ca_bundle=${LAB_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
packages=systemd,systemd-sysv,dbus,python3,python3-venv,python3-apt,python3-packaging,git,openssh-server,ca-certificates,sudo,iproute2,procps,less

# The mirror is the one this machine's apt already uses: never hard-coded.
mirror=${LAB_DEBIAN_MIRROR:-}
if [[ -z $mirror ]]; then
  mirror=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
fi
if [[ -z $mirror ]]; then
  mirror=$(awk '$1 == "deb" && $0 ~ / bookworm / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
[[ -n $mirror ]] || { echo "build-image: no Debian mirror found in /etc/apt; set LAB_DEBIAN_MIRROR" >&2; exit 2; }

ca_hash=none
[[ -f $ca_bundle ]] && ca_hash=$(sha256sum "$ca_bundle" | cut -c1-64)
recipe_hash=$( { cat "$here/build-image.sh"; echo "$packages $mirror $ca_hash"; } | sha256sum | cut -c1-12)
image="$name:$recipe_hash"

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "build-image: reusing $image" >&2
  echo "$image"
  exit 0
fi

command -v debootstrap >/dev/null || { echo "build-image: debootstrap is not installed" >&2; exit 2; }
root=$(mktemp -d /var/tmp/lab-rootfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "build-image: debootstrap bookworm from $mirror into $root" >&2
debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >&2

# Trust the controller's CA bundle (a TLS-inspecting proxy's CA reaches pip and apt this way).
if [[ -f $ca_bundle ]]; then
  install -m 0644 "$ca_bundle" "$root/usr/local/share/ca-certificates/lab-controller-bundle.crt"
  chroot "$root" update-ca-certificates >/dev/null 2>&1 || true
fi
# Host keys are made per container at its first boot, not baked into the image.
rm -f "$root"/etc/ssh/ssh_host_*
mkdir -p "$root/etc/systemd/system/ssh.service.d"
cat > "$root/etc/systemd/system/ssh.service.d/lab-hostkeys.conf" <<'UNIT'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
UNIT
chroot "$root" systemctl enable ssh.service >/dev/null 2>&1
# Units that have nothing to do in a container.
for unit in getty@tty1.service console-getty.service systemd-udevd.service systemd-udev-trigger.service \
            systemd-firstboot.service sys-kernel-config.mount sys-kernel-debug.mount; do
  chroot "$root" systemctl mask "$unit" >/dev/null 2>&1 || true
done
install -d -m 0700 "$root/root/.ssh"
: > "$root/etc/machine-id"
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" > "$root/etc/apt/sources.list"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
# No package lists ship in the image: mark them stale so the roles' apt tasks refresh them.
touch -d @0 "$root/var/lib/apt/lists"

tar -C "$root" -c . | docker import \
  --change 'ENV container=docker' \
  --change 'CMD ["/sbin/init"]' - "$image" >&2
echo "build-image: built $image" >&2
echo "$image"
