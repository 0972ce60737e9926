# The two quick-start commands (README): `make run` and `make test`. Both set up .venv first.
.PHONY: setup run test lint bench ui

setup:
	@bash scripts/setup.sh

run: setup
	.venv/bin/curator demo

# The Dagster UI (webserver + daemon: sensor, backfills, run queue) on http://127.0.0.1:3000
ui: setup
	DAGSTER_HOME=$(CURDIR) .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

test: setup
	.venv/bin/python -m pytest -q -ra

lint: setup
	.venv/bin/ruff check curator_core curator_assets tests benchmarks
	.venv/bin/ruff format --check curator_core curator_assets tests benchmarks

bench: setup
	.venv/bin/python benchmarks/executor_overhead.py
