# vmux build, test and demo. Everything the tests and the demo need is
# installed here (make deps), never by hand. Most targets need root.

GO          ?= go
BIN         := bin/vmux
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Debian packages the tests, benchmarks and demo use (real peers and baselines).
APT_PKGS    := iperf3 faketime strace gdb iproute2 iputils-ping procps \
               redis-server memcached nginx-light default-jdk-headless \
               gcc libc6-dev make python3 perl nodejs libcap2-bin \
               chromium wrk etcd-server etcd-client opentracker aria2 mktorrent \
               postgresql fio \
               qemu-system-x86 linux-image-amd64 busybox-static
DEPS_STAMP  := /var/tmp/vmux-deps.$(shell echo $(APT_PKGS) | md5sum | cut -c1-12)

.PHONY: all build deps test lint unit demo bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/vmux

# deps installs the Debian packages once per machine (a stamp records it).
deps: $(DEPS_STAMP)
$(DEPS_STAMP):
	@if ! dpkg -s $(APT_PKGS) >/dev/null 2>&1; then \
	  echo "installing: $(APT_PKGS)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PKGS) >/dev/null; \
	fi
	@touch $@

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# -p 1: one package's tests at a time. Many of them measure this host (link
# latencies, CPU shares, timers across clock changes, pause RTTs); on a 2-core
# machine, packages run side by side took the CPU their neighbours measure
# (the whole suite is about 9 minutes this way).
unit:
	$(GO) test -race -count=1 -p 1 -timeout 20m ./...

# test: everything CI runs (.ci/run calls exactly this).
test: deps build lint unit

# demo: the Difference Engine on a heterogeneous set of live processes that
# the demo starts itself, then a DieCast scale-model experiment (redis and
# redis-benchmark as baseline, scaled at k=4 and naive; about 90 s) with
# its fidelity table (needs root). The experiment's results stay in
# bin/cast-demo (make clean removes them).
demo: deps build
	./$(BIN) mem demo
	rm -rf bin/cast-demo
	./$(BIN) cast run examples/redis.yaml --tdf 4 --repeat 1 -o bin/cast-demo

bench: deps build
	$(GO) test -run '^$$' -bench . -benchtime 2s ./...

clean:
	rm -rf bin
