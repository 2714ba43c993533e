#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine, and does nothing where
# it is already there: Debian packages (mosquitto for differential tests), a
# running Docker engine (the dockerd fallback), and locally built images.
set -euo pipefail

need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto mosquitto-clients)
# The HTML report is loaded in headless Chromium; JUnit output is checked with xmllint.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v xmllint >/dev/null 2>&1 || need_apt+=(libxml2-utils)
# netem's kernel backend: namespaces, veth, tc, iptables DROP, nsenter into a container's netns.
command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1 || need_apt+=(iproute2)
command -v iptables >/dev/null 2>&1 || need_apt+=(iptables)
command -v nsenter >/dev/null 2>&1 || need_apt+=(util-linux)
# Device clients the client conformance suite grades (clientconf): mosquitto_sub/pub
# come with mosquitto-clients above; Python paho-mqtt for Debian's own python3.
command -v mosquitto_sub >/dev/null 2>&1 || need_apt+=(mosquitto-clients)
/usr/bin/python3 -c 'import paho.mqtt.client' >/dev/null 2>&1 || need_apt+=(python3-paho-mqtt)
# Brokers for the container targets, installed apart so that a failure there costs only their
# targets: NATS (its MQTT listener; scripts/images/nats.sh) and RabbitMQ (MQTT plugin;
# scripts/images/rabbitmq.sh copies Debian's Erlang runtime and release into an image, with a
# static busybox for its sh scripts).
need_brokers=()
[ -x /usr/sbin/nats-server ] || need_brokers+=(nats-server)
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || need_brokers+=(rabbitmq-server)
[ -x /bin/busybox ] || need_brokers+=(busybox-static)
command -v file >/dev/null 2>&1 || need_brokers+=(file)

apt_install() {
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		echo "deps: cannot install $* (not root on Debian); tests that need them will skip" >&2
		return 0
	fi
	echo "deps: installing $*"
	if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }; then
		echo "deps: apt-get install $* failed; tests that need them will skip" >&2
	fi
}

if [ ${#need_apt[@]} -gt 0 ]; then
	apt_install "${need_apt[@]}"
fi
if [ ${#need_brokers[@]} -gt 0 ]; then
	apt_install "${need_brokers[@]}"
fi

# A Docker engine: use the running one, else start dockerd from Debian's docker.io.
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
	:
elif [ "$(id -u)" = 0 ]; then
	command -v dockerd >/dev/null 2>&1 || apt_install docker.io
	if command -v dockerd >/dev/null 2>&1; then
		echo "deps: starting dockerd"
		(dockerd >/tmp/mqttfleet-dockerd.log 2>&1 &)
		for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
		docker info >/dev/null 2>&1 || echo "deps: dockerd did not come up (see /tmp/mqttfleet-dockerd.log); container tests will skip" >&2
	fi
else
	echo "deps: no Docker engine and not root; container tests will skip" >&2
fi

# Local images (no registry here); each script is idempotent.
for s in scripts/images/*.sh; do
	[ -e "$s" ] || continue
	bash "$s" || echo "deps: $s failed; tests using that image will skip" >&2
done
