# baleine: `make demo` and `make test` on a fresh Debian/Ubuntu machine, as root.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
BENCH_VENV := bench/.venv
BENCH_STAMP := $(BENCH_VENV)/.installed
BENCH ?= start density fleet push pull

.PHONY: help deps test unit lint demo demo-down bench zipapp clean

help:
	@echo "make test       install what is missing, run the whole suite (root, private namespaces)"
	@echo "make demo       install what is missing, start a small web farm on this host"
	@echo "make demo-down  remove everything the demo made"
	@echo "make lint       ruff"
	@echo "make bench      measure against podman, ansible, pyinfra, rsync (BENCH=start|density|fleet|push|pull)"

# Invoke never writes bytecode (nor does Python under PYTHONDONTWRITEBYTECODE): compile the
# control side here, or every task compiles it again (35 ms before its first SSH call).
deps: $(STAMP)
	@scripts/ensure-deps
	@$(VENV)/bin/python -m compileall -q fleet tasks.py >/dev/null

$(STAMP): pyproject.toml
	@scripts/ensure-deps
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,lint]'
	@touch $@

test: deps
	scripts/isolated $(VENV)/bin/python -m pytest -q tests

unit: deps
	$(VENV)/bin/python -m pytest -q tests -m "not integration"

lint: $(STAMP)
	$(VENV)/bin/ruff check fleet tests bench tasks.py
	$(VENV)/bin/ruff format --check fleet tests bench tasks.py

zipapp: $(STAMP)
	$(VENV)/bin/invoke build

demo: deps
	scripts/demo up

demo-down: $(STAMP)
	scripts/demo down

# make bench: every benchmark; make bench BENCH=fleet: one (start, density, fleet, push, pull).
bench: deps $(BENCH_STAMP)
	scripts/ensure-deps podman runc rsync
	for name in $(BENCH); do scripts/isolated $(BENCH_VENV)/bin/python bench/$$name.py || exit 1; done

# The peers and the plotting, in the benchmarks' own venv.
$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q --upgrade pip
	$(BENCH_VENV)/bin/pip install -q ansible-core pyinfra matplotlib -e .
	@touch $@

clean:
	rm -rf $(VENV) $(BENCH_VENV) build dist *.egg-info
