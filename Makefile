# Two commands do all set-up on a fresh machine: `make demo` and `make test`.

# convsync needs Python 3.11 or newer: PYTHON=/path/to/python if given, else the first
# of these that is new enough.
PYTHONS    := python3.13 python3.12 python3.11 python3
NEW_ENOUGH := import sys; sys.exit(sys.version_info < (3, 11))
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The status page's browser tests drive Debian's Chromium through its chromedriver.
CHROMIUM     := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver
BROWSER_DEBS := chromium chromium-driver

.PHONY: demo test lint typecheck pytest chromium bench clean docs

$(BIN)/python:
	@for py in $(or $(PYTHON),$(PYTHONS)); do \
		if "$$py" -c '$(NEW_ENOUGH)' 2>/dev/null; then \
			echo "$$py -m venv $(VENV)"; \
			"$$py" -m venv $(VENV) && $(BIN)/python -m pip install --quiet --upgrade pip; \
			exit $$?; \
		fi; \
		version=$$("$$py" -c 'import platform; print(platform.python_version())' 2>/dev/null) \
			&& found="$${found:+$$found, }$$py $$version"; \
	done; \
	echo "convsync needs Python 3.11 or newer; found: $${found:-none}" \
		"— install python3.11 or set PYTHON=/path/to/python3.11" >&2; \
	exit 1

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Exits 0 when the dry run shows what the demo is meant to (its samples are dated
# relative to today), 1 naming what differs.
demo: $(STAMP)
	$(BIN)/convsync demo --output demo-plan.jsonl
	@echo "First lines of demo-plan.jsonl:"
	@head -n 3 demo-plan.jsonl

lint: $(STAMP)
	$(BIN)/ruff check src tests bench docs/gen
	$(BIN)/ruff format --check src tests bench docs/gen
	$(BIN)/hadolint Dockerfile
	# the layers: no import against them, no import cycle (contracts in pyproject.toml)
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

# The documentation site (mkdocs.yml) into site/. --strict fails on a broken link or
# anchor, a page missing from the nav, or a reference page the code cannot generate.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

pytest: $(STAMP) chromium
	$(BIN)/pytest -q

# Installs Chromium and its driver when either is missing: as root, else through `sudo -n`;
# `apt-get update` only when the install fails without it. Where neither works (or there is
# no apt-get) one line says so and the run goes on: the browser tests then skip. Installed
# already: two file checks, no apt.
chromium:
	@[ -x $(CHROMIUM) ] && [ -x $(CHROMEDRIVER) ] && exit 0; \
	if ! command -v apt-get >/dev/null; then sudo=no; \
	elif [ "$$(id -u)" = 0 ]; then sudo=; \
	elif sudo -n true 2>/dev/null; then sudo="sudo -n "; \
	else sudo=no; fi; \
	if [ "$$sudo" = no ]; then \
		echo "$(CHROMIUM) or $(CHROMEDRIVER) is missing, so the browser tests will be skipped;" \
			"to run them: apt-get install $(BROWSER_DEBS) as root, then make test" >&2; \
		exit 0; \
	fi; \
	install="$${sudo}env DEBIAN_FRONTEND=noninteractive apt-get install -y"; \
	install="$$install --no-install-recommends $(BROWSER_DEBS)"; \
	echo "$$install"; \
	$$install || { echo "$${sudo}apt-get update"; $${sudo}apt-get update && $$install; } \
		|| { echo "could not install $(BROWSER_DEBS), which the browser tests need" >&2; exit 1; }

test: lint typecheck docs pytest

bench: $(STAMP)
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/google_ads.py
	$(BIN)/python bench/google_data_manager.py
	$(BIN)/python bench/metrica.py
	$(BIN)/python bench/vk_ads.py
	$(BIN)/python bench/sql_source.py
	$(BIN)/python bench/amocrm_source.py
	$(BIN)/python bench/bitrix24_source.py
	$(BIN)/python bench/hubspot_source.py
	$(BIN)/python bench/metrica_logs_source.py
	$(BIN)/python bench/ga4_source.py
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/report.py

# The image's locked, hashed dependencies (see the Dockerfile), resolved by uv for every
# platform at once (Linux x86_64 and aarch64 alike) on the image's Python:
# requirements/runtime.txt from pyproject's [project.dependencies], requirements/build.txt
# from pip and its [build-system] requires. Pins already in a lock stay unless
# `make lock UPGRADE=1`. `make docker-check` builds and tries the image and compose.yaml
# (minutes, a Docker daemon of its own; `bash deploy/docker-check.sh teardown` after).
UV_VERSION   := 0.13.9
IMAGE_PYTHON := 3.11
UV_COMPILE    = $(BIN)/uv pip compile --quiet --universal --python-version $(IMAGE_PYTHON) \
	--generate-hashes --custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade)
BUILD_REQUIRES := import tomllib; \
	print("pip", *tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")

.PHONY: lock docker-check

lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(UV_COMPILE) pyproject.toml -o requirements/runtime.txt
	$(BIN)/python -c '$(BUILD_REQUIRES)' | $(UV_COMPILE) - -o requirements/build.txt

docker-check: $(STAMP)
	bash deploy/docker-check.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache demo-plan.jsonl site
