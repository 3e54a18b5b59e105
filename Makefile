# fastfl: `make run` runs the FedAvg simulation, `make test` runs the whole test suite.
# Both create .venv and build the native extension first (needs Python >= 3.10 and a C++17 compiler).

VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q --disable-pip-version-check
STAMP := $(VENV)/.fastfl-installed
NATIVE_SRC := setup.py CMakeLists.txt pyproject.toml $(wildcard csrc/*.cpp csrc/fastfl/*.cpp csrc/fastfl/*.hpp)
PYTEST := $(PY) -m pytest -q -p no:cacheprovider

.PHONY: setup run test test-slow test-backends bench bench-smoke lint clean

setup: $(STAMP)

$(STAMP): $(NATIVE_SRC)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) setuptools wheel pybind11 cmake ninja
	$(PIP) --no-build-isolation -e '.[test,progress,tensorboard,flower]'
	# FedLab 1.2.1 itself, as a peer for compatibility tests and a baseline for benchmarks.
	$(PIP) pandas tqdm
	$(PIP) --no-deps fedlab==1.2.1 nvidia-ml-py
	$(PY) -c "import fastfl.ops as o; print('fastfl backend:', o.backend())"
	touch $@

run: $(STAMP)
	$(VENV)/bin/fastfl run configs/digits_fedavg.toml

# The whole suite on the native backend, then the kernel-level tests on numba and torch.
test: $(STAMP)
	FASTFL_REQUIRE_NATIVE=1 $(PYTEST) -m "not slow"
	$(MAKE) --no-print-directory test-backends

# Only the code that calls kernels: the data-set code does not depend on the backend, and the
# fallback tests set their own environment.
BACKEND_TESTS := tests/ops tests/utils --ignore=tests/utils/dataset --ignore=tests/ops/test_fallback.py
test-backends: $(STAMP)
	FASTFL_BACKEND=numba $(PYTEST) -m "not slow" $(BACKEND_TESTS)
	FASTFL_BACKEND=torch $(PYTEST) -m "not slow" $(BACKEND_TESTS)

# The large cases that CI replaces with smaller variants.
test-slow: $(STAMP)
	FASTFL_REQUIRE_NATIVE=1 $(PYTEST) -m slow

bench-smoke: $(STAMP)
	FASTFL_REQUIRE_NATIVE=1 $(PYTEST) bench --benchmark-disable -m "not slow"

bench: $(STAMP)
	FASTFL_REQUIRE_NATIVE=1 $(PYTEST) bench --benchmark-only --benchmark-json=bench/results.json

lint: $(STAMP)
	$(PY) -m ruff check fastfl tests bench examples
	$(PY) -m ruff format --check fastfl tests bench examples

clean:
	rm -rf build $(VENV) fastfl/_C*.so

# The peers of issue 12's target 7 (bench/bench_peers.py), each in its own venv under .peers/
# (ignored by git; .venv is not touched): FedLab 1.3 and pfl-research, every package pinned in
# bench/peers/*.txt and installed --no-deps, so nothing else is resolved or upgraded.
PEERS_DIR ?= .peers
PEER_PIP = -m pip install -q --disable-pip-version-check --no-deps

.PHONY: peers
peers: $(PEERS_DIR)/fedlab13/.installed $(PEERS_DIR)/pfl/.installed

$(PEERS_DIR)/%/.installed: bench/peers/%.txt
	rm -rf $(PEERS_DIR)/$*
	python3 -m venv $(PEERS_DIR)/$*
	$(PEERS_DIR)/$*/bin/python $(PEER_PIP) -r $<
	$(PEERS_DIR)/$*/bin/python -W ignore bench/peers/$*_round.py overhead-small --warmup 1 --rounds 1 >/dev/null
	touch $@
