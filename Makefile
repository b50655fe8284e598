# Developer entry points. `make run` starts the server, `make test` runs the suite.

SHELL := /bin/bash
.DEFAULT_GOAL := run

CARGO ?= cargo

# Database for `make run` (overridable: make run DATABASE_URL=postgres://...).
DATABASE_URL ?= sqlite://crm.db
export DATABASE_URL

# PostgreSQL used by `make test`; skipped when unreachable, required when CI=true.
PG_TEST_URL ?= postgres://postgres@127.0.0.1:5432/test

NEXTEST := $(CARGO) nextest run --workspace --no-fail-fast

.PHONY: run build test nextest fmt fmt-check lint openapi openapi-check clean \
	spec-lint examples examples-typescript examples-python crm-debug bench soak fuzz-api

# `make bench`: seed, load and baseline on both databases (not part of CI).
# BENCH_SCALE=0.1 for a quick run; BENCH_DB=postgres|sqlite|both; BENCH_DURATION seconds
# per scenario and concurrency; BENCH_CONCURRENCY=1,16,64; BENCH_PG_URL=postgres://…;
# BENCH_OUT: where results.json and results.md go; BENCH_SCENARIOS=get_by_id,… to run only some.
BENCH_SCALE ?= 1
BENCH_DB ?= both
BENCH_DURATION ?= 10
BENCH_CONCURRENCY ?= 1,16,64
BENCH_PG_URL ?= postgres://postgres@127.0.0.1:5432
BENCH_OUT ?= bench

run:
	CRM_ENV=development $(CARGO) run --release -p crm-server --bin crm -- serve

build:
	$(CARGO) build --release

nextest:
	@if ! $(CARGO) nextest --version >/dev/null 2>&1; then \
		echo "==> installing cargo-nextest"; \
		$(CARGO) install cargo-nextest --locked; \
	fi

test: nextest
	@echo "==> tests on SQLite"
	CRM_TEST_DB=sqlite $(NEXTEST)
	@url='$(PG_TEST_URL)'; \
	rest="$${url#*://}"; \
	case "$$rest" in *@*) rest="$${rest#*@}";; esac; \
	hostport="$${rest%%/*}"; hostport="$${hostport%%\?*}"; \
	host="$${hostport%%:*}"; host="$${host:-127.0.0.1}"; \
	case "$$hostport" in *:*) port="$${hostport##*:}";; *) port=5432;; esac; \
	port="$${port:-5432}"; \
	if command -v pg_isready >/dev/null 2>&1; then \
		pg_isready -q -h "$$host" -p "$$port" -t 3; reachable=$$?; \
	else \
		timeout 3 bash -c "</dev/tcp/$$host/$$port" 2>/dev/null; reachable=$$?; \
	fi; \
	if [ "$$reachable" -eq 0 ]; then \
		echo "==> tests on PostgreSQL ($$host:$$port)"; \
		echo "CRM_TEST_DB=postgres CRM_TEST_PG_URL=$$url $(NEXTEST)"; \
		CRM_TEST_DB=postgres CRM_TEST_PG_URL="$$url" $(NEXTEST); \
	elif [ "$${CI:-}" = "true" ]; then \
		echo "error: PostgreSQL is not reachable at $$host:$$port (PG_TEST_URL=$$url); it is required when CI=true" >&2; \
		exit 1; \
	else \
		echo "notice: PostgreSQL not reachable at $$host:$$port (PG_TEST_URL=$$url); PostgreSQL tests skipped"; \
	fi

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

openapi: crm-debug
	@mkdir -p api-spec
	target/debug/crm openapi > api-spec/openapi.json.tmp
	@mv api-spec/openapi.json.tmp api-spec/openapi.json
	@echo "wrote api-spec/openapi.json"

openapi-check: crm-debug
	@tmp="$$(mktemp)"; trap 'rm -f "$$tmp"' EXIT; \
	target/debug/crm openapi > "$$tmp" || exit 1; \
	if ! diff -u api-spec/openapi.json "$$tmp"; then \
		echo "error: api-spec/openapi.json is out of date; run 'make openapi' and commit the result" >&2; \
		exit 1; \
	fi; \
	echo "api-spec/openapi.json is up to date"

# ---- The spec, as its consumers see it: lint, and the clients generated from it ----

