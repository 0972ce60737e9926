# The two quick-start commands (README): `make run` and `make test`. Both set up .venv first.
.PHONY: setup run test lint bench ui

setup:
	@bash scripts/setup.sh

run: setup
	.venv/bin/curator demo

# The Dagster UI (webserver + daemon: sensor, backfills, run queue) on http://127.0.0.1:$(UI_PORT). It runs
# in its instance home, <state dir>/dagster (the one `curator` opens), with dagster.yaml linked in: nothing
# is written into the repo root. `dagster dev` is superseded by `dg dev` (dagster-dg-cli, a tool we do not
# otherwise need); that one notice is silenced.
UI_PORT ?= 3000
ui: setup
	@state="$$(realpath -m "$${CURATOR_STATE_DIR:-state}")"; home="$$state/dagster"; \
	models="$$(realpath -m "$${CURATOR_MODEL_DIR:-models}")"; \
	mkdir -p "$$home" && ln -sf "$(CURDIR)/dagster.yaml" "$$home/dagster.yaml" && \
	echo "DAGSTER_HOME=$$home" && cd "$$home" && \
	CURATOR_STATE_DIR="$$state" CURATOR_MODEL_DIR="$$models" \
	DAGSTER_HOME="$$home" PYTHONWARNINGS="ignore:Function \`dev_command\` is superseded:FutureWarning" \
	exec "$(CURDIR)/.venv/bin/dagster" dev -w "$(CURDIR)/workspace.yaml" -h 127.0.0.1 -p $(UI_PORT)

test: setup
	@bash scripts/browser.sh
	.venv/bin/python -m pytest -q -ra --durations=25

lint: setup
	.venv/bin/ruff check curator_core curator_assets tests benchmarks
	.venv/bin/ruff format --check curator_core curator_assets tests benchmarks

bench: setup
	.venv/bin/python benchmarks/executor_overhead.py
