# The two commands of the README:
#   make demo   -- set everything up, then run the end-to-end STL demo on embedded defaults
#   make test   -- set everything up, then run the whole test suite (what CI runs)
SHELL := /bin/bash
VENV ?= .venv
# Data: STL_DATA_DIR wins; else ../shared/data when present; else the user cache filled by `stl data fetch`.
SHARED_DATA := $(abspath ../shared/data)
export STL_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)),$(SHARED_DATA),)
export HF_HUB_OFFLINE ?= 1
export LANGSMITH_TRACING ?= false
export LANGGRAPH_CLI_NO_ANALYTICS ?= 1

.PHONY: setup demo test lint bench

setup:
	@bash tools/setup.sh

demo: setup
	@$(VENV)/bin/stl demo

test: setup
	@$(VENV)/bin/python -m pytest -q -rfEs

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: setup
	$(VENV)/bin/python tools/bench_models.py
	$(VENV)/bin/python tools/bench_webshop.py
	$(VENV)/bin/python tools/bench_search.py
