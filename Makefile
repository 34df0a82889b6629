# make run   - set up and start the service on http://127.0.0.1:8000 (PORT overrides)
# make test  - set up and run the whole test suite against real PostgreSQL + replica, Redis, moto, Chromium
# make bench - benchmarks (bench/), figures as ratios measured side by side
# make drills - fault drills under load (drills/): non-zero when an acceptance threshold is missed
# make lint  - ruff format --check and ruff check
# make messages - update locale/*/LC_MESSAGES/django.po from the public templates and code (then translate)
# make infra-check - terraform fmt/validate and checkov on infra/terraform (see infra/infra.mk)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Compiled catalogues (.mo) are built, not committed: GNU gettext's msgfmt (apt: gettext), --check for format strings.
MO := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/django.po))

.PHONY: run test bench drills lint format clean messages

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

%.mo: %.po
	msgfmt --check -o $@ $<

messages: $(STAMP)
	$(PY) manage.py makemessages

run: $(STAMP) $(MO)
	$(PY) -m devenv.run

# infra-tools: checkov (own venv) for tests/infra, which fail rather than skip without it under CI
test: $(STAMP) infra-tools $(MO)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench

drills: $(STAMP)
	$(PY) -m drills $(DRILLS)

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	if [ -L .local/pg ]; then rm -rf "$$(readlink .local/pg)"; fi
	rm -rf $(VENV) $(CHECKOV_VENV) .local staticfiles db.sqlite3 .pytest_cache

# Last, so that a plain `make` keeps this file's first target as its default.
include infra/infra.mk
