# mqttfleet — build, test and benchmark targets. `make test` is the README's
# test command and what .ci/run calls: it installs what the tests need first.

GO        ?= go
PKGS      ?= ./...
FUZZTIME  ?= 10s
BENCHTIME ?= 1s

# testcontainers-go settings for machines without a registry (see docs/environment.md):
# the reaper image cannot be pulled, and /.dockerenv must not make it dial the gateway.
export TESTCONTAINERS_RYUK_DISABLED := true
export TESTCONTAINERS_HOST_OVERRIDE := 127.0.0.1
# No registry here: the Mosquitto target uses the image `make images` builds from Debian's package.
export MQTTFLEET_MOSQUITTO_IMAGE ?= mqttfleet/mosquitto:2.0.11

CONFORMANCE_TARGETS ?= inprocess,mosquitto,nats,rabbitmq
CONFORMANCE_OUT     ?= results/conformance

.PHONY: all build deps test vet fmt-check unit fuzz fuzz-long bench run images conformance demo clean shards k8s-manifests matrix

all: build

build:
	$(GO) build -buildvcs=auto -o bin/mqttfleet ./cmd/mqttfleet

## deps: Debian packages the tests use (mosquitto), a Docker engine, local images.
deps:
	bash scripts/deps.sh

vet:
	$(GO) vet $(PKGS)

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

unit:
	$(GO) test -count=1 -timeout 30m $(PKGS)

# `unit` runs every fuzz target on its seeds and its testdata/fuzz regressions. Exploring for
# new inputs is not part of `test`: a gate must give the same answer twice on the same commit.
test: deps vet fmt-check unit

## fuzz: explore with every fuzz target for a bounded time (FUZZTIME each); a crasher it finds is
## written to testdata/fuzz and from then on `make test` replays it.
fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

## fuzz-long: the documented 10-minute run per target.
fuzz-long:
	bash scripts/fuzz.sh 10m

## matrix: conformance and the scenario library against every broker in MATRIX_TARGETS (those that cannot run
## here are skipped), published as docs/matrix.md and docs/matrix.html; the runs' files stay in matrix-out/.
MATRIX_TARGETS ?= inprocess,mosquitto,nats,rabbitmq
matrix: images
	$(GO) build -o bin/mqttfleet ./cmd/mqttfleet
	rm -rf matrix-out && mkdir -p matrix-out/scenarios
	bin/mqttfleet conformance --target $(MATRIX_TARGETS) --results matrix-out/conformance.json || true
	for t in $(subst $(comma), ,$(MATRIX_TARGETS)); do for f in scenarios/library/*.yaml; do \
		bin/mqttfleet run --target $$t --progress off --out matrix-out/scenarios/$$t/$$(basename $$f .yaml) $$f >/dev/null 2>&1 || true; \
	done; done
	bin/mqttfleet report matrix --conformance matrix-out/conformance.json --scenarios matrix-out/scenarios --md docs/matrix.md --html docs/matrix.html

## shards: rehearse the Kubernetes Indexed Job of deploy/k8s on this machine: N shard processes of the
## 16,000-device fleet (N=4: 4 x 4,000) against the reference broker, merged into shards-out/report.html.
comma := ,
N ?= 4
shards:
	$(GO) build -o bin/mqttfleet ./cmd/mqttfleet
	mkdir -p shards-out
	bin/mqttfleet shards manifests --profile deploy/k8s/fleet-profile.yaml --shards $(N) -o shards-out/fleet.yaml
	bin/mqttfleet shards rehearse --manifests shards-out/fleet.yaml --out shards-out

## k8s-manifests: regenerate deploy/k8s/fleet.yaml (4 shards) from deploy/k8s/fleet-profile.yaml.
k8s-manifests:
	$(GO) run ./cmd/mqttfleet shards manifests --profile deploy/k8s/fleet-profile.yaml --shards 4 -o deploy/k8s/fleet.yaml

## images: build the local container images (idempotent; no registry needed).
images:
	@for s in scripts/images/*.sh; do bash "$$s" || exit 1; done

## conformance: MQTT 3.1.1 suite against CONFORMANCE_TARGETS; JUnit + matrix in CONFORMANCE_OUT.
conformance: images
	MQTTFLEET_TARGETS=$(CONFORMANCE_TARGETS) MQTTFLEET_CONFORMANCE_OUT=$(CONFORMANCE_OUT) $(GO) test -count=1 -timeout 10m ./conformance/

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)

## demo: the README's main job — a one-minute scenario on the embedded broker; prints the report's path.
demo: build
	./bin/mqttfleet run scenarios/demo.yaml

## run: the reference broker on 127.0.0.1:1883 until Ctrl-C.
run: build
	./bin/mqttfleet broker

clean:
	rm -rf bin results
