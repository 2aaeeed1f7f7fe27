# The template's own tasks. The generated project has its own Makefile (make dev, make test, ...).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
PORT ?= 8000
DEMO_DIR ?= .demo
# The slug cookiecutter derives from the default project name.
DEMO_SLUG := my_service
# uv from PATH, else the copy the `uv` target installs with pip (run as a module, because pip's
# script folder is not always on PATH).
UV := $(or $(shell command -v uv 2>/dev/null),$(PYTHON) -m uv)
# The demo runs on embedded defaults (SQLite under var/, in-process stores, eager tasks) whatever
# the calling shell has configured.
DEMO_ENV := env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL ENVIRONMENT=development

.PHONY: help demo test uv

help:
	@echo "make demo   bake the default project into $(DEMO_DIR)/ and serve it on port $(PORT)"
	@echo "make test   the template's test suite; needs PostgreSQL, Redis and RabbitMQ (README.md)"

uv:
	@$(UV) --version >/dev/null 2>&1 || { \
		echo "Installing uv with pip"; \
		$(PYTHON) -m pip install --quiet uv 2>/dev/null \
		|| $(PYTHON) -m pip install --quiet --user --break-system-packages uv; \
	}

demo: uv
	rm -rf "$(DEMO_DIR)/$(DEMO_SLUG)"
	$(UV) run cookiecutter --no-input --output-dir "$(DEMO_DIR)" .
	cd "$(DEMO_DIR)/$(DEMO_SLUG)" && $(UV) sync
	cd "$(DEMO_DIR)/$(DEMO_SLUG)" && $(DEMO_ENV) $(UV) run --no-sync $(DEMO_SLUG) db upgrade
	@echo "API docs: http://127.0.0.1:$(PORT)/docs (Ctrl-C stops the demo)"
	cd "$(DEMO_DIR)/$(DEMO_SLUG)" && exec $(DEMO_ENV) $(UV) run --no-sync $(DEMO_SLUG) serve \
		--host 127.0.0.1 --port $(PORT)

test: uv
	$(UV) run pytest $(PYTEST_ARGS)
