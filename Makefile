# Two entry points for a fresh machine: `make lab` and `make test`. Both are idempotent:
# the environment is built once into $(VENV) and reused while pyproject.toml is unchanged.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
JS_BUNDLE := workbench/widgets/static/scatter.js

.PHONY: env lab test lint browser-deps js clean

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade "pip>=24"
	$(PY) -m pip install -e ".[test]"
	touch $(STAMP)

lab: env
	$(VENV)/bin/jupyter lab notebooks/quickstart.ipynb

test: env
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: env
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
