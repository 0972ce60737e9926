# The two quick-start commands (README): `make run` and `make test`. Both set up .venv first.
.PHONY: setup run test lint bench

setup:
	@bash scripts/setup.sh

run: setup
	.venv/bin/curator demo

test: setup
	.venv/bin/python -m pytest -q -ra

lint: setup
	.venv/bin/ruff check curator_core curator_assets tests benchmarks
	.venv/bin/ruff format --check curator_core curator_assets tests benchmarks

bench: setup
	.venv/bin/python benchmarks/executor_overhead.py
