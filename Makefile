# insurance-charges: every command creates and uses the project's own virtual environment.
#
# No variable's value is ever code, to make or to the shell
# (docs/getting-started.md#the-two-commands):
# whatever `make NAME=value` or the environment sets is taken as literal text, never expanded
# by make, and reaches each command through the environment: a recipe quotes it ("$$NAME"),
# or devtools/make_targets.py builds the command's argument list from it. Spaces, quotes, ;,
# $(...), backticks and newlines stay inside the one argument they belong to.
CALLER_VARIABLES := PYTHON VENV EBCLI AIRFLOW_VENV PORT HOST IN OUT ARGS DATA SIGNING_KEY \
	MODEL UPLOAD REGISTRY ECR_REPOSITORY AWS_REGION MUTATION_FLOOR PYTEST_ARGS SOAK_SECONDS
COMMAND_LINE_VARIABLES := $(foreach name,$(.VARIABLES),$(if $(filter command,$(firstword \
	$(origin $(name)))),$(name)))
$(foreach name,$(sort $(CALLER_VARIABLES) $(COMMAND_LINE_VARIABLES)),$(if $(filter command \
	environment,$(firstword $(origin $(name)))),$(eval override $(name) := $$(value $(name)))))

PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
# make mutate fails below this share of mutants killed in the core
# (docs/testing.md#mutation-testing): 95%, issue 21's bar for the core. The mutants that survive
# are equivalent ones, listed there with why; the floor leaves room for those, not for a module
# of untested lines.
MUTATION_FLOOR ?= 95
# The Ed25519 key `make train` signs models with: kept outside the repository and the image.
SIGNING_KEY ?= $(HOME)/.config/insurance-charges/model-signing.key
# The EB CLI and Apache Airflow in virtual environments of their own (below).
EBCLI  ?= .venv-ebcli
AIRFLOW_VENV ?= .venv-airflow
export $(foreach name,$(sort $(CALLER_VARIABLES) $(COMMAND_LINE_VARIABLES)),$(if $(filter \
	undefined,$(origin $(name))),,$(name)))

# make itself reads the virtual environments' paths as file names (the stamps that say what is
# installed): there a blank splits a name, and : ; | # % = $ and quotes are make's own syntax
# (in a rule, a ; starts a recipe). They are refused, with the one line make can print.
FILE_NAME_CHARACTERS := a b c d e f g h i j k l m n o p q r s t u v w x y z \
	A B C D E F G H I J K L M N O P Q R S T U V W X Y Z 0 1 2 3 4 5 6 7 8 9 . _ - / + @
leftover = $(if $(2),$(call leftover,$(subst $(firstword $(2)),,$(1)),$(wordlist 2,$(words \
	$(2)),$(2))),$(1))
define unusable_path
$(1) must be a path of letters, digits and . _ - / + @ only (make reads a blank or any other character in a file name as its own syntax); set $(1) to such a path
endef
$(foreach name,VENV EBCLI AIRFLOW_VENV,$(if $(and $($(name)),$(if $(call leftover,$($(name)),\
	$(FILE_NAME_CHARACTERS)),,ok)),,$(error $(call unusable_path,$(name)))))

.PHONY: help run check lint test docs soak audit bench train score lock mutate clean

help:  ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(BIN)/python:
	"$$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required (PyCaret 3.3 refuses 3.12+); set PYTHON=/path/to/python3.11"'
	"$$PYTHON" -m venv -- "$$VENV"

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	@echo "Installing the service's pinned packages (requirements.txt: PyCaret, scikit-learn, pandas, pyarrow, boto3...; about 1.3 GB): a few minutes the first time, then never again until requirements.txt changes"
	"$$VENV/bin/python" -m pip install --quiet --no-deps -r requirements.txt
	touch -- "$$VENV/.runtime"

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	@echo "Installing the test and docs tools (requirements-dev.txt; about 0.5 GB more): a minute or two"
	"$$VENV/bin/python" -m pip install --quiet --no-deps -r requirements-dev.txt
	touch -- "$$VENV/.dev"

# The EB CLI in its own virtual environment (its pins must not meet the service's): the
# bundle tests zip the project with its code, exactly as `eb deploy` does.
$(EBCLI)/.installed: requirements-ebcli.txt
	"$$PYTHON" -m venv -- "$$EBCLI"
	"$$EBCLI/bin/python" -m pip install --quiet --no-deps -r requirements-ebcli.txt
	"$$EBCLI/bin/python" -m pip check
	touch -- "$$EBCLI/.installed"

# Apache Airflow in its own virtual environment too (its pins must not meet PyCaret's): the
# retraining DAG's tests import it with DagBag and run it end to end with `airflow dags test`.
$(AIRFLOW_VENV)/.installed: requirements-airflow.txt
	"$$PYTHON" -m venv -- "$$AIRFLOW_VENV"
	"$$AIRFLOW_VENV/bin/python" -m pip install --quiet --no-deps -r requirements-airflow.txt
	"$$AIRFLOW_VENV/bin/python" -m pip check
	touch -- "$$AIRFLOW_VENV/.installed"

run: $(VENV)/.runtime  ## Serve the committed model with gunicorn on $HOST:$PORT (default 127.0.0.1:8000)
	exec "$$VENV/bin/python" -m insurance_charges.startup

