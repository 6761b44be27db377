# gloo-stream: every target installs what it needs, so each works as the first command on a fresh clone.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: install run test check fix lint typecheck unit bench clean browser-deps server-deps vendor

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# `make run` needs only the runtime dependencies (not mypy, Playwright, the OpenAI SDK...):
# installed first and alone, pip's progress shown; the dev toolchain waits for a test target.
RUNTIME_STAMP := $(VENV)/.runtime-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

$(RUNTIME_STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	@echo "Installing gloo-stream and its runtime dependencies into $(VENV) (first run only)..."
	$(PY) -m pip install --disable-pip-version-check --progress-bar on -e .
	rm -f $(VENV)/.runtime-*
	touch $@

run: $(if $(wildcard $(STAMP)),$(STAMP),$(RUNTIME_STAMP))
	$(VENV)/bin/gloo-stream demo

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/lint-imports --no-cache

typecheck: install
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy benchmarks

test: install lint typecheck browser-deps server-deps
	$(VENV)/bin/pytest -q -p no:cacheprovider

# The quick loop before a commit: lint, types and the unit tests (no servers, no browser).
# The pre-commit hooks (.pre-commit-config.yaml) run the same checks.
check: lint typecheck unit

# The unit tests alone; the vendored-library test compares the package's copies with
# node_modules, so npm ci runs first when it has not.
unit: install node_modules/.package-lock.json
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/unit

# Let ruff fix what it can, then format; what is left, `make lint` names.
fix: install
	$(VENV)/bin/ruff check --fix src tests benchmarks
	$(VENV)/bin/ruff format src tests benchmarks

# The chat page's libraries (marked, DOMPurify: pinned by package-lock.json; the test that the
# package's copies match them needs node_modules) and Debian's Chromium for the browser tests
# (Playwright's own browser download is not available here).
browser-deps: node_modules/.package-lock.json /usr/bin/chromium

# After a change to package-lock.json: copy the pinned browser builds and licences into the
# package (src/gloo_stream/proxy/static/vendor/), then commit them.
vendor: install node_modules/.package-lock.json
	$(PY) -c 'import sys; from gloo_stream.proxy.routes.vendor import refresh_main; sys.exit(refresh_main(["node_modules"]))'

node_modules/.package-lock.json: package.json $(wildcard package-lock.json)
	if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
	touch $@

/usr/bin/chromium:
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

# Debian's redis-server and nginx for the scale-out test, which starts its own on loopback
# ports (the packages' own services are not used). Skipped when both are installed.
server-deps:
	@if ! [ -x /usr/bin/redis-server ] || ! [ -x /usr/sbin/nginx ]; then \
		DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server nginx; \
	fi

# The benchmarks' own extras (Flask + requests baseline, matplotlib, py-spy) and Debian's
# nginx, which the relay benchmark starts on a loopback port as its baseline.
bench: install /usr/sbin/nginx
	$(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) -m benchmarks

/usr/sbin/nginx:
	DEBIAN_FRONTEND=noninteractive apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist
