# Petrel front door. `make run` and `make test` are the two commands a new user needs.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
CONFIG     ?= var/petrel.toml
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 20

.PHONY: all deps build run test unit integration asan fuzz bench clean install install-sendmail

all: build

deps:
	@scripts/install-deps

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# Builds, makes the demo config and data under var/ when absent, and serves in the foreground.
run: build
	@scripts/demo-setup $(BUILD)/petrel var
	exec $(BUILD)/petrel serve -c $(CONFIG)

# Unit + integration tests on the Release build (g++), then unit tests under ASan+UBSan, then
# the clang build of every library, the binary and the fuzz targets (-Werror: clang must be
# warning-free too), and each fuzz target for FUZZ_SECONDS.
test: build
	ctest --test-dir $(BUILD) --output-on-failure -j 2
	$(MAKE) asan fuzz

unit: build
	ctest --test-dir $(BUILD) --output-on-failure -L unit -j $(JOBS)

integration: build
	ctest --test-dir $(BUILD) --output-on-failure -L integration

asan: deps
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DPETREL_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS) --target unit_tests
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --test-dir $(ASAN_BUILD) --output-on-failure -L unit -j $(JOBS)

fuzz: deps
	CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DPETREL_FUZZ=ON -DPETREL_TESTS=OFF
	cmake --build $(FUZZ_BUILD) -j $(JOBS)
	scripts/run-fuzzers $(FUZZ_BUILD) $(FUZZ_SECONDS)

bench: build
	bench/run-all $(BUILD)

install: build
	install -m 0755 $(BUILD)/petrel /usr/local/sbin/petrel

# `sendmail` for cron and scripts: a link to petrel, which acts as sendmail(8) when run by that
# name (src/app/cmd_sendmail.cc). Separate from `install` because it shadows the system's
# /usr/sbin/sendmail for everything that searches /usr/local/sbin first.
install-sendmail: install
	ln -sf petrel /usr/local/sbin/sendmail

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
