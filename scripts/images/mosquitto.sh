#!/usr/bin/env bash
# Builds the local Mosquitto image the conformance suite uses where no registry
# serves eclipse-mosquitto: a FROM scratch image holding Debian's
# /usr/sbin/mosquitto, every shared library ldd lists for it, the config in
# deploy/images/mosquitto/ and the passwd/group lines of the user it runs as.
# Idempotent: does nothing when the image exists (FORCE=1 rebuilds).
set -euo pipefail

IMAGE="${MQTTFLEET_MOSQUITTO_IMAGE:-mqttfleet/mosquitto:2.0.11}"
BIN=/usr/sbin/mosquitto
here="$(cd "$(dirname "$0")/../.." && pwd)"

# shellcheck source=common.bash
. "$here/scripts/images/common.bash"
# RECIPE changes when what goes into the image does: an image built by an
# older recipe is rebuilt. 2: libgcc_s.so.1, which glibc loads at run time
# when a thread exits (Mosquitto's bridge resolves its address in one).
RECIPE=2
image_current "$IMAGE" "$RECIPE"
if [ ! -x "$BIN" ]; then
	echo "images/mosquitto: $BIN missing (apt-get install mosquitto); cannot build $IMAGE" >&2
	exit 1
fi

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/etc" "$ctx/rootfs/usr/sbin" "$ctx/rootfs/tmp"
cp "$BIN" "$ctx/rootfs/usr/sbin/mosquitto"
# ldd prints "name => /path (addr)" or "/path (addr)" for the loader.
# ldd does not list what glibc dlopens: libgcc_s.so.1 (pthread_exit and
# pthread_cancel unwind with it; without it a thread's exit aborts the broker).
gcc_s="$(ldconfig -p | awk '/libgcc_s\.so\.1 .*x86-64|libgcc_s\.so\.1 .*=> \// {print $NF; exit}')"
copy_libs "$ctx/rootfs" "$BIN"
if [ -n "$gcc_s" ]; then
	mkdir -p "$ctx/rootfs$(dirname "$gcc_s")"
	cp -L "$gcc_s" "$ctx/rootfs$gcc_s"
fi
printf 'root:x:0:0:root:/:/sbin/nologin\nmosquitto:x:1883:1883:mosquitto:/:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\nmosquitto:x:1883:\n' >"$ctx/rootfs/etc/group"
chmod 1777 "$ctx/rootfs/tmp"
# One config for the image and the target: targets/mosquitto.conf (embedded there).
cp "$here/deploy/images/mosquitto/Dockerfile" "$here/targets/mosquitto.conf" "$ctx/"

version="$({ "$BIN" -h 2>/dev/null || true; } | awk '/mosquitto version/{print $3; exit}')"
echo "images/mosquitto: building $IMAGE from $BIN ${version:-}"
build_image "$IMAGE" "$RECIPE" "$version" "$ctx"
