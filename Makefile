# Tributary: the one entry point for developers, CI and ops.
#   make run     install what is missing, start Redis + PostgreSQL under .run/, build,
#                migrate and run all five daemons in the foreground (Ctrl-C stops all)
#   make test    the whole test suite against private Redis + PostgreSQL servers
#   make up / make down / make status   the same stack in the background
SHELL := /bin/bash
.DEFAULT_GOAL := help

RUN_DIR     := $(CURDIR)/.run
STACK       := deploy/dev/stack.sh
DAEMONS     := deploy/dev/daemons.sh
# The servers' ports lie below Linux's ephemeral range (32768–60999): a daemon that keeps
# reconnecting to a stopped server on a port inside it can be given that very port as its
# own source port and connect to itself, and the server then cannot start again on it.
PG_PORT     ?= 25432
REDIS_PORT  ?= 26379
TEST_DIR    := $(RUN_DIR)/test
# Defined before the rules that depend on them (make expands prerequisites as it reads).
VENV        := $(RUN_DIR)/venv
GEOIP       := $(RUN_DIR)/GeoLite2-City.mmdb
TEST_PG_PORT          ?= 25442
TEST_DISRUPT_PG_PORT  ?= 25443
TEST_REDIS_PORT       ?= 26389
TEST_DISRUPT_REDIS_PORT ?= 26390
SWIFT_BUILD_FLAGS ?=
CONNECTIONS ?= 64
BENCH_SECONDS ?= 10
BENCH_BATCHES ?= 3000
BENCH_SITE_EVENTS ?= 300000
BENCH_STEP_SECONDS ?= 10
BENCH_QUERY_RUNS ?= 200
BIN_DIR = $(shell swift build $(SWIFT_BUILD_FLAGS) --show-bin-path)

.PHONY: help deps build servers up down run status test test-servers test-servers-stop bench clean venv geoip e2e chaos soak install uninstall

help:
	@sed -n '2,6p' Makefile | sed 's/^# \{0,1\}//'

deps:
	@$(STACK) deps

build: deps
	swift build $(SWIFT_BUILD_FLAGS)

servers: deps $(GEOIP)
	@$(STACK) pg-start $(RUN_DIR)/pg $(PG_PORT)
	@$(STACK) pg-setup $(RUN_DIR)/pg $(PG_PORT)
	@$(STACK) redis-start $(RUN_DIR)/redis $(REDIS_PORT)
	@mkdir -p $(RUN_DIR)
	@test -s $(RUN_DIR)/admin-token || (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > $(RUN_DIR)/admin-token)
	@printf '%s\n' '{' \
	  '  "redis": { "url": "redis://127.0.0.1:$(REDIS_PORT)" },' \
	  '  "postgres": { "host": "127.0.0.1", "port": $(PG_PORT), "database": "tributary" },' \
	  '  "collector": { "spool": { "directory": "$(RUN_DIR)/spool" } },' \
	  '  "hydration": { "geoip": { "database": "$(GEOIP)" } },' \
	  '  "aggregator": { "stats": { "port": 8090, "adminTokenFile": "$(RUN_DIR)/admin-token" } },' \
	  '  "healthChecker": { "adminTokenFile": "$(RUN_DIR)/admin-token" },' \
	  '  "log": { "level": "info", "format": "json" }' \
	  '}' > $(RUN_DIR)/config.json
	@printf '%s\n' \
	  'export PGHOST=127.0.0.1 PGPORT=$(PG_PORT) PGUSER=tributary_admin PGDATABASE=tributary' \
	  'export TRIBUTARY_CONFIG=$(RUN_DIR)/config.json' \
	  'export TRIBUTARY_REDIS_URL=redis://127.0.0.1:$(REDIS_PORT)' \
	  'export TRIBUTARY_COLLECTOR_URL=http://127.0.0.1:8080' \
	  'export TRIBUTARY_COLLECTOR_ADMIN_URL=http://127.0.0.1:9101' \
	  'export TRIBUTARY_HYDRATION_ADMIN_URL=http://127.0.0.1:9102' \
	  'export TRIBUTARY_AGGREGATOR_ADMIN_URL=http://127.0.0.1:9103' \
	  'export TRIBUTARY_FORWARDER_ADMIN_URL=http://127.0.0.1:9104' \
	  'export TRIBUTARY_HEALTH_ADMIN_URL=http://127.0.0.1:9105' \
	  'export TRIBUTARY_STATS_URL=http://127.0.0.1:8090' \
	  'export TRIBUTARY_HEALTH_URL=http://127.0.0.1:8095' \
	  "export TRIBUTARY_ADMIN_TOKEN=$$(cat $(RUN_DIR)/admin-token)" \
	  > $(RUN_DIR)/env

