# Both entry points set themselves up on a fresh machine: uv (from PyPI) and the locked virtualenv.
# --compile-bytecode: start-up time of `kinship serve` is mostly imports, and environments that set
# PYTHONDONTWRITEBYTECODE would otherwise recompile every dependency on every start.
PYTHON ?= python3
UV := $(PYTHON) -m uv
VENV := .venv

.PHONY: demo demo-offline test bench lint
.DEFAULT_GOAL := help

$(VENV)/.synced: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	$(UV) sync --locked --quiet --compile-bytecode
	$(VENV)/bin/python -m compileall -q kinship extender
	@touch $@

help:
	@echo "make demo         - local cluster + extender, example teams under kinship and the default scheduler"
	@echo "make demo-offline - serve the example agent teams from files and explain their placement"
	@echo "make test   - the whole test suite (unit, integration, e2e)"
	@echo "make bench  - extender latency benchmark (prints figures)"
	@echo "make lint   - ruff and mypy"

demo: $(VENV)/.synced
	./hack/demo-cluster.sh

demo-offline: $(VENV)/.synced
	./hack/demo-offline.sh

test: $(VENV)/.synced
	$(VENV)/bin/python -m pytest

bench: $(VENV)/.synced
	$(VENV)/bin/python -m benchmarks.bench_prioritize

lint: $(VENV)/.synced
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy kinship extender profiler predictor
