# Quick start: `make demo` and `make test`. Both create .venv with Python 3.11 and install
# mlsmith with all its extras. torch is pinned first so pip takes the local CPU build instead of
# a multi-GB CUDA build; pyproject keeps a loose range.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TORCH  ?= torch==2.13.0

.PHONY: demo test venv lint bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=python3 ...'" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[all]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/mlsmith fit examples/penguins.csv --target species --time-limit 30 --out runs/demo-penguins
	@echo
	@echo "Predict with:   $(BIN)/mlsmith predict runs/demo-penguins examples/penguins.csv --proba"
	@echo "Inspect with:   $(BIN)/mlsmith info runs/demo-penguins"
	@echo "Report:         runs/demo-penguins/report.html (and model_card.md beside it)"

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

bench: $(STAMP)
	bash benchmarks/setup_peers.sh
	$(BIN)/python benchmarks/run_suite.py --budget 60

clean:
	rm -rf $(VENV) runs .pytest_cache
