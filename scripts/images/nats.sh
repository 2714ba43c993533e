#!/usr/bin/env bash
# Builds the local NATS image (MQTT listener on) from Debian's nats-server:
# a FROM scratch image holding /usr/sbin/nats-server, the libraries ldd lists
# for it and targets/nats.conf. Idempotent: does nothing when an image of
# this recipe exists (FORCE=1 rebuilds).
set -euo pipefail

IMAGE="${MQTTFLEET_NATS_IMAGE:-mqttfleet/nats:2.9.10}"
BIN=/usr/sbin/nats-server
here="$(cd "$(dirname "$0")/../.." && pwd)"

# shellcheck source=common.bash
. "$here/scripts/images/common.bash"
image_current "$IMAGE" 1
if [ ! -x "$BIN" ]; then
	echo "images/nats: $BIN missing (apt-get install nats-server); cannot build $IMAGE" >&2
	exit 0
fi

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/etc" "$ctx/rootfs/usr/sbin" "$ctx/rootfs/tmp"
cp "$BIN" "$ctx/rootfs/usr/sbin/nats-server"
copy_libs "$ctx/rootfs" "$BIN"
printf 'root:x:0:0:root:/:/sbin/nologin\nnats:x:4222:4222:nats:/:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\nnats:x:4222:\n' >"$ctx/rootfs/etc/group"
chmod 1777 "$ctx/rootfs/tmp"
cp "$here/deploy/images/nats/Dockerfile" "$here/targets/nats.conf" "$ctx/"

version="$("$BIN" --version 2>/dev/null | awk '{print $2}' | tr -d v)"
echo "images/nats: building $IMAGE from $BIN ${version:-}"
build_image "$IMAGE" 1 "$version" "$ctx"
