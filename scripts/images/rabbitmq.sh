#!/usr/bin/env bash
# Builds the local RabbitMQ image (MQTT plugin on) from Debian's
# rabbitmq-server: a FROM scratch image holding /usr/lib/erlang and
# /usr/lib/rabbitmq, every shared library ldd lists for their ELF files, a
# static busybox as /bin/sh and the tools the release's scripts call, and
# targets/rabbitmq.conf. Idempotent (FORCE=1 rebuilds).
set -euo pipefail

IMAGE="${MQTTFLEET_RABBITMQ_IMAGE:-mqttfleet/rabbitmq:3.10.8}"
here="$(cd "$(dirname "$0")/../.." && pwd)"

# shellcheck source=common.bash
. "$here/scripts/images/common.bash"
RECIPE=1
image_current "$IMAGE" "$RECIPE"
for need in /usr/lib/rabbitmq/bin/rabbitmq-server /usr/lib/erlang/bin/erl /bin/busybox; do
	if [ ! -e "$need" ]; then
		echo "images/rabbitmq: $need missing (apt-get install rabbitmq-server busybox-static); cannot build $IMAGE" >&2
		exit 0
	fi
done

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/lib" "$root/bin" "$root/etc/rabbitmq" "$root/var/lib/rabbitmq" "$root/var/log/rabbitmq" "$root/tmp"
cp -a /usr/lib/erlang /usr/lib/rabbitmq "$root/usr/lib/"
cp /bin/busybox "$root/bin/busybox"
for tool in sh dirname basename readlink sed tr cut grep head tail cat uname id hostname sleep mkdir rm env expr awk ls printf test echo chmod wc sort df; do
	ln -sf busybox "$root/bin/$tool"
done
mkdir -p "$root/usr/bin"
ln -sf /bin/env "$root/usr/bin/env"
# The shared libraries of every ELF file of the runtime and the release (the crypto NIF needs libcrypto).
mapfile -t elfs < <(find /usr/lib/erlang /usr/lib/rabbitmq -type f \( -perm -u+x -o -name '*.so' \) -print0 | xargs -0 -r file | awk -F: '/ELF/{print $1}')
copy_libs "$root" "${elfs[@]}" /bin/busybox # busybox-static needs none; a dynamic one its libc
printf 'root:x:0:0:root:/:/bin/sh\nrabbitmq:x:999:999:rabbitmq:/var/lib/rabbitmq:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\nrabbitmq:x:999:\n' >"$root/etc/group"
printf '127.0.0.1 localhost\n' >"$root/etc/hosts"
# COPY makes everything root-owned: the data and log directories are left open to the broker user.
chmod 1777 "$root/var/lib/rabbitmq" "$root/var/log/rabbitmq"
chmod 1777 "$root/tmp"
cp "$here/deploy/images/rabbitmq/Dockerfile" "$here/targets/rabbitmq.conf" "$ctx/"
echo '[rabbitmq_mqtt].' >"$ctx/enabled_plugins"

version="$(ls /usr/lib/rabbitmq/lib | sed -n 's/^rabbitmq_server-//p' | head -1)"
echo "images/rabbitmq: building $IMAGE from Debian's rabbitmq-server ${version:-}"
build_image "$IMAGE" "$RECIPE" "$version" "$ctx"
