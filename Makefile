# insurance-charges: every command creates and uses the project's own virtual environment.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
export PORT

.PHONY: help run test train lock clean

help:  ## List the commands
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required (PyCaret 3.3 refuses 3.12+); set PYTHON=/path/to/python3.11"'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime  ## Serve the committed model with gunicorn on $PORT (default 8000)
	exec $(BIN)/gunicorn --config gunicorn.conf.py application:application

test: $(VENV)/.dev  ## Run every test (CI runs this through .ci/run)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

train: $(VENV)/.runtime  ## Retrain on DATA=path (or the checked download) and write model/
	$(BIN)/python -m insurance_charges.train $(if $(DATA),--data $(DATA))

lock:  ## Re-resolve the top-level pins into requirements.txt (review the diff)
	rm -rf /tmp/insurance-charges-lock && $(PYTHON) -m venv /tmp/insurance-charges-lock
	/tmp/insurance-charges-lock/bin/pip install --quiet pycaret==3.3.2 six flask gunicorn orjson
	/tmp/insurance-charges-lock/bin/pip freeze --exclude-editable

clean:  ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache
