# Two entry points for a fresh machine: `make lab` and `make test`. Both are idempotent:
# the environment is built once into $(VENV) and reused while pyproject.toml is unchanged.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JS_BUNDLE := workbench/widgets/static/scatter.js

.PHONY: env lab test lint system-deps js clean

env: $(STAMP) $(JS_BUNDLE)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade "pip>=24"
	$(PY) -m pip install -e ".[test]"
	touch $(STAMP)

lab: env
	$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/quickstart.ipynb

test: env system-deps
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: env
	$(PY) -m ruff check .

# The widgets' front end: npm packages (regl-scatterplot) bundled by esbuild into one ESM
# file per widget, so nothing is fetched from the network when a notebook runs.
js: $(JS_BUNDLE)

$(JS_BUNDLE): js/package.json js/package-lock.json $(wildcard js/*.js) js/build.mjs
	command -v npm >/dev/null || (apt-get update && apt-get install -y nodejs npm)
	cd js && npm ci --no-audit --no-fund && node build.mjs

# The browser tests drive Debian's chromium; the label store tests start a throw-away
# PostgreSQL server from Debian's postgresql package (installing needs root, as in CI).
system-deps:
	test -x /usr/bin/chromium && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  (apt-get update && apt-get install -y chromium postgresql)

clean:
	rm -rf $(VENV) .pytest_cache
