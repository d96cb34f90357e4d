# The two commands of the README: `make run` and `make test`. Everything else is a step of those.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
DATA ?= ./data

.PHONY: all deps build run test test-pgsql asan fuzz format clean install

all: build

deps:
	@sh scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# Serves the web chat the build laid out (Converse.js at /chat/) when it is there.
run: build
	$(BUILD)/hearthd --data-dir $(DATA) \
		$(if $(wildcard $(BUILD)/web/chat/index.html),--set http.chat_root=$(abspath $(BUILD))/web/chat)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# libhearth.so, its public headers, hearth.pc and the terminal client under PREFIX (lib/,
# include/hearth/, lib/pkgconfig/, bin/hearth): `make install PREFIX=$HOME/.local`, then
# `pkg-config --cflags --libs hearth`.
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# Unit and integration tests under AddressSanitizer + UndefinedBehaviorSanitizer.
asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DHEARTH_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:quarantine_size_mb=16 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS) -L 'unit|integration'

# libFuzzer targets, built with clang; each runs for FUZZ_SECONDS.
FUZZ_SECONDS ?= 60
fuzz: deps
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DHEARTH_FUZZ=ON
	cmake --build build-fuzz -j $(JOBS) --target fuzz_jid fuzz_xml fuzz_stream fuzz_form fuzz_sasl
	for f in fuzz_jid fuzz_xml fuzz_stream fuzz_form fuzz_sasl; do \
		mkdir -p build-fuzz/corpus-$$f && \
		build-fuzz/$$f -max_total_time=$(FUZZ_SECONDS) -max_len=4096 build-fuzz/corpus-$$f \
			tests/fuzz/seeds-$$f || exit 1; done

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz

# The integration tests (and the storage conformance suite) on PostgreSQL: a private cluster on a
# loopback port (scripts/pg-test-cluster.sh), a fresh database per server, stopped at the end.
# Needs a configured $(BUILD) (cmake -S . -B $(BUILD)) and PostgreSQL's server package.
PG_TESTS ?= integration|pgsql
test-pgsql:
	cmake --build $(BUILD) -j $(JOBS)
	sh scripts/pg-test-cluster.sh run env HEARTH_TEST_STORAGE=pgsql \
		sh -c 'cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L "$(PG_TESTS)"'
