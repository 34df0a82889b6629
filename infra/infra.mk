# Infrastructure targets, included by the top-level Makefile (`include infra/infra.mk`).
#   make infra-tools - checkov in its own venv (.venv-checkov); its pins clash with the app's
#   make infra-check - terraform fmt -check, init from the local provider mirror, validate, checkov per variant
# Offline: the AWS provider comes from a filesystem mirror (TF_PLUGIN_DIR, else the first known place
# that exists). init and validate run on a throwaway copy, so neither .terraform nor the dependency
# lock file is ever written into the source tree.
PYTHON ?= python3
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
CHECKOV := $(CHECKOV_VENV)/bin/checkov
TF_DIR := infra/terraform
TF_PLUGIN_DIR ?= $(firstword $(wildcard /opt/tf-plugins /usr/local/share/tf-plugins /usr/share/tf-plugins $(HOME)/.terraform.d/plugins))

.PHONY: infra-tools infra-check

$(CHECKOV_STAMP):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "checkov==$(CHECKOV_VERSION)"
	touch $@

infra-tools: $(CHECKOV_STAMP)

infra-check: infra-tools
	@test -n "$(TF_PLUGIN_DIR)" || { echo "infra-check: no provider mirror found; set TF_PLUGIN_DIR" >&2; exit 1; }
	terraform -chdir=$(TF_DIR) fmt -check -recursive -diff
	set -e; work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; cp $(TF_DIR)/*.tf "$$work"/; \
	export TF_DATA_DIR="$$work/.terraform" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1; \
	terraform -chdir="$$work" init -backend=false -input=false -no-color -plugin-dir=$(TF_PLUGIN_DIR) >/dev/null; \
	terraform -chdir="$$work" validate -no-color
	# What checkov checks depends on the variables it is given: scan each deployment variant.
	set -e; work=$$(mktemp -d); trap 'rm -rf "$$work"' EXIT; \
	for compute in ecs ec2; do for private in false true; do \
	  echo "checkov: compute=$$compute private_ingress=$$private"; \
	  echo "{\"compute\": \"$$compute\", \"private_ingress\": $$private}" > "$$work/variant.tfvars.json"; \
	  $(CHECKOV) -d $(TF_DIR) --framework terraform --quiet --compact --skip-download --var-file "$$work/variant.tfvars.json"; \
	done; done