TS_EXAMPLE := examples/typescript
TS_DEPS := $(TS_EXAMPLE)/node_modules/.package-lock.json
PY_EXAMPLE := examples/python
PY_VENV := $(PY_EXAMPLE)/.venv
PYTHON ?= python3
# Databases for `make examples-python` on PostgreSQL are created and dropped through this URL.
PG_ADMIN_URL ?= postgres://postgres@127.0.0.1:5432/postgres
export PG_ADMIN_URL

# The pinned npm tools of examples/typescript (Redocly CLI, openapi-typescript, tsc).
$(TS_DEPS): $(TS_EXAMPLE)/package.json $(TS_EXAMPLE)/package-lock.json
	cd $(TS_EXAMPLE) && npm ci --no-audit --no-fund --loglevel=error

# The pinned Python generator and the generated client's run-time packages.
$(PY_VENV)/.installed: $(PY_EXAMPLE)/requirements.txt
	rm -rf $(PY_VENV)
	$(PYTHON) -m venv $(PY_VENV)
	$(PY_VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

spec-lint: $(TS_DEPS)
	cd $(TS_EXAMPLE) && npm run --silent lint-spec

# The debug `crm` binary (spec generation, examples/with-server.sh, the fuzzer). Built with
# the workspace's feature set, so it reuses what `make test` compiled instead of rebuilding
# the dependencies with the narrower features of crm-server alone.
crm-debug:
	$(CARGO) build -q --workspace --bins

examples-typescript: $(TS_DEPS) crm-debug
	cd $(TS_EXAMPLE) && npm run --silent generate && npm run --silent typecheck
	@echo "examples/typescript type-checks against api-spec/openapi.json"
	cd $(TS_EXAMPLE) && rm -rf dist && npm run --silent build
	examples/with-server.sh sqlite node $(TS_EXAMPLE)/dist/main.js

examples-python: $(PY_VENV)/.installed crm-debug
	rm -rf $(PY_EXAMPLE)/crm_client
	PATH="$(CURDIR)/$(PY_VENV)/bin:$$PATH" openapi-python-client generate --fail-on-warning \
		--config $(PY_EXAMPLE)/client-config.yaml \
		--path api-spec/openapi.json --meta none --output-path $(PY_EXAMPLE)/crm_client
	examples/with-server.sh sqlite $(PY_VENV)/bin/python $(PY_EXAMPLE)/import.py
	examples/with-server.sh postgres $(PY_VENV)/bin/python $(PY_EXAMPLE)/import.py

examples: spec-lint examples-typescript examples-python

bench:
	$(CARGO) build --release -p crm-server -p crm-bench
	target/release/crm-bench --db $(BENCH_DB) --scale $(BENCH_SCALE) \
		--duration $(BENCH_DURATION) --concurrency $(BENCH_CONCURRENCY) \
		--pg-url $(BENCH_PG_URL) --out $(BENCH_OUT)

# `make soak`: the release server on 127.0.0.1 under a mixed read/write load for
# SOAK_MINUTES (default 5), memory sampled every few seconds; reports requests, errors by
# status, latency per minute and RSS growth (not part of CI). SOAK_DB=sqlite|postgres,
# SOAK_SCALE=0.01 (10 000 contacts), SOAK_CONCURRENCY=16; output in SOAK_OUT.
SOAK_MINUTES ?= 5
SOAK_DB ?= sqlite
SOAK_SCALE ?= 0.01
SOAK_CONCURRENCY ?= 16
SOAK_OUT ?= target/soak

soak:
	$(CARGO) build --release -p crm-server -p crm-bench
	target/release/crm-bench --pg-url $(BENCH_PG_URL) --out $(SOAK_OUT) soak \
		--minutes $(SOAK_MINUTES) --soak-db $(SOAK_DB) --soak-scale $(SOAK_SCALE) \
		--soak-concurrency $(SOAK_CONCURRENCY)

# Python virtual environment holding the pinned API fuzzer (schemathesis).
VENV := .venv

$(VENV)/bin/st: fuzz/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r fuzz/requirements.txt
	@touch $@

# Fuzzes every operation of the live server, on SQLite and on PostgreSQL (fuzz/run).
fuzz-api: $(VENV)/bin/st crm-debug
	fuzz/run

clean:
	$(CARGO) clean
	rm -f api-spec/openapi.json.tmp
	rm -rf $(TS_EXAMPLE)/node_modules $(TS_EXAMPLE)/src/schema.d.ts $(TS_EXAMPLE)/dist $(PY_VENV) $(PY_EXAMPLE)/crm_client
