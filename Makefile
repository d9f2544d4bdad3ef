# The two commands of the README: `make run` and `make test` do all set-up themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	mkdir -p out
	$(BIN)/feagi-burst run --config configs/brain.toml --force --json out/summary.json

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/feagi-burst bench --neurons 1000000 --backend cpu --json out/bench-cpu-1m.json

soak: $(STAMP)
	$(BIN)/python -m pytest -m soak -p no:cacheprovider tests/test_soak.py

clean:
	rm -rf $(VENV) out .pytest_cache