# The unit tier (tests/tiers.py): no servers, Docker, browser, training or child processes; what a
# developer runs between edits (about 1.5 minutes on 2 cores). A test that starts a process
# outside the slow tier fails here and in `make test` alike.
check: $(VENV)/.dev  ## Run the unit tier between edits (about 1.5 minutes)
	"$$VENV/bin/python" -m devtools.make_targets check

test: $(VENV)/.dev $(EBCLI)/.installed $(AIRFLOW_VENV)/.installed  ## Run every test (CI runs this through .ci/run)
	EBCLI_VENV="$$EBCLI" "$$VENV/bin/python" -m devtools.make_targets test

# Static checks (docs/testing.md#static-checks): the layers' import contracts, ruff's lint and
# format, and mypy's types, each configured in pyproject.toml.
lint: $(VENV)/.dev  ## Check the import layers, lint, formatting and types (ruff, mypy, import-linter)
	"$$VENV/bin/lint-imports" --no-cache
	"$$VENV/bin/ruff" check
	"$$VENV/bin/ruff" format --check
	"$$VENV/bin/mypy"

# The docs site (docs/, mkdocs.yml): its hook imports the project, hence `python -m` from here.
docs: $(VENV)/.dev  ## Build the documentation site into site/ (mkdocs build --strict)
	"$$VENV/bin/python" -m mkdocs build --strict --site-dir site

soak: $(VENV)/.dev  ## Soak test at ~70% of capacity (SOAK_SECONDS, default 1800)
	SOAK_SECONDS="$${SOAK_SECONDS:-1800}" "$$VENV/bin/python" -m pytest tests/test_soak.py -q

audit: $(VENV)/.dev  ## Static security scan (bandit) and dependency advisories (pip-audit)
	"$$VENV/bin/bandit" -q -r insurance_charges application.py gunicorn.conf.py -ll
	"$$VENV/bin/pip-audit" -r requirements.txt --no-deps --disable-pip --progress-spinner off

# The Kafka consumer's figures need Tansu, the worker route's moto's server: both test-only
# packages (requirements-dev.txt).
bench: $(VENV)/.dev  ## Benchmark the service as deployed (wrk), the Kafka consumer and the EB worker route; writes bench/results/
	@{ command -v wrk && command -v nginx; } >/dev/null || { [ "$$(id -u)" = 0 ] \
		&& command -v apt-get >/dev/null && apt-get update -qq \
		&& apt-get install -y -qq wrk nginx >/dev/null; } \
		|| { echo "make bench needs wrk and nginx: apt-get install wrk nginx" >&2; exit 1; }
	"$$VENV/bin/python" -m bench.run
	"$$VENV/bin/python" -m bench.kafka --out bench/results/kafka.json
	"$$VENV/bin/python" -m bench.worker
	"$$VENV/bin/python" -m bench.capture_cost
	@docker info >/dev/null 2>&1 || { echo "make bench needs a running Docker engine for the SageMaker figures (.ci/run shows how to start one)" >&2; exit 1; }
	docker build -q -t insurance-charges:bench . >/dev/null
	"$$VENV/bin/python" -m bench.invocations --image insurance-charges:bench \
		--out bench/results/invocations.json

mutate: $(VENV)/.dev  ## Mutation-test the core (mutmut, tens of minutes): fails below MUTATION_FLOOR% killed
	rm -rf mutants
	"$$VENV/bin/mutmut" run
	"$$VENV/bin/python" -m devtools.mutation_score --min "$$MUTATION_FLOOR" --out bench/results/mutation.json

train: $(VENV)/.runtime  ## Retrain on DATA=path (or the checked download), sign with SIGNING_KEY, write model/
	exec "$$VENV/bin/python" -m devtools.make_targets train

# The model registry (docs/model-releases.md): the store is MODEL_STORE or --store in ARGS.
.PHONY: registry
registry: $(VENV)/.runtime  ## Model releases: make registry ARGS='list --history'
	exec "$$VENV/bin/python" -m devtools.make_targets registry

score: $(VENV)/.runtime  ## Score a file: make score IN=in.csv OUT=out.csv (paths, s3:// or -; ARGS=more flags)
	exec "$$VENV/bin/python" -m devtools.make_targets score

# make release REGISTRY=host[:port]/repo, or ECR_REPOSITORY=name with AWS_REGION
# (docs/deploy/elastic-beanstalk.md#release-once-deploy-the-same-image): the image built once
# from HEAD, checked, pushed.
.PHONY: release
release: $(VENV)/.runtime  ## Build, check and push the image once: REGISTRY=host/repo or ECR_REPOSITORY=name
	exec "$$VENV/bin/python" -m devtools.make_targets release

.PHONY: model-archive
model-archive: $(VENV)/.runtime  ## SageMaker's model.tar.gz: make model-archive [MODEL=x.pkl] [OUT=path] [UPLOAD=s3://b/k/model.tar.gz]
	exec "$$VENV/bin/python" -m devtools.make_targets model-archive

lock:  ## Print a fresh resolution of the top-level pins (compare with requirements.txt)
	rm -rf /tmp/insurance-charges-lock && "$$PYTHON" -m venv /tmp/insurance-charges-lock
	/tmp/insurance-charges-lock/bin/pip install --quiet pycaret==3.3.2 six flask gunicorn orjson cryptography confluent-kafka
	/tmp/insurance-charges-lock/bin/pip freeze --exclude-editable

clean:  ## Remove the virtual environments, caches and the built docs site
	rm -rf -- "$$VENV" "$$EBCLI" "$$AIRFLOW_VENV" .pytest_cache mutants site
