# Thin wrapper over CMake: `make run` and `make test` are the two front-door commands.
BUILD_DIR ?= build
ASAN_DIR ?= build-asan
TSAN_DIR ?= build-tsan
FUZZ_DIR ?= build-fuzz
# Seconds each libFuzzer target runs in `make fuzz`.
FUZZ_SECONDS ?= 60
JOBS ?= $(shell nproc)
LISTEN ?= 127.0.0.1:8081
CACHE_DIR ?= ./var/cache
# Debian's interpreter, which has python3-pytest; a python3 earlier on PATH may not.
PYTHON ?= /usr/bin/python3

.PHONY: deps build run test unit integration dashboards asan tsan fuzz bench container-test format \
  format-check tidy tidy-all clean

deps:
	@bash scripts/install-deps.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	mkdir -p $(CACHE_DIR)
	$(BUILD_DIR)/gomodproxy serve --listen $(LISTEN) --cache-dir $(CACHE_DIR)

unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

integration: build
	GOMODPROXY_BIN=$(abspath $(BUILD_DIR))/gomodproxy $(PYTHON) -m pytest -q tests/integration

$(ASAN_DIR)/build.ninja:
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DGOMODPROXY_SANITIZE=ON

asan: deps $(ASAN_DIR)/build.ninja
	cmake --build $(ASAN_DIR) -j $(JOBS)
	cd $(ASAN_DIR) && ctest --output-on-failure -j $(JOBS)
	GOMODPROXY_BIN=$(abspath $(ASAN_DIR))/gomodproxy $(PYTHON) -m pytest -q tests/integration

# The concurrency-heavy components (singleflight and fills, upstream pool, DNS resolver, cache
# store, the HTTP server's connections, deadlines and drain, tier health and prober) under TSan.
$(TSAN_DIR)/build.ninja:
	cmake -S . -B $(TSAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DGOMODPROXY_TSAN=ON

tsan: deps $(TSAN_DIR)/build.ninja
	cmake --build $(TSAN_DIR) -j $(JOBS) --target resolver_tests upstream_tests cache_tests server_tests monitor_tests \
	  direct_tests
	cd $(TSAN_DIR) && TSAN_OPTIONS="suppressions=$(abspath tests/tsan.supp) halt_on_error=1" \
	  ctest --output-on-failure -j $(JOBS) -R '^(flight_table|resolver_fill|cache_policy|negative_cache|stale_if_error|attempt_verdict|http_client|tls_fixture|cache_store|rocksdb|open_file_cache|http_server|http_server_tls|tls_credentials|access_control|dns_resolver|dns_cache|circuit_breaker|tier_health|health_prober|connect_guard|fill_with_scripted_tier|DirectTier|GoProcess|verified_tree_test)'

test: unit integration dashboards

# libFuzzer targets (tests/fuzz, docs/fuzzing.md) built with clang under ASan+UBSan, each run for
# FUZZ_SECONDS on a scratch copy of its seed corpus.
$(FUZZ_DIR)/build.ninja:
	cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" -DCMAKE_CXX_COMPILER=clang++ -DGOMODPROXY_FUZZ=ON

fuzz: deps $(FUZZ_DIR)/build.ninja
	cmake --build $(FUZZ_DIR) -j $(JOBS) --target fuzz_targets
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/fuzz/run.sh $(FUZZ_DIR)

# promtool checks of the shipped scrape config and alert rules, and the rules' unit tests.
dashboards: deps
	bash dashboards/check.sh

# The container image and compose stack (docker/, docs/deploy.md) under podman, as root: installs
# the container tools, makes the Debian base images from the machine's archive, builds the image
# and drives the stack with the real go command (tests/container).
container-test: deps
	bash scripts/install-container-tools.sh
	bash scripts/make-base-images.sh
	$(PYTHON) -m pytest -q tests/container

# Issue 16's targets, each with the shipped defaults: warm serving against nginx in two wrk
# shapes, memory around a 40 MiB zip, warm latency during 100 MiB verified fills, and a cold
# verified go mod download against the upstream's own time (docs/benchmarks.md).
bench: build
	bash tests/bench/run.sh $(abspath $(BUILD_DIR))/gomodproxy
	$(PYTHON) tests/bench/memory.py $(abspath $(BUILD_DIR))/gomodproxy
	$(PYTHON) tests/bench/warm_during_fill.py $(abspath $(BUILD_DIR))/gomodproxy --control
	$(PYTHON) tests/bench/cold_verified.py $(abspath $(BUILD_DIR))/gomodproxy

# Every C++ file of the repository, formatted by the repository's .clang-format.
CXX_SOURCES = find proxy monitor config tests \( -name '*.cpp' -o -name '*.hpp' \) -print0

format:
	$(CXX_SOURCES) | xargs -0 clang-format -i

# CI's gate: fails, naming each file and line, where a file differs from clang-format's output.
format-check: deps
	$(CXX_SOURCES) | xargs -0 clang-format --dry-run --Werror

# CI's clang-tidy gate (.clang-tidy, docs/code-health.md): the production sources changed since the
# commit in .ci/tidy-base, and the .cpp files including a changed header, two at a time.
tidy: deps $(BUILD_DIR)/build.ninja
	BUILD_DIR=$(BUILD_DIR) bash scripts/tidy.sh

# The whole production tree (proxy/ monitor/ config/); when it passes on a clean checkout it moves
# .ci/tidy-base to HEAD, which is then committed.
tidy-all: deps $(BUILD_DIR)/build.ninja
	BUILD_DIR=$(BUILD_DIR) bash scripts/tidy.sh --all

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(TSAN_DIR) $(FUZZ_DIR)
