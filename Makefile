# baleine: `make demo` and `make test` on a fresh Debian/Ubuntu machine, as root.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: help deps test unit lint demo demo-down bench zipapp clean

help:
	@echo "make test       install what is missing, run the whole suite (root, private namespaces)"
	@echo "make demo       install what is missing, start a small web farm on this host"
	@echo "make demo-down  remove everything the demo made"
	@echo "make lint       ruff"
	@echo "make bench      measure against podman (installs podman, runc)"

deps: $(STAMP)
	@scripts/ensure-deps

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

bench: deps
	scripts/ensure-deps podman runc
	scripts/isolated $(VENV)/bin/python bench/start.py

clean:
	rm -rf $(VENV) build dist *.egg-info
