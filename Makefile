# rtcq: build, demo and test. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY := $(abspath $(VENV)/bin/python)

.PHONY: build demo test venv lint fmt clean-data

build:
	cargo build --release

# Build, start the emulator on a free loopback port, run the demo pipeline into ./data,
# print the summary and the files, stop the emulator.
demo: build
	scripts/demo.sh

venv: $(VENV)/.installed

$(VENV)/.installed: requirements-test.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

test: venv lint
	RTCQ_PYTHON=$(PY) cargo test --all-targets

fmt:
	cargo fmt --all
