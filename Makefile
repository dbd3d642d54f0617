# Set-up and run targets. `make run` starts the service on SQLite and the filesystem
# broker; `make test` runs the suite against the PostgreSQL and Redis on 127.0.0.1.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
# pip runs again whenever a requirements file is newer than its stamp.
RUN_STAMP := $(VENV)/.requirements.stamp
DEV_STAMP := $(VENV)/.requirements-dev.stamp

.PHONY: run test bench clean messages

$(VENV_PYTHON):
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): requirements.txt | $(VENV_PYTHON)
	$(VENV_PYTHON) -m pip install -r requirements.txt
	touch $@

# requirements-dev.txt includes requirements.txt, so a change to either reinstalls.
$(DEV_STAMP): requirements-dev.txt requirements.txt | $(VENV_PYTHON)
	$(VENV_PYTHON) -m pip install -r requirements-dev.txt
	touch $@

run: $(RUN_STAMP)
	$(VENV_PYTHON) manage.py migrate --noinput
	$(VENV_PYTHON) manage.py load_demo
	$(VENV_PYTHON) bin/run_all.py

# Target-specific exports, so `make run` keeps its SQLite and filesystem defaults.
# Values already set in the environment win over these.
test: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/sharestack_push
test: export REDIS_URL ?= redis://127.0.0.1:6379/0
test: export CELERY_BROKER_URL ?= redis://127.0.0.1:6379/1
test: $(DEV_STAMP)
	bash scripts/install-system-packages.sh
	$(VENV_PYTHON) -m pytest --cov --cov-config=.coveragerc --cov-report=term --cov-fail-under=90

# Benchmarks, not tests: see bench/README.md. N sets the broadcast size.
bench: $(DEV_STAMP)
	$(VENV_PYTHON) bench/broadcast.py $(or $(N),10000)
	$(VENV_PYTHON) bench/latency.py --interval-ms 100

# Refreshes the preference pages' Chinese catalogue after their text changes; commit the
# .po and the .mo. Needs GNU gettext (scripts/install-system-packages.sh installs it).
messages: $(DEV_STAMP)
	bash scripts/install-system-packages.sh
	cd preferences && ../$(VENV_PYTHON) ../manage.py makemessages --locale zh_Hans --no-location
	cd preferences && ../$(VENV_PYTHON) ../manage.py compilemessages --locale zh_Hans

# Removes caches and coverage output; keeps .venv and var/ (database, secret key).
clean:
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +
	rm -rf .pytest_cache .coverage coverage.xml htmlcov
