# rtcq: build, demo and test. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY := $(abspath $(VENV)/bin/python)

.PHONY: build demo test deps venv lint fmt clean-data image
# apt-get as root, through sudo otherwise.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# The job and the emulator (the demo's stand-in API); the image holds only the job.
build:
	cargo build --release --workspace --bins

VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)

# The container image, tagged with the crate's version (deploy/kubernetes/cronjob.yaml
# names the same tag).
image:
	docker build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) -t rtcq:$(VERSION) .

# Build, start the emulator on a free loopback port, run the demo pipeline into ./demo-data,
# print the summary and the files, stop the emulator.
demo: build
	scripts/demo.sh

# System packages the tests use: a real Prometheus Pushgateway (the push test starts
# one on a free loopback port), promtool (from Debian's prometheus package: the alert
# rules are checked and unit-tested) and Java 17 for pyspark. Skipped when already there.
deps:
	@if [ ! -x /usr/bin/prometheus-pushgateway ] || ! command -v promtool >/dev/null || ! command -v java >/dev/null; then \
	  $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus-pushgateway prometheus openjdk-17-jre-headless; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-test.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

# RTCQ_REQUIRE_ALL=1: a test that needs the venv, the Pushgateway, promtool or Java
# fails here instead of skipping (plain `cargo test` skips them where they are missing).
test: deps venv lint
	RTCQ_REQUIRE_ALL=1 RTCQ_PYTHON=$(PY) cargo test --workspace --all-targets --no-fail-fast
	cargo test --workspace --doc

fmt:
	cargo fmt --all
