# Quick start: `make demo` and `make test`. Both create/update .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export XIANKE_DATA_DIR ?= $(CURDIR)/var

.PHONY: venv demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: this exact release is a CPU build on disk; a looser pin pulls CUDA.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/xianke demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/xianke models build
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/xianke bench all

clean:
	rm -rf var .pytest_cache
