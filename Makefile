# FedWeb — every command a developer or CI needs. Python 3.11+ is the only prerequisite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The OT-based PSI's library (spu), in its own environment: see requirements-psi.txt.
PSI_VENV := .venv-psi
PSI_STAMP := $(PSI_VENV)/.installed
REF_VENV := .venv-ref
REF_STAMP := $(REF_VENV)/.installed
# SecretFlow, for `make bench-secretflow` only: its wheels are for CPython 3.11.
SF_PYTHON ?= python3.11
SF_VENV := .venv-sf
SF_STAMP := $(SF_VENV)/.installed
DEMO_PORT ?= 8000
# A demo on another port gets its own folder, so two demos can run side by side.
DEMO_DIR ?= var/demo$(if $(filter 8000,$(DEMO_PORT)),,-$(DEMO_PORT))

.PHONY: help venv test demo bench bench-jobs bench-scoring bench-ou bench-he-scheme bench-secretflow check schema clean-demo messages

help:
	@echo "make demo   start a site with sample data on http://127.0.0.1:$(DEMO_PORT)/"
	@echo "make test   run the whole test suite"
	@echo "make bench  run the engine benchmarks and write docs/benchmarks.md"
	@echo "make bench-jobs  run only the jobs-between-two-sites benchmark (its section of docs/benchmarks.md)"
	@echo "make bench-scoring  run only the scoring-between-two-sites benchmark (its section of docs/benchmarks.md)"
	@echo "make bench-ou  run only the Okamoto-Uchiyama against Paillier benchmark (its section of docs/benchmarks.md)"
	@echo "make bench-he-scheme  run only SecureBoost and hetero LR under each encryption scheme (its section of docs/benchmarks.md)"
	@echo "make bench-secretflow  install SecretFlow 1.11 into .venv-sf and run it side by side with ours (its section of docs/benchmarks.md; ~40 min)"
	@echo "make messages  collect the pages' texts into locale/zh_Hans/LC_MESSAGES/django.po and compile it"

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

$(PSI_STAMP): requirements-psi.txt
	test -x $(PSI_VENV)/bin/python || $(PYTHON) -m venv $(PSI_VENV)
	$(PSI_VENV)/bin/python -m pip install --quiet --no-deps -r requirements-psi.txt
	touch $(PSI_STAMP)

venv: $(STAMP) $(PSI_STAMP)

# The benchmarks' reference implementations, kept apart from the product's packages.
$(REF_STAMP): benchmarks/requirements-reference.txt
	test -x $(REF_VENV)/bin/python || $(PYTHON) -m venv $(REF_VENV)
	$(REF_VENV)/bin/python -m pip install --quiet -r benchmarks/requirements-reference.txt
	touch $(REF_STAMP)

test: $(STAMP) $(PSI_STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

check: $(STAMP)
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run

schema: $(STAMP)
	$(PY) manage.py spectacular --validate --fail-on-warn --file docs/openapi.yaml

demo: $(STAMP) $(PSI_STAMP)
	FEDWEB_DATA_DIR=$(DEMO_DIR) DEMO_PORT=$(DEMO_PORT) DEMO_PROXY_PORT=$(DEMO_PROXY_PORT) $(PY) -m fedweb.demo

clean-demo:
	rm -rf $(DEMO_DIR)

bench: $(STAMP) $(PSI_STAMP) $(REF_STAMP)
	FEDWEB_BENCH_REFERENCE_PYTHON=$(REF_VENV)/bin/python $(PY) -m benchmarks

# The jobs layer between two real sites (part of `make bench`); rewrites its own section of docs/benchmarks.md.
bench-jobs: $(STAMP)
	$(PY) -m benchmarks jobs

# Online and batch scoring between two real sites (part of `make bench`); rewrites its own section of docs/benchmarks.md.
bench-scoring: $(STAMP)
	$(PY) -m benchmarks scoring

# Okamoto-Uchiyama against Paillier, the same operations in one process (part of `make bench`); rewrites its own section of docs/benchmarks.md.
bench-ou: $(STAMP)
	$(PY) -m benchmarks ou

# SecureBoost and hetero LR under Paillier and Okamoto-Uchiyama (part of `make bench`); rewrites its own section.
bench-he-scheme: $(STAMP)
	$(PY) -m benchmarks he_scheme

# SecretFlow beside ours on the same files (heavy, so not part of `make bench`); rewrites its own section of
# docs/benchmarks.md. SecretFlow's own requirements are replaced by benchmarks/secretflow/requirements.txt
# (see its comments), hence --no-deps. BENCH_ARGS, e.g. "--repeats 2" or "--only psi,sgb".
$(SF_STAMP): benchmarks/secretflow/requirements.txt
	test -x $(SF_VENV)/bin/python || $(SF_PYTHON) -m venv $(SF_VENV)
	$(SF_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SF_VENV)/bin/python -m pip install --quiet -r benchmarks/secretflow/requirements.txt
	$(SF_VENV)/bin/python -m pip install --quiet --no-deps secretflow==1.11.0b1
	touch $(SF_STAMP)

bench-secretflow: $(STAMP) $(PSI_STAMP) $(SF_STAMP)
	FEDWEB_BENCH_SECRETFLOW_PYTHON=$(CURDIR)/$(SF_VENV)/bin/python $(PY) -m benchmarks.bench_secretflow $(BENCH_ARGS)

# Translations (needs GNU gettext). The engine's texts are listed first (fedweb/i18n/engine_text.py),
# then every text goes into the .po, then the .mo is compiled; both are committed. File-only
# locations keep the .po's diff small when code moves.
MESSAGES_IGNORE := --ignore=.venv --ignore=.venv-ref --ignore=.venv-sf --ignore=.venv-psi --ignore=var --ignore=node_modules --ignore=tests \
	--ignore=benchmarks --ignore=docs --ignore=docker --ignore=frontend/static/vendor
messages: $(STAMP)
	$(PY) manage.py engine_strings
	$(PY) manage.py makemessages -l zh_Hans --no-obsolete --add-location=file $(MESSAGES_IGNORE)
	$(PY) manage.py compilemessages -l zh_Hans $(MESSAGES_IGNORE)
