# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The example's credentials are placeholders: a dry run reads them but sends nothing.
DEMO_ENV := GOOGLE_ADS_CLIENT_ID=demo GOOGLE_ADS_CLIENT_SECRET=demo-secret \
	GOOGLE_ADS_REFRESH_TOKEN=demo-refresh METRICA_TOKEN=demo-token VK_ID=demo VK_SECRET=demo-secret

demo: $(STAMP)
	$(DEMO_ENV) $(BIN)/convsync --config config/example.yaml --database-url sqlite:///./demo-ledger.db \
		sync --once --dry-run --output demo-plan.jsonl || test $$? -eq 1
	@echo "First lines of demo-plan.jsonl:"
	@head -n 3 demo-plan.jsonl

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/hadolint Dockerfile

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

pytest: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck pytest

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

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache demo-plan.jsonl
