# The two commands of the README: `make run` and `make test`. Everything else is a step of those.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)
DATA ?= ./data

.PHONY: all deps build run test test-package test-pgsql asan fuzz format clean install uninstall deb

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

# Every test, then the integration suite again on PostgreSQL (test-pgsql; skipped, saying so,
# when PostgreSQL's server is not installed: make deps installs it). The package test (label
# package: builds two Debian packages and upgrades one to the other, several minutes) runs in
# `make test-package`, not here.
test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE package
	$(MAKE) --no-print-directory test-pgsql PG_TESTS=integration

test-package: build
	cd $(BUILD) && ctest --output-on-failure -L package

# Everything under PREFIX (DESTDIR in front when given), as the FHS places it: sbin/hearthd and
# sbin/hearthctl, bin/hearth and bin/hearth-bench, lib/libhearth.so.0 with lib/pkgconfig/hearth.pc
# and include/hearth/, the man pages, share/doc/hearth/examples/ (hearthd.conf, the systemd
# drop-in) and lib/systemd/system/hearthd.service. `make install PREFIX=$HOME/.local`, then
# `pkg-config --cflags --libs hearth`. Builds without `make deps`: no network, no npm.
# `make uninstall` removes what the last install wrote (install_manifest.txt).
PREFIX ?= /usr/local
install:
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --build $(BUILD) -j $(JOBS)
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD)

uninstall:
	DESTDIR="$(DESTDIR)" cmake --build $(BUILD) --target uninstall

# The Debian packages (hearthd, hearth-client, libhearth0, libhearth-dev) of the working tree,
# built offline with Debian's tooling into $(DEB_OUT), then lintian. Build dependencies:
# scripts/install-deps.sh --package.
DEB_OUT ?= $(BUILD)/deb
deb:
	sh scripts/make-deb.sh . $(DEB_OUT)

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
	cmake --build build-fuzz -j $(JOBS) --target fuzz_jid fuzz_xml fuzz_stream fuzz_form fuzz_sasl fuzz_tls13rec
	for f in fuzz_jid fuzz_xml fuzz_stream fuzz_form fuzz_sasl fuzz_tls13rec; do \
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
		sh -c 'cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L "$(PG_TESTS)"'; \
		rc=$$?; if [ $$rc -eq 77 ]; then echo "test-pgsql: skipped (no PostgreSQL here)"; \
		else exit $$rc; fi
