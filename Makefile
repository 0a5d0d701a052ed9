VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: setup demo test

# Creates .venv if it is missing and installs the package with its test, offline and explore extras.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[test,offline,explore]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/genzoo run infogan-mnist

test: setup
	$(PY) -m pytest
