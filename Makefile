# make run   - set up and start the service on http://127.0.0.1:8000 (PORT overrides); installs requirements.txt only
# make manage ARGS="changepassword admin" - a manage.py command against make run's local database (.local/)
# make test  - set up and run the whole test suite against real PostgreSQL + replica, Redis, moto, Chromium
# make bench - benchmarks (bench/) on production's configuration, figures as ratios measured side by side
# make soak  - mixed load for SOAK_SECONDS (300) with the email worker: errors, stored vs acknowledged, RSS per worker
# make drills - fault drills under load (drills/): non-zero when an acceptance threshold is missed
# make lint  - ruff format --check and ruff check
# make messages - update locale/*/LC_MESSAGES/django.po from the public templates and code (then translate)
# make infra-check - terraform fmt/validate and checkov on infra/terraform (see infra/infra.mk)
# make image - build the app and proxy images (docker, buildah or podman; stand-in bases offline): docs/image.md
# make rds-ca - fetch AWS's current RDS CA bundle into deploy/ and pin its SHA-256 in the Dockerfile (needs the internet)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# What running needs (requirements.txt) and what testing adds (requirements-dev.txt) install separately:
# `make run` never waits for the test tools. pip prints each package as it goes.
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed-dev
PIP_INSTALL := $(PY) -m pip install --disable-pip-version-check --progress-bar on

# Compiled catalogues (.mo) are built, not committed: GNU gettext's msgfmt (apt: gettext), --check for format strings.
MO := $(patsubst %.po,%.mo,$(wildcard locale/*/LC_MESSAGES/django.po))

.PHONY: run manage test bench soak drills lint format clean messages image rds-ca

$(PY):
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): requirements.txt | $(PY)
	@echo "==> installing requirements.txt into $(VENV) (what the service needs to run)"
	$(PIP_INSTALL) -r requirements.txt
	touch $(RUN_STAMP)

$(STAMP): requirements.txt requirements-dev.txt | $(PY)
	@echo "==> installing requirements-dev.txt into $(VENV) (the service and the test tools)"
	$(PIP_INSTALL) -r requirements-dev.txt
	touch $(STAMP) $(RUN_STAMP)

# Without msgfmt (a machine lacking Debian's gettext) make run still starts, in English only (users.W004 says so);
# make test needs the catalogues and fails.
%.mo: %.po
	@if command -v msgfmt >/dev/null; then msgfmt --check -o $@ $<; \
	else echo "==> msgfmt missing (apt-get install gettext): $< not compiled"; test -z "$(MO_REQUIRED)"; fi

messages: $(STAMP)
	$(PY) manage.py makemessages

run: $(RUN_STAMP) $(MO)
	$(PY) -m devenv.run

manage: $(RUN_STAMP)
	$(PY) manage.py $(ARGS)

# infra-tools: checkov (own venv) for tests/infra, which fail rather than skip without it under CI
test: MO_REQUIRED := 1
test: $(STAMP) infra-tools $(MO)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m bench

soak: $(STAMP)
	$(PY) -m bench.soak

drills: $(STAMP)
	$(PY) -m drills $(DRILLS)

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# IMAGE_TAG names both images (the proxy is $(IMAGE_TAG)-proxy); IMAGE_BASES=real|standin|auto (deploy/image.sh).
IMAGE_TAG ?= signup:local
image:
	deploy/image.sh $(IMAGE_TAG)

RDS_CA_URL := https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
rds-ca:
	set -e; tmp=$$(mktemp); trap 'rm -f "$$tmp"' EXIT; \
	curl -fsSL --max-time 60 -o "$$tmp" $(RDS_CA_URL); \
	n=$$(openssl crl2pkcs7 -nocrl -certfile "$$tmp" | openssl pkcs7 -print_certs -noout | grep -c '^subject=.*Amazon RDS'); \
	test "$$n" -gt 0 || { echo "rds-ca: no Amazon RDS certificate in what $(RDS_CA_URL) returned" >&2; exit 1; }; \
	sum=$$(sha256sum "$$tmp" | cut -d' ' -f1); \
	install -m 644 "$$tmp" deploy/rds-global-bundle.pem; \
	sed -i "s/^ARG RDS_CA_SHA256=.*/ARG RDS_CA_SHA256=$$sum/" Dockerfile; \
	echo "rds-ca: $$n certificates, sha256 $$sum (deploy/rds-global-bundle.pem, Dockerfile): review and commit both"

clean:
	if [ -L .local/pg ]; then rm -rf "$$(readlink .local/pg)"; fi
	rm -rf $(VENV) $(CHECKOV_VENV) .local staticfiles db.sqlite3 .pytest_cache
	rm -f $(MO)

# Last, so that a plain `make` keeps this file's first target as its default.
include infra/infra.mk
