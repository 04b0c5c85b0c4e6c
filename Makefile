# Two entry points: `make run` serves skills, `make test` checks everything. Both set up what they need.
PYTHON ?= python3
VENV := .venv
TOOLS := .venv-skill-build
BIN := $(VENV)/bin

.PHONY: run test lint typecheck unit bench clean test-registry test-postgres test-browser test-deploy-tools image k8s

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
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed
	$(BIN)/mypy

# The deployment tests start a real OCI registry: Debian's docker-registry (CI runs as root).
test-registry:
	@command -v docker-registry >/dev/null || apt-get install -y -qq docker-registry >/dev/null 2>&1 \
		|| { apt-get update -qq && apt-get install -y -qq docker-registry; }

# The evaluation tests start a throw-away PostgreSQL cluster from Debian's server package.
test-postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt-get install -y -qq postgresql >/dev/null 2>&1 \
		|| { apt-get update -qq && apt-get install -y -qq postgresql; }

# The console's browser tests drive Debian's Chromium with Playwright (never `playwright install`).
test-browser:
	@command -v chromium >/dev/null || apt-get install -y -qq chromium >/dev/null 2>&1 \
		|| { apt-get update -qq && apt-get install -y -qq chromium; }

# The deployment tests (tests/deploy) build the image without a daemon (mmdebstrap, umoci), run it with runc,
# push it with skopeo, balance a fleet with haproxy and render the manifests with kubectl's kustomize.
DEPLOY_PACKAGES := mmdebstrap umoci runc skopeo haproxy
test-deploy-tools:
	@dpkg -s $(DEPLOY_PACKAGES) >/dev/null 2>&1 || apt-get install -y -qq $(DEPLOY_PACKAGES) >/dev/null 2>&1 \
		|| { apt-get update -qq && apt-get install -y -qq $(DEPLOY_PACKAGES); }
	@command -v kubectl >/dev/null || apt-get install -y -qq kubernetes-client >/dev/null 2>&1 \
		|| { apt-get update -qq && apt-get install -y -qq kubernetes-client; }

# The container image as an OCI archive (deploy/image/Containerfile; built daemonless, needs root).
IMAGE := build/skill-engine.oci.tar
image: $(IMAGE)
$(IMAGE): $(VENV)/.installed deploy/image/Containerfile deploy/image/build_image.py requirements.lock pyproject.toml \
		$(shell find src -type f -not -name '*.pyc') | test-deploy-tools
	$(BIN)/python deploy/image/build_image.py $@

# What `kubectl apply -k deploy/kubernetes/base` applies, as one multi-document YAML file.
K8S_OUT ?= build/k8s.yaml
k8s: $(K8S_OUT)
$(K8S_OUT): $(wildcard deploy/kubernetes/base/*) | test-deploy-tools
	@mkdir -p $(dir $@)
	kubectl kustomize deploy/kubernetes/base > $@.partial
	mv $@.partial $@

test: $(VENV)/.installed $(TOOLS)/.installed test-registry test-postgres test-browser test-deploy-tools $(IMAGE) lint typecheck
	SKILL_BUILD_ENV=$(CURDIR)/$(TOOLS) $(BIN)/pytest $(PYTEST_ARGS)

unit: $(VENV)/.installed
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

bench: $(VENV)/.installed $(TOOLS)/.installed
	SKILL_BUILD_ENV=$(CURDIR)/$(TOOLS) $(BIN)/python -m bench.overhead

clean:
	rm -rf $(VENV) $(TOOLS)
