# The two quick-start commands (README): `make run` and `make test`. Both set up .venv first.
.PHONY: setup run test lint bench ui

setup:
	@bash scripts/setup.sh

run: setup
	.venv/bin/curator demo

# The Dagster UI (webserver + daemon: sensor, backfills, run queue) on http://127.0.0.1:$(UI_PORT). Its
# instance home is <state dir>/dagster, the one `curator` uses; nothing is written into the repo root.
UI_PORT ?= 3000
ui: setup
	@home="$${CURATOR_STATE_DIR:-$(CURDIR)/state}/dagster"; mkdir -p "$$home" && \
	ln -sf "$(CURDIR)/dagster.yaml" "$$home/dagster.yaml" && \
	echo "DAGSTER_HOME=$$home" && \
	DAGSTER_HOME="$$home" exec .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(UI_PORT)

test: setup
	.venv/bin/python -m pytest -q -ra

lint: setup
	.venv/bin/ruff check curator_core curator_assets tests benchmarks
	.venv/bin/ruff format --check curator_core curator_assets tests benchmarks

bench: setup
	.venv/bin/python benchmarks/executor_overhead.py
