# synth_platform — entry points. Every target creates the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SCALE ?= 1.0
# pytest-xdist workers of `make test` (each takes a whole test file; ~1.2 GB peak each; 0: one process).
TEST_WORKERS ?= 2
SYNTH_HOME ?= $(CURDIR)/.synth
export SYNTH_HOME
export PATH := $(CURDIR)/$(BIN):$(PATH)
export DAGSTER_HOME ?= $(SYNTH_HOME)/dagster
# Keep tools quiet and offline.
export GX_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: setup demo test dev mlflow bench mostlyai-env lint lock clean

$(VENV)/.installed: pyproject.toml constraints.txt requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch is pinned to the CPU build (constraints.txt); the lock pins everything else.
	$(BIN)/python -m pip install -q -c constraints.txt -c requirements.lock -e ".[dev]"
	touch $@

setup: $(VENV)/.installed  ## create .venv and install pinned dependencies

demo: setup  ## build the demo source and run the whole lifecycle (SCALE=1.0)
	$(BIN)/python -m bank_example.run demo --scale $(SCALE)

# The DuckLake tests need the duckdb-ext-* wheels, which exist only for DuckDB 1.4.4: install that
# DuckDB beside the venv's (not into it); tests/integration/test_lake.py runs itself under it.
LAKE_DUCKDB := $(VENV)/ducklake-duckdb-1.4.4
LAKE_PACKAGES := duckdb==1.4.4 duckdb-ext-ducklake==1.4.4.20260205 duckdb-ext-sqlite==1.4.4.20260205 \
	duckdb-ext-postgres==1.4.4.20260205 duckdb-ext-httpfs==1.4.4.20260205
test: setup  ## run the test suite
	grep -qsxF "$(LAKE_PACKAGES)" $(LAKE_DUCKDB)/.installed || { rm -rf $(LAKE_DUCKDB) && \
		$(BIN)/python -m pip install -q --no-deps --target $(LAKE_DUCKDB) $(LAKE_PACKAGES) && \
		echo "$(LAKE_PACKAGES)" > $(LAKE_DUCKDB)/.installed; } || \
		echo "warning: could not install DuckDB 1.4.4 + duckdb-ext-*: the DuckLake tests will skip"
	SYNTH_TEST_PINNED_DUCKDB=$(abspath $(LAKE_DUCKDB)) $(BIN)/python -m pytest -q \
		-n $(TEST_WORKERS) --dist loadfile

dev: setup  ## the Dagster UI on http://127.0.0.1:3000
	$(BIN)/python -m bank_example.run init-home
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

mlflow: setup  ## the MLflow UI on http://127.0.0.1:5000 (runs linked from Dagster)
	$(BIN)/mlflow ui --backend-store-uri "sqlite:///$(SYNTH_HOME)/mlflow/mlflow.db" \
		--host 127.0.0.1 --port 5000

# Optional: MOSTLY AI's engine (Apache-2.0) in its own venv, for bench/quality.py's candidate.
# torchvision/torchaudio come in unpinned and break transformers' import: they are not needed.
mostlyai-env:  ## .venv-mostlyai with mostlyai-engine (CPU torch 2.13.0) for make bench
	test -x .venv-mostlyai/bin/python || $(PYTHON) -m venv .venv-mostlyai
	.venv-mostlyai/bin/python -m pip install -q torch==2.13.0 mostlyai-engine pandas pyarrow
	.venv-mostlyai/bin/python -m pip uninstall -y -q torchvision torchaudio

bench: setup  ## all benchmarks; tables land in bench/results/
	$(BIN)/python bench/run.py

lint: setup
	$(BIN)/ruff check synth_platform bank_example tests bench && $(BIN)/ruff format --check synth_platform bank_example tests bench

lock: setup  ## refresh requirements.lock from the current environment
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^synth.platform' > requirements.lock

clean:
	rm -rf $(SYNTH_HOME) dbt_project/target dbt_project/logs