up: build servers
	@for d in collector hydration aggregator forwarder health-checker; do \
	  TRIBUTARY_CONFIG=$(RUN_DIR)/config.json $(BIN_DIR)/$$d migrate || exit 1; done
	@$(DAEMONS) start $(BIN_DIR)
	@$(DAEMONS) status
	@echo "stack is up; . .run/env && psql   — make down stops it"

run: build servers
	@for d in collector hydration aggregator forwarder health-checker; do \
	  TRIBUTARY_CONFIG=$(RUN_DIR)/config.json $(BIN_DIR)/$$d migrate || exit 1; done
	@trap '$(STACK) redis-stop $(RUN_DIR)/redis $(REDIS_PORT); $(STACK) pg-stop $(RUN_DIR)/pg' EXIT; \
	  $(DAEMONS) foreground $(BIN_DIR)

down:
	@$(DAEMONS) stop
	@if command -v redis-cli >/dev/null; then $(STACK) redis-stop $(RUN_DIR)/redis $(REDIS_PORT); fi
	@if ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then $(STACK) pg-stop $(RUN_DIR)/pg; fi
	@echo "stack is down"

status:
	@$(DAEMONS) status
	@if redis-cli -p $(REDIS_PORT) ping >/dev/null 2>&1; then echo "redis           running              port $(REDIS_PORT)"; \
	  else echo "redis           stopped"; fi
	@if pg_isready -q -h 127.0.0.1 -p $(PG_PORT) 2>/dev/null; then echo "postgresql      running              port $(PG_PORT)"; \
	  else echo "postgresql      stopped"; fi

test-servers: deps $(GEOIP)
	@$(STACK) pg-start $(TEST_DIR)/pg $(TEST_PG_PORT)
	@$(STACK) pg-reset $(TEST_DIR)/pg $(TEST_PG_PORT)
	@$(STACK) pg-start $(TEST_DIR)/pg-disrupt $(TEST_DISRUPT_PG_PORT)
	@$(STACK) pg-reset $(TEST_DIR)/pg-disrupt $(TEST_DISRUPT_PG_PORT)
	@$(STACK) redis-start $(TEST_DIR)/redis $(TEST_REDIS_PORT)
	@$(STACK) redis-start $(TEST_DIR)/redis-disrupt $(TEST_DISRUPT_REDIS_PORT)
	@redis-cli -p $(TEST_REDIS_PORT) flushall >/dev/null
	@redis-cli -p $(TEST_DISRUPT_REDIS_PORT) flushall >/dev/null

test-servers-stop:
	@-$(STACK) redis-stop $(TEST_DIR)/redis $(TEST_REDIS_PORT)
	@-$(STACK) redis-stop $(TEST_DIR)/redis-disrupt $(TEST_DISRUPT_REDIS_PORT)
	@-$(STACK) pg-stop $(TEST_DIR)/pg
	@-$(STACK) pg-stop $(TEST_DIR)/pg-disrupt

# Real client SDKs from PyPI, for the tests that prove they work unchanged.
$(VENV)/.installed: Tests/Fixtures/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r Tests/Fixtures/requirements.txt
	@touch $@

# The GeoLite2 City database from PyPI's maxminddb-geolite2, so geo works out of the box.
$(GEOIP): $(VENV)/.installed
	cp "$$(ls $(VENV)/lib/python3*/site-packages/_maxminddb_geolite2/GeoLite2-City.mmdb | head -n 1)" $@

venv: $(VENV)/.installed
geoip: $(GEOIP)

