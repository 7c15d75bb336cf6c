# The course, one command each. `make lab` is all a learner needs.
#
#   make lab [PORT=8899]       learner JupyterLab on your workspace/ copy of notebooks/ (+ PostgreSQL)
#   make instructor [PORT=..]  JupyterLab on the course root with nbgrader's formgrader
#   make hub [PORT=..]         workshop JupyterHub (root): per-learner account, server, database
#   make test                  make lint, then pytest --nbval at the root (tests + every notebook)
#   make lint                  ruff check, ruff format --check and mypy (settings in pyproject.toml)
#   make stop                  stop the bundled PostgreSQL
#   make clean-db              stop it and delete its data (rebuilt on next use)
#   make release               build the learner release (autograder release)
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
# Debian packages some tests use (docker-compose config validation, a headless browser,
# a real PgBouncer for lesson 07).
SYSTEM_TEST_TOOLS := docker-compose chromium pgbouncer

.PHONY: help install lab instructor hub lint test system-test-tools release stop clean-db

help:
	@sed -n '2,12p' Makefile | sed 's/^# \{0,1\}//'

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

# Participants: .course/hub/participants.txt (see jupyter/hub/participants.example.txt);
# HUB_ARGS passes more options, e.g. HUB_ARGS="--ip 0.0.0.0 --cull-idle 1800".
HUB_ARGS ?=
hub: $(STAMP)
	$(BIN)/autograder hub --port $(PORT) $(HUB_ARGS)

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

# All three run even when one fails, so one pass shows every finding. `ruff format PATH`
# applies the formatting; `ruff check --fix PATH` the safe fixes.
lint: $(STAMP)
	@status=0; \
	$(BIN)/ruff check || status=1; \
	$(BIN)/ruff format --check || status=1; \
	$(BIN)/mypy || status=1; \
	if [ $$status -ne 0 ]; then echo "make lint: failed (findings above)"; fi; \
	exit $$status

# Lint runs first: a finding stops make before pytest, so make fails and .ci/run exits
# with make's code (PYTEST_EXIT_FILE stays empty). Otherwise pytest's own exit code is kept:
# make reports it, and if PYTEST_EXIT_FILE is set it is also written there (.ci/run exits with it).
test: lint $(STAMP) system-test-tools
	@$(BIN)/pytest --nbval -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS); code=$$?; \
	if [ -n "$(PYTEST_EXIT_FILE)" ]; then echo $$code > "$(PYTEST_EXIT_FILE)"; fi; \
	exit $$code

release: $(STAMP)
	$(BIN)/autograder release

stop:
	@if [ -x $(BIN)/autograder ]; then $(BIN)/autograder db stop; else echo "no venv yet: nothing to stop"; fi

clean-db: stop
	rm -rf "$${COURSE_DATA_DIR:-.course}"
