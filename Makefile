# The template's own tasks. The generated project has its own Makefile (make dev, make test, ...).
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
PORT ?= 8000
DEMO_DIR ?= .demo
# The slug cookiecutter derives from the default project name.
DEMO_SLUG := my_service
DEMO_PROJECT := $(DEMO_DIR)/$(DEMO_SLUG)
# What a new demo bake keeps from the previous one: its data (the SQLite file under var/), the
# secrets that data was written with, and the installed virtualenv.
DEMO_KEEP := var .env .venv
# uv from PATH, else the copy `make uv` installs into a virtualenv of its own under .tools/
# (called by its path: your Python, its packages and PATH stay as they are).
TOOLS ?= $(CURDIR)/.tools
UV := $(or $(shell command -v uv 2>/dev/null),$(TOOLS)/uv/bin/uv)
# The demo runs on embedded defaults (SQLite under var/, in-process stores, eager tasks) whatever
# the calling shell has configured.
DEMO_ENV := env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL ENVIRONMENT=development

.PHONY: help demo demo-clean test test-unit uv

help:
	@echo "make demo        bake the default project into $(DEMO_PROJECT)/ and serve it on port $(PORT)"
	@echo "make demo-clean  remove $(DEMO_DIR)/ and with it the demo's data"
	@echo "make test        the template's test suite; needs PostgreSQL, Redis and RabbitMQ (README.md)"
	@echo "make test-unit   the tests that need no service: hooks and test helpers"

uv:
	@test -x "$(UV)" || { \
		echo "uv not found: installing it with pip into $(TOOLS)/uv (a virtualenv of its own)"; \
		$(PYTHON) -m venv "$(TOOLS)/uv" && "$(TOOLS)/uv/bin/python" -m pip install --quiet uv; \
	}

# A fresh bake every time, so the demo shows the template as it is now; the data survives it.
demo: uv
	@kept="$(DEMO_DIR)/.kept"; \
	if [ -d "$(DEMO_PROJECT)" ]; then \
		echo "Keeping the previous demo's data ($(DEMO_KEEP)); make demo-clean starts afresh"; \
		mkdir -p "$$kept"; \
		for name in $(DEMO_KEEP); do \
			if [ -e "$(DEMO_PROJECT)/$$name" ]; then \
				rm -rf "$$kept/$$name"; mv "$(DEMO_PROJECT)/$$name" "$$kept/"; \
			fi; \
		done; \
		rm -rf "$(DEMO_PROJECT)"; \
	fi
	$(UV) run cookiecutter --no-input --output-dir "$(DEMO_DIR)" .
	@kept="$(DEMO_DIR)/.kept"; \
	for name in $(DEMO_KEEP); do \
		if [ -e "$$kept/$$name" ]; then \
			rm -rf "$(DEMO_PROJECT)/$$name"; mv "$$kept/$$name" "$(DEMO_PROJECT)/"; \
		fi; \
	done
	cd "$(DEMO_PROJECT)" && $(UV) sync
	cd "$(DEMO_PROJECT)" && $(DEMO_ENV) $(UV) run --no-sync $(DEMO_SLUG) db upgrade
	@echo "API docs: http://127.0.0.1:$(PORT)/docs (Ctrl-C stops the demo)"
	cd "$(DEMO_PROJECT)" && exec $(DEMO_ENV) $(UV) run --no-sync $(DEMO_SLUG) serve \
		--host 127.0.0.1 --port $(PORT)

demo-clean:
	rm -rf "$(DEMO_DIR)"

test: uv
	$(UV) run pytest $(PYTEST_ARGS)

test-unit: uv
	$(UV) run pytest --numprocesses=0 tests/test_hooks.py tests/test_support.py $(PYTEST_ARGS)
