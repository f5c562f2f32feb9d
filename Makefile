# insurance-charges: every command creates and uses the project's own virtual environment.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
# make mutate fails below this share of mutants killed in the core
# (docs/testing.md#mutation-testing).
MUTATION_FLOOR ?= 90
# The Ed25519 key `make train` signs models with: kept outside the repository and the image.
SIGNING_KEY ?= $(HOME)/.config/insurance-charges/model-signing.key
export PORT

.PHONY: help run check test docs soak audit bench train score lock mutate clean

help:  ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required (PyCaret 3.3 refuses 3.12+); set PYTHON=/path/to/python3.11"'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	@echo "Installing the service's pinned packages (requirements.txt: PyCaret, scikit-learn, pandas, pyarrow, boto3...; about 1.3 GB): a few minutes the first time, then never again until requirements.txt changes"
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	@echo "Installing the test and docs tools (requirements-dev.txt; about 0.5 GB more): a minute or two"
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-dev.txt
	touch $@

# The EB CLI in its own virtual environment (its pins must not meet the service's): the
# bundle tests zip the project with its code, exactly as `eb deploy` does.
EBCLI  ?= .venv-ebcli
$(EBCLI)/.installed: requirements-ebcli.txt
	$(PYTHON) -m venv $(EBCLI)
	$(EBCLI)/bin/python -m pip install --quiet --no-deps -r requirements-ebcli.txt
	$(EBCLI)/bin/python -m pip check
	touch $@

# Apache Airflow in its own virtual environment too (its pins must not meet PyCaret's): the
# retraining DAG's tests import it with DagBag and run it end to end with `airflow dags test`.
AIRFLOW_VENV ?= .venv-airflow
$(AIRFLOW_VENV)/.installed: requirements-airflow.txt
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --no-deps -r requirements-airflow.txt
	$(AIRFLOW_VENV)/bin/python -m pip check
	touch $@

run: $(VENV)/.runtime  ## Serve the committed model with gunicorn on $HOST:$PORT (default 127.0.0.1:8000)
	exec $(BIN)/python -m insurance_charges.startup

# The unit tier (tests/tiers.py): no servers, Docker, browser, training or child processes; what a
# developer runs between edits (about 1.5 minutes on 2 cores). A test that starts a process
# outside the slow tier fails here and in `make test` alike.
check: $(VENV)/.dev  ## Run the unit tier between edits (about 1.5 minutes)
	$(BIN)/python -m pytest -m "not slow" -q -p no:cacheprovider $(PYTEST_ARGS)

test: $(VENV)/.dev $(EBCLI)/.installed $(AIRFLOW_VENV)/.installed  ## Run every test (CI runs this through .ci/run)
	EBCLI_VENV=$(EBCLI) AIRFLOW_VENV=$(AIRFLOW_VENV) $(BIN)/python -m pytest $(PYTEST_ARGS)

# The docs site (docs/, mkdocs.yml): its hook imports the project, hence `python -m` from here.
docs: $(VENV)/.dev  ## Build the documentation site into site/ (mkdocs build --strict)
	$(BIN)/python -m mkdocs build --strict --site-dir site

soak: $(VENV)/.dev  ## Soak test at ~70% of capacity (SOAK_SECONDS, default 1800)
	SOAK_SECONDS=$${SOAK_SECONDS:-1800} $(BIN)/python -m pytest tests/test_soak.py -q

audit: $(VENV)/.dev  ## Static security scan (bandit) and dependency advisories (pip-audit)
	$(BIN)/bandit -q -r insurance_charges application.py gunicorn.conf.py -ll
	$(BIN)/pip-audit -r requirements.txt --no-deps --disable-pip --progress-spinner off

bench: $(VENV)/.runtime  ## Benchmark the service as deployed (wrk); writes bench/results/ (the docs' tables)
	@{ command -v wrk && command -v nginx; } >/dev/null || { [ "$$(id -u)" = 0 ] \
		&& command -v apt-get >/dev/null && apt-get update -qq \
		&& apt-get install -y -qq wrk nginx >/dev/null; } \
		|| { echo "make bench needs wrk and nginx: apt-get install wrk nginx" >&2; exit 1; }
	$(BIN)/python -m bench.run
	@docker info >/dev/null 2>&1 || { echo "make bench needs a running Docker engine for the SageMaker figures (.ci/run shows how to start one)" >&2; exit 1; }
	docker build -q -t insurance-charges:bench . >/dev/null
	$(BIN)/python -m bench.invocations --image insurance-charges:bench \
		--out bench/results/invocations.json

mutate: $(VENV)/.dev  ## Mutation-test the estimator core (mutmut, a few minutes): share killed
	rm -rf mutants
	$(BIN)/mutmut run
	$(BIN)/python -m devtools.mutation_score --min $(MUTATION_FLOOR) --out bench/results/mutation.json

train: $(VENV)/.runtime  ## Retrain on DATA=path (or the checked download), sign with SIGNING_KEY, write model/
	$(BIN)/python -m insurance_charges.training --signing-key $(SIGNING_KEY) $(if $(DATA),--data $(DATA))

# The model registry (docs/model-releases.md): the store is MODEL_STORE or --store in ARGS.
.PHONY: registry
registry: $(VENV)/.runtime  ## Model releases: make registry ARGS='list --history'
	$(BIN)/python -m insurance_charges.registry $(ARGS)

score: $(VENV)/.runtime  ## Score a file: make score IN=in.csv OUT=out.csv (paths, s3:// or -; ARGS=more flags)
	@[ -n "$(IN)" ] && [ -n "$(OUT)" ] || { echo "usage: make score IN=path|s3://bucket/key|- OUT=path|s3://bucket/key|- [ARGS='--max-rejects 10']" >&2; exit 2; }
	$(BIN)/python -m insurance_charges.scoring $(IN) -o $(OUT) $(ARGS)

# make release REGISTRY=host[:port]/repo, or ECR_REPOSITORY=name with AWS_REGION
# (docs/deploy/elastic-beanstalk.md#release-once-deploy-the-same-image): the image built once
# from HEAD, checked, pushed.
.PHONY: release
release: $(VENV)/.runtime  ## Build, check and push the image once: REGISTRY=host/repo or ECR_REPOSITORY=name
	$(BIN)/python -m insurance_charges.release $(if $(REGISTRY),--registry '$(REGISTRY)') \
		$(if $(ECR_REPOSITORY),--ecr-repository '$(ECR_REPOSITORY)' --region '$(AWS_REGION)')

.PHONY: model-archive
model-archive: $(VENV)/.runtime  ## SageMaker's model.tar.gz: make model-archive [MODEL=x.pkl] [OUT=path] [UPLOAD=s3://b/k/model.tar.gz]
	$(BIN)/python -m insurance_charges.platforms.sagemaker archive $(if $(MODEL),--model $(MODEL)) $(if $(OUT),-o $(OUT)) $(if $(UPLOAD),--upload $(UPLOAD))

lock:  ## Print a fresh resolution of the top-level pins (compare with requirements.txt)
	rm -rf /tmp/insurance-charges-lock && $(PYTHON) -m venv /tmp/insurance-charges-lock
	/tmp/insurance-charges-lock/bin/pip install --quiet pycaret==3.3.2 six flask gunicorn orjson cryptography
	/tmp/insurance-charges-lock/bin/pip freeze --exclude-editable

clean:  ## Remove the virtual environments, caches and the built docs site
	rm -rf $(VENV) $(EBCLI) $(AIRFLOW_VENV) .pytest_cache mutants site
