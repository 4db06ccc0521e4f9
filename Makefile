# ContentOps: `make run` serves the app with demo data; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
HOST   ?= 127.0.0.1
PORT   ?= 5000
PO     := contentops/translations/zh/LC_MESSAGES/messages.po
MO     := $(PO:.po=.mo)

.PHONY: run test setup lint bench i18n migration clean

run: .make-runtime .make-assets $(MO)
	$(PY) -m contentops init
	$(PY) -m contentops demo --if-empty
	$(PY) -m contentops serve --host $(HOST) --port $(PORT)

test: .make-test .make-assets $(MO)
	$(PY) -m pytest $(PYTEST_ARGS)

setup: .make-test .make-assets $(MO)

lint: .make-test
	$(VENV)/bin/ruff check .

# Python: a venv with the package in editable mode; redone when pyproject.toml changes.
$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

.make-runtime: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e .
	touch $@

.make-test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e '.[test]'
	touch .make-runtime $@

# Front-end libraries from the npm registry (lockfile committed), copied into static/vendor.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

.make-assets: node_modules/.package-lock.json scripts/vendor_assets.py
	$(PY) scripts/vendor_assets.py
	touch $@

# The compiled catalog is built, not committed (binary files do not merge).
$(MO): $(PO) | .make-runtime
	$(PY) -m babel.messages.frontend compile -d contentops/translations -l zh

# Re-extract messages, merge them into the zh catalog and compile it.
i18n: .make-test
	$(PY) scripts/i18n.py update

# Regenerate the initial migration from the models (pre-release only).
migration: .make-test
	PY=$(PY) scripts/regen_migration.sh

clean:
	rm -rf $(VENV) node_modules static/vendor .make-*
