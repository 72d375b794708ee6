# Two commands do everything on a fresh Debian 12 machine, as root:
#   make run    install what is missing, migrate, load the Bijie demo, serve :8000
#   make test   the whole suite (embedded default, then the production stack)
.DEFAULT_GOAL := help
PY := .venv/bin/python
HOST ?= 127.0.0.1:8000

.PHONY: help bootstrap run migrate demo test bench mutation lint fmt lock worker beat

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

bootstrap: ## Install missing Debian packages, the venv and locked requirements
	@bash scripts/bootstrap.sh

migrate: bootstrap ## Apply database migrations
	$(PY) manage.py migrate --noinput

demo: migrate ## Load the Bijie demo data (idempotent)
	$(PY) manage.py load_bijie_demo

run: demo ## Serve the site at http://127.0.0.1:8000 on the embedded default
	$(PY) manage.py runserver $(HOST)

test: bootstrap ## Run the whole test suite (both stages)
	@bash scripts/test.sh $(ARGS)

bench: bootstrap ## Run the benchmarks; results in docs/benchmarks.md
	@bash scripts/bench.sh

mutation: bootstrap ## Mutation testing (mutmut); score per module in docs/quality.md
	@bash scripts/mutation.sh $(ARGS)

lint: bootstrap ## ruff lint + format check, and migrations in step with models
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run

fmt: bootstrap ## Format and fix what ruff can
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

lock: bootstrap ## Re-lock requirements.lock from pyproject.toml
	$(PY) -m pip install -q uv
	$(PY) -m uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock

worker: bootstrap ## A Celery worker (needs REDIS_URL)
	.venv/bin/celery -A config worker -l info

beat: bootstrap ## Celery beat (needs REDIS_URL)
	.venv/bin/celery -A config beat -l info