test: deps $(VENV)/.installed $(GEOIP)
	@$(STACK) test-deps
	swift build --build-tests $(SWIFT_BUILD_FLAGS)
	@$(MAKE) --no-print-directory test-servers
	@set -o pipefail; status=0; \
	  TRIBUTARY_TEST_PG_PORT=$(TEST_PG_PORT) TRIBUTARY_TEST_DISRUPT_PG_PORT=$(TEST_DISRUPT_PG_PORT) \
	  TRIBUTARY_TEST_REDIS_PORT=$(TEST_REDIS_PORT) TRIBUTARY_TEST_DISRUPT_REDIS_PORT=$(TEST_DISRUPT_REDIS_PORT) \
	  TRIBUTARY_TEST_DIR=$(TEST_DIR) TRIBUTARY_TEST_STACK=$(CURDIR)/$(STACK) TRIBUTARY_BIN_DIR=$(BIN_DIR) \
	  TRIBUTARY_TEST_PYTHON=$(VENV)/bin/python TRIBUTARY_TEST_FIXTURES=$(CURDIR)/Tests/Fixtures \
	  TRIBUTARY_TEST_GEOIP_DATABASE=$(GEOIP) \
	  swift test --skip-build $(SWIFT_BUILD_FLAGS) || status=$$?; \
	  $(MAKE) --no-print-directory test-servers-stop; exit $$status

# The end-to-end proof on the running stack: make e2e EVENTS=1000000 [SITES=20] [RATE=0]
EVENTS ?= 100000
SITES ?= 20
RATE ?= 0
e2e: up $(VENV)/.installed
	@REDIS_PORT=$(REDIS_PORT) deploy/e2e/run.sh $(BIN_DIR) $(EVENTS) $(SITES) $(RATE)

# The same under chaos: make chaos ROUNDS=100 (random SIGKILLs and server restarts under load).
ROUNDS ?= 100
chaos: up $(VENV)/.installed
	@REDIS_PORT=$(REDIS_PORT) deploy/e2e/run.sh $(BIN_DIR) 0 $(SITES) $(RATE) $(ROUNDS)

# The soak: make soak [SOAK_SECONDS=3600] [RATE=500] [SITES=20]: traffic for an hour at a
# steady rate, each daemon's memory sampled; fails if anything was lost or memory grew.
SOAK_SECONDS ?= 3600
soak: up $(VENV)/.installed
	@REDIS_PORT=$(REDIS_PORT) deploy/e2e/run.sh $(BIN_DIR) 0 $(SITES) $(RATE) 0 $(SOAK_SECONDS)

# Benchmarks (not part of make test): a release build against private servers; one table
# of every figure beside its same-run ceiling, also .run/bench.json (deploy/bench/all.sh).
# BENCH_SITE_EVENTS=10000000 times the Stats API on a 10-million-event site (about 35
# minutes more); the default 300,000 keeps the phases near 7 minutes after the build.
bench: deps
	@deploy/bench/all.sh $(CONNECTIONS) $(BENCH_SECONDS) $(BENCH_BATCHES) $(BENCH_SITE_EVENTS) $(BENCH_QUERY_RUNS) $(BENCH_STEP_SECONDS)

# make install [PREFIX=/usr/local] [DESTDIR=] [SYSCONFDIR=/etc] [INSTALL_BIN_DIR=<release build>]:
# release binaries as tributary-<daemon>, systemd units, the example config, SQL and docs
# (deploy/install.sh; docs/operations.md). make uninstall removes them, keeping config and secrets.
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
INSTALL_BIN_DIR ?=
install:
	@if [ -z "$(INSTALL_BIN_DIR)" ]; then $(MAKE) --no-print-directory deps && swift build -c release; fi
	@DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" SYSCONFDIR="$(SYSCONFDIR)" deploy/install.sh install \
	  "$(or $(INSTALL_BIN_DIR),$(shell swift build -c release --show-bin-path))"

uninstall:
	@DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" SYSCONFDIR="$(SYSCONFDIR)" deploy/install.sh uninstall

clean:
	@$(MAKE) --no-print-directory down
	rm -rf .build $(RUN_DIR)
