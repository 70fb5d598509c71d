# One gate for people and CI. Every target creates what it needs when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
# checkov in its own environment: its pins (boto3, pydantic...) would fight the project's.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
STAMP := $(VENV)/.installed
# The generated-client tests' tools (tests/clients): openapi-python-client pins its own ruff and pydantic
# ranges, so its Python tools get their own environment; the npm ones a git-ignored node_modules.
CLIENTS_VENV := .venv-clients
CLIENTS_STAMP := $(CLIENTS_VENV)/.installed
CLIENTS_NODE := tests/clients/node_modules/.package-lock.json
PORT ?= 3000
# pytest-xdist workers for make test (one per core, at most this many: each starts its own local stack
# and DynamoDB Local when its tests need them).
TEST_WORKERS ?= 4
export AWS_DEFAULT_REGION ?= us-east-1
# Where the local stack, its tools and the walkthrough import the shared layer's ``mci`` from (on AWS: the layer).
LOCAL_PYTHONPATH := PYTHONPATH=shared

.PHONY: help venv run openapi test lint typecheck validate security template clients build unit bench screenshots web-vendor publish-web clean

help:
	@echo "make run    - start the local stack on http://127.0.0.1:$(PORT)"
	@echo "make openapi - regenerate docs/openapi.json from the handlers' models"
	@echo "make test   - ruff, mypy, sam validate, checkov, and the whole test suite with coverage"
	@echo "make security - checkov on template.yaml: no failed check (skips in .checkov.yaml or inline, with a reason)"
	@echo "make template - rewrite template.yaml's functions from functions/table.py"
	@echo "make clients - the tools that generate and type-check API clients from docs/openapi.json"
	@echo "make build  - sam build (python3.13 through pyenv)"
	@echo "make bench  - benchmarks (not part of make test)"
	@echo "make screenshots - refresh the web app walkthrough's PNGs in docs/web/ (needs chromium)"
	@echo "make web-vendor - copy the web app's pinned npm modules (web/package-lock.json) into web/vendor/"
	@echo "make publish-web STACK=mci-customers-dev - upload web/ and its config.json to a deployed stack's bucket"

$(STAMP): requirements-dev.txt layers/dependencies/requirements.txt layers/dependencies/requirements-no-deps.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

$(SAM):
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli

$(CHECKOV_STAMP):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet checkov==$(CHECKOV_VERSION)
	touch $(CHECKOV_STAMP)

$(CLIENTS_STAMP): tests/clients/requirements.txt
	test -x $(CLIENTS_VENV)/bin/python || $(PYTHON) -m venv $(CLIENTS_VENV)
	$(CLIENTS_VENV)/bin/pip install --quiet --upgrade pip
	$(CLIENTS_VENV)/bin/pip install --quiet -r tests/clients/requirements.txt
	touch $(CLIENTS_STAMP)

# Without npm the TypeScript checks say they were skipped (and fail in CI, where .ci/run installs node).
$(CLIENTS_NODE): tests/clients/package.json tests/clients/package-lock.json
	if command -v npm >/dev/null 2>&1; then cd tests/clients && npm ci --no-audit --no-fund --silent; \
	else echo "npm not found: the TypeScript client checks will say they were skipped"; fi

clients: $(CLIENTS_STAMP) $(CLIENTS_NODE)

run: $(STAMP)
	$(LOCAL_PYTHONPATH) PORT=$(PORT) $(BIN)/python -m local

openapi: $(STAMP)
	$(LOCAL_PYTHONPATH) $(BIN)/python -m local.openapi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

validate: $(SAM)
	$(SAM) validate --lint --template template.yaml
	$(SAM) validate --template template.yaml --region $(AWS_DEFAULT_REGION)

# The cloudformation framework evaluates SAM resources (AWS::Serverless::*) too; checkov's serverless
# framework is for serverless.yml and finds nothing here. Offline: no Prisma Cloud download or mapping.
# .checkov.yaml skips the checks that hold for every function, each with its reason; other skips are inline.
# The one checkov run of `make test`: it fails on any failed check, and leaves its JSON report, its exit status,
# the two files it read and the `pip freeze` of its environment (checkov's version and every package it runs with)
# in $(CHECKOV_REPORT), where tests/unit/test_template_security.py reads them instead of running checkov again (it
# runs its own when template.yaml, .checkov.yaml or .venv-checkov changed since). No --quiet: it would leave the
# passed and skipped checks out of the report too.
CHECKOV_REPORT := .cache/checkov
security: $(CHECKOV_STAMP)
	rm -rf $(CHECKOV_REPORT) && mkdir -p $(CHECKOV_REPORT) && cp template.yaml .checkov.yaml $(CHECKOV_REPORT)/
	$(CHECKOV_VENV)/bin/pip freeze > $(CHECKOV_REPORT)/pip-freeze.txt && \
	BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml --file template.yaml \
		--framework cloudformation --skip-download --compact \
		--output cli --output json --output-file-path console,$(CHECKOV_REPORT)/report.json; \
		status=$$?; echo $$status > $(CHECKOV_REPORT)/exit-status; exit $$status

# The functions of template.yaml are written from the one table, functions/table.py (docs/deployment.md).
template: $(STAMP)
	$(BIN)/python -m functions.template

build: $(SAM)
	PATH="$(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)/versions/3.13.0/bin:$$PATH" \
		$(SAM) build --template template.yaml

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

test: lint typecheck validate security clients
	$(BIN)/pytest -n auto --maxprocesses $(TEST_WORKERS) --dist worksteal --cov --cov-report=term -q --durations=25

# The size section runs `sam build` (python3.13 through pyenv, as `make build`); DynamoDB Local comes on demand.
bench: $(STAMP) $(SAM)
	$(BIN)/python -m bench

# The walkthrough of docs/web.md: local stack, demo state over the API, headless Chromium.
screenshots: $(STAMP)
	$(LOCAL_PYTHONPATH) $(BIN)/python -m tests.support.screenshots

# The web app's npm modules (the OIDC client) into web/vendor/, committed; after changing web/package.json:
# `cd web && npm install --save-exact <package>@<version> --ignore-scripts`, then this, then commit.
web-vendor: $(STAMP)
	cd web && npm ci --ignore-scripts --no-audit --no-fund
	$(BIN)/python -m local.web_vendor

# The web app to a deployed stack (docs/web.md#on-aws): web/ and config.json into its bucket, then a CloudFront
# invalidation. STACK names the stack (bucket, distribution and config from its outputs and parameters); without
# it, name them: make publish-web PUBLISH_ARGS="--bucket ... --api-url ... --issuer ... --client-id ...".
publish-web: $(STAMP)
	$(BIN)/python -m local.publish_web $(if $(STACK),--stack $(STACK)) $(PUBLISH_ARGS)

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .coverage
