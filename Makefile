# The two commands: `make run` and `make test`. Everything else is a step of theirs.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: help setup setup-dev run test lint format migrate worker beat web bench cluster clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: ## Create .venv and install the runtime dependencies
	@bin/setup.sh

setup-dev: ## Create .venv and install runtime, test and lint dependencies
	@bin/setup.sh dev

run: ## Set up and run web (127.0.0.1:8080), Celery worker and beat in the foreground
	@bin/start.sh

test: setup-dev ## Set up and run the whole test suite (real servers when *_URL are set)
	VAR_DIR=$(CURDIR)/var/test $(PY) -m pytest $(PYTEST_ARGS)

lint: setup-dev ## ruff check and format check
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: setup-dev ## Apply ruff fixes and formatting
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

migrate: setup ## Apply database migrations
	$(PY) manage.py migrate --no-input

web: setup ## Run only the web server (gunicorn)
	.venv/bin/gunicorn -c config/gunicorn.py config.wsgi:application

worker: setup ## Run only a Celery worker on every queue
	.venv/bin/celery -A config worker -Q sms,mms,email,voice,maintenance,sandbox,webhooks --pool $${WORKER_POOL:-prefork} \
		--concurrency $${WORKER_CONCURRENCY:-2} --without-mingle --without-gossip -l INFO

beat: setup ## Run only Celery beat (the sweeps)
	.venv/bin/celery -A config beat -l INFO

bench: ## Measure the production shape under load (~10 min; installs wrk); writes docs/performance.md
	@bench/run.sh

cluster: ## As root: web, worker, beat, sandbox, PostgreSQL, Redis, HAProxy as hosts in network namespaces; scale-out and faults measured (~6 min)
	@bench/cluster/run.sh

clean: ## Remove var/ (the local database, broker and caches) and the venv
	rm -rf var .venv .pytest_cache .ruff_cache
