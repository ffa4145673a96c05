# Vigil: `make demo` runs the whole system on its embedded defaults; `make test` runs the tests.
# Both create .venv and install everything they need first.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SOURCES := monitoring cli api app dags tests benchmarks migrations
PYTEST_ARGS ?=
# Two pytest workers: most tests wait on real servers and processes, so two share the 2 cores well
# (the whole suite in about 12 minutes here, see the README); whole modules stay on one worker (--dist loadfile).
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=25

export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export GRADIO_ANALYTICS_ENABLED := False

.PHONY: install system-deps test test-fast demo lint clean

# Bytecode is compiled once here because shells and CI images often set PYTHONDONTWRITEBYTECODE:
# then nothing is cached and every `vigil` process the tests start recompiles mlflow, pandas and
# scikit-learn from source (the suite took 18 instead of 11 minutes).
# uv resolves and installs in seconds; it trusts the system's certificate store (proxies with
# their own CA), and plain pip takes over if uv cannot be used. The celery extra: the CeleryExecutor's
# end-to-end test and `vigil demo --executor celery`.
$(INSTALLED): pyproject.toml Makefile
	@echo "==> creating $(VENV) and installing Vigil with its dependencies (first time: 2-3 minutes)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	UV_SYSTEM_CERTS=1 $(BIN)/uv pip install --python $(BIN)/python -e '.[dev,celery]' \
	  || $(BIN)/python -m pip install -e '.[dev,celery]'
	@echo "==> compiling the installed packages to bytecode"
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib/python*/site-packages >/dev/null
	touch $(INSTALLED)

install: $(INSTALLED)

# Debian's chromium drives the dashboard's browser tests; wrk drives the API benchmark.
system-deps:
	@missing=""; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	test -x /usr/sbin/nginx || command -v nginx >/dev/null || missing="$$missing nginx-light"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "==> installing$$missing from Debian's packages"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "==> not installed:$$missing (needs root and apt-get); the browser and balancer tests will be skipped"; \
	  fi; \
	fi

test: install system-deps
	@$(BIN)/python -m compileall -q -j 0 $(SOURCES) >/dev/null
	@$(BIN)/python -m tests.preflight
	$(BIN)/lint-imports --no-cache
	$(PYTEST) $(PYTEST_ARGS)

# Local quick run: everything but the slow end-to-end tests (CI always runs those).
test-fast: install
	@$(BIN)/python -m compileall -q -j 0 $(SOURCES) >/dev/null
	@$(BIN)/python -m tests.preflight
	$(PYTEST) --skip-slow $(PYTEST_ARGS)

demo: install
	$(BIN)/vigil demo

lint: install
	$(BIN)/ruff check $(SOURCES) docs
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf var test-artifacts .pytest_cache
