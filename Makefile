# Quick start: `make run` (serve on http://localhost:6543) and `make test`.
# Both create .venv and install what they need; both can be run again at any time.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
INI    ?= development.ini
STAMP  := $(VENV)/.installed

.PHONY: run test install db catalog bench clean

run: db
	$(BIN)/pserve $(INI)

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=69,<82" wheel
	$(BIN)/python -m pip install --quiet -e ".[testing]"
	touch $@

# Migrate, seed roles and genres, load the offline catalog. Idempotent.
db: install
	$(BIN)/nexus-initialize-db $(INI)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache nexus.sqlite*
