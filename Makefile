# Two entry points: `make run` serves skills, `make test` checks everything. Both set up what they need.
PYTHON ?= python3
VENV := .venv
TOOLS := .venv-skill-build
BIN := $(VENV)/bin

.PHONY: run test lint typecheck unit bench clean

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

# The SDK pins its own pydantic/componentize-py: it lives in a separate environment used only to build skills.
$(TOOLS)/.installed: tests/skills/requirements.lock
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r tests/skills/requirements.lock
	touch $@

run: $(VENV)/.installed
	mkdir -p skills
	$(BIN)/skill-engine serve

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(VENV)/.installed
	$(BIN)/mypy

test: $(VENV)/.installed $(TOOLS)/.installed lint typecheck
	SKILL_BUILD_ENV=$(CURDIR)/$(TOOLS) $(BIN)/pytest $(PYTEST_ARGS)

unit: $(VENV)/.installed
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

bench: $(VENV)/.installed $(TOOLS)/.installed
	SKILL_BUILD_ENV=$(CURDIR)/$(TOOLS) $(BIN)/python -m bench.overhead

clean:
	rm -rf $(VENV) $(TOOLS)
