#!/usr/bin/env bash
# Simulator benchmarks behind docs/benchmarks.md (## simulator).
#
#   bash simulator/bench/fleet.sh            # all runs, ~6 minutes
#   OUT=/tmp/b RUNS="ref-10k mosq-connect" bash simulator/bench/fleet.sh
#
# The broker under test runs in its own process (the reference broker via
# `mqttfleet broker`, or /usr/sbin/mosquitto with its open-file limit raised):
# a process holds at most ~19,900 sockets here, and 18,000 devices need
# 18,000 on each side. Runs to the same broker port are spaced so that the
# previous run's TIME_WAIT sockets (60 s) do not eat the ephemeral port range.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-bench-results}
RUNS=${RUNS:-"ref-10k mosq-10k ref-18k mosq-connect paho-2k native-2k"}
REF_PORT=${REF_PORT:-21883}
MOSQ_PORT=${MOSQ_PORT:-21884}
mkdir -p "$OUT"
go build -o bin/mqttfleet ./cmd/mqttfleet

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

bin/mqttfleet broker -listen "tcp://127.0.0.1:$REF_PORT" >"$OUT/ref-broker.log" 2>&1 &
pids+=($!)
if [ -x /usr/sbin/mosquitto ]; then
	printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_keepalive 65535\n' "$MOSQ_PORT" >"$OUT/mosquitto.conf"
	bash -c 'ulimit -n "$(ulimit -Hn)"; exec /usr/sbin/mosquitto -c "$0"' "$OUT/mosquitto.conf" >"$OUT/mosquitto.log" 2>&1 &
	pids+=($!)
fi
for port in "$REF_PORT" "$MOSQ_PORT"; do
	for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done

REF=127.0.0.1:$REF_PORT
MOSQ=127.0.0.1:$MOSQ_PORT
# 10,000 devices: keepalive 30 s, one QoS 1 message every 10 s each, each
# device subscribed to its own topic (end-to-end latency, loss), 60 s.
STEADY="--rate 10000 --interval 10s --qos 1 --keepalive 30s --duration 60s"

run() {
	local name=$1; shift
	echo "== $name: mqttfleet simulate $*" | tee "$OUT/$name.txt"
	bin/mqttfleet simulate --progress off --results "$OUT/$name.json" "$@" 2>&1 | tee -a "$OUT/$name.txt"
}

for r in $RUNS; do
	case $r in
	ref-10k) run ref-10k --broker "$REF" --devices 10000 $STEADY ;;
	mosq-10k) run mosq-10k --broker "$MOSQ" --devices 10000 $STEADY ;;
	ref-18k) run ref-18k --broker "$REF" --devices 18000 $STEADY ;;
	# Connect rate alone: all 10,000 start at once (rate 0), 96 handshakes in
	# flight, no subscriptions, no publishing.
	mosq-connect) run mosq-connect --broker "$MOSQ" --devices 10000 --rate 0 --echo=false --interval 1h --duration 5s ;;
	paho-2k) run paho-2k --driver paho --broker "$MOSQ" --devices 2000 $STEADY ;;
	native-2k) run native-2k --driver native --broker "$MOSQ" --devices 2000 $STEADY ;;
	# 10,000 MQTT 5.0 devices with topic aliases, one subscriber on fleet/#
	# (not in the default list: RUNS=ref-v5-10k-alias).
	ref-v5-10k-alias) run ref-v5-10k-alias --broker "$REF" --profile simulator/bench/v5-10k-alias.yaml ;;
	*) echo "unknown run $r" >&2; exit 2 ;;
	esac
done
