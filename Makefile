# The course, one command each. `make lab` is all a learner needs.
#
#   make lab [PORT=8899]       learner JupyterLab on notebooks/ (+ bundled PostgreSQL)
#   make instructor [PORT=..]  JupyterLab on the course root with nbgrader's formgrader
#   make test                  pytest --nbval at the root (tests + every notebook)
#   make stop                  stop the bundled PostgreSQL
#   make clean-db              stop it and delete its data (rebuilt on next use)
#   make release               build the learner release (autograder.release)
#
# The venv is created on first use and re-installed when pyproject.toml changes.

PYTHON ?= python3
PORT ?= 8888
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LAB_ARGS ?=
PYTEST_ARGS ?=
# Test processes (pytest-xdist); each notebook file stays in one process.
TEST_WORKERS ?= 2
# Debian packages some tests use (docker-compose config validation, a headless browser).
SYSTEM_TEST_TOOLS := docker-compose chromium

.PHONY: help install lab instructor test system-test-tools release stop clean-db

help:
	@sed -n '2,10p' Makefile | sed 's/^# \{0,1\}//'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lab: $(STAMP)
	$(BIN)/autograder lab --port $(PORT) $(LAB_ARGS)

instructor: $(STAMP)
	$(BIN)/autograder instructor --port $(PORT) $(LAB_ARGS)

# Installs missing system tools when we are root and have apt (CI containers);
# a failure here is reported but does not stop the tests (they skip with a reason).
system-test-tools:
	@missing=""; \
	for tool in $(SYSTEM_TEST_TOOLS); do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing system test tools:$$missing"; \
		if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; then :; \
		else echo "warning: could not install$$missing with apt-get; the tests that need them will be skipped"; fi; \
	else \
		echo "note:$$missing not installed (installing needs root and apt-get); the tests that need them will be skipped"; \
	fi

# pytest's own exit code is kept: make reports it, and if PYTEST_EXIT_FILE is set
# it is also written there (.ci/run exits with it).
test: $(STAMP) system-test-tools
	@$(BIN)/pytest --nbval -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS); code=$$?; \
	if [ -n "$(PYTEST_EXIT_FILE)" ]; then echo $$code > "$(PYTEST_EXIT_FILE)"; fi; \
	exit $$code

release: $(STAMP)
	$(BIN)/python -m autograder.release

stop:
	@if [ -x $(BIN)/autograder ]; then $(BIN)/autograder db stop; else echo "no venv yet: nothing to stop"; fi

clean-db: stop
	rm -rf "$${COURSE_DATA_DIR:-.course}"
