# One gate for people and CI. Every target creates what it needs when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
STAMP := $(VENV)/.installed
PORT ?= 3000
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help venv run test lint typecheck validate build unit bench clean

help:
	@echo "make run    - start the local stack on http://127.0.0.1:$(PORT)"
	@echo "make test   - ruff, mypy, sam validate, and the whole test suite with coverage"
	@echo "make build  - sam build (python3.13 through pyenv)"
	@echo "make bench  - benchmarks (not part of make test)"

$(STAMP): requirements-dev.txt layers/dependencies/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

$(SAM):
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli

run: $(STAMP)
	PORT=$(PORT) $(BIN)/python -m local.server

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

validate: $(SAM)
	$(SAM) validate --lint --template template.yaml
	$(SAM) validate --template template.yaml --region $(AWS_DEFAULT_REGION)

build: $(SAM)
	PATH="$(shell pyenv root 2>/dev/null || echo $$HOME/.pyenv)/versions/3.13.0/bin:$$PATH" \
		$(SAM) build --template template.yaml

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

test: lint typecheck validate
	$(BIN)/pytest --cov --cov-report=term -q

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .coverage
