# Two commands do everything on a fresh machine:
#   make book   -> virtual environment, data, notebooks (papermill), Jupyter Book site
#   make test   -> virtual environment, data, the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?= -m "not slow and not gpu and not notebook and not distributed"
BOOK_ARGS ?=

.PHONY: venv data allocator test test-all test-book test-distributed book book-smoke verify reproduce victims clean

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -r requirements.txt
	$(BIN)/pip install --no-deps -e .
	touch $@

# apt-get install of $(1), with one apt-get update when the package lists are stale.
APT_INSTALL = apt-get install -y $(1) || { apt-get update && apt-get install -y $(1); }

# Fashion-MNIST: Debian's package when we are root on Debian/Ubuntu, else torchvision's download.
data: venv
	@$(BIN)/python -c "from adv2lib.data import locate_fashion_mnist as l; raise SystemExit(0 if l('test') and l('train') else 1)" \
	|| { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then $(call APT_INSTALL,dataset-fashion-mnist); \
	     else $(BIN)/python -m adv2lib data fetch; fi; }

# tcmalloc (Debian's libtcmalloc-minimal4) when we are root on Debian/Ubuntu: python -m adv2lib restarts
# itself with it (adv2lib/allocator.py; bit-identical results, fewer page faults). Without it, glibc's
# tunables do part of the same; ADV2_ALLOCATOR=system keeps the C library's defaults.
allocator: venv
	@$(BIN)/python -c "from adv2lib.allocator import find_tcmalloc as f; raise SystemExit(0 if f() else 1)" \
	|| { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then { $(call APT_INSTALL,libtcmalloc-minimal4); } || echo "tcmalloc not installed: glibc tunables instead"; fi; }

test: venv data
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The Ray engine's tests on a local 2-CPU cluster (installs the optional Ray dependency).
test-distributed: venv data
	$(BIN)/pip install -r requirements-distributed.txt
	$(BIN)/python -m pytest -m distributed

test-all: venv data
	$(BIN)/python -m pytest -m "not gpu"

# The full book's batch tasks run on a local Ray cluster of one-thread workers: on 2 CPU cores
# that beat one two-thread process (ResNet main experiment, 50 images: 189.7 s against 203.8 s;
# with tcmalloc, 2026-12-02: 105.5 s against 110.7 s;
# issue 13). BOOK_ENGINE=serial runs them in each notebook's kernel (the numbers are the same).
BOOK_ENGINE ?= ray

book: venv data allocator
	$(if $(filter ray,$(BOOK_ENGINE)),$(BIN)/pip install -q -r requirements-distributed.txt)
	$(BIN)/python -m adv2lib book --engine $(BOOK_ENGINE) $(BOOK_ARGS)

# Recompute a sample of the committed record (every experiment and victim; about VERIFY_MINUTES on 2 cores)
# into a scratch store and compare: exit status 1 when an aggregate leaves the record's 95% interval.
VERIFY_MINUTES ?= 10
VERIFY_ARGS ?=
verify: venv data allocator
	$(BIN)/python -m adv2lib verify --minutes $(VERIFY_MINUTES) $(VERIFY_ARGS)

# Everything from scratch into a scratch store, then the same comparison over every image.
reproduce: venv data allocator
	$(BIN)/python -m adv2lib verify --all $(VERIFY_ARGS)

book-smoke: venv data allocator
	$(BIN)/python -m adv2lib book --smoke $(BOOK_ARGS)

# The smoke book, then the notebook-marked tests: papermill round trip and every chapter
# opened in headless Chromium (CI sets ADV2_REQUIRE_BROWSER=1 so a missing browser fails).
test-book: venv data allocator
	$(BIN)/python -m adv2lib book --smoke $(BOOK_ARGS)
	ADV2_BOOK_ARGS="$(BOOK_ARGS)" $(BIN)/python -m pytest -m notebook

victims: venv data
	$(BIN)/python -m adv2lib train-victim all --restart

clean:
	rm -rf _build book/_build book/executed cache
