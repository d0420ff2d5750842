# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test install lint

$(BIN)/zoufang: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/zoufang

## Install, create and seed the demo county (SQLite), serve it at http://127.0.0.1:5000
demo: install
	$(BIN)/zoufang db upgrade
	$(BIN)/zoufang seed-demo --if-empty
	$(BIN)/zoufang serve --host 127.0.0.1 --port 5000

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Install and run the whole suite: lint, types, tests on SQLite and PostgreSQL, browser tests
test: lint
	$(BIN)/python -m pytest
