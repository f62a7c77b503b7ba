# Two commands do everything on a fresh Debian machine:
#   make check    install missing packages (as root), build, run every test
#   make demo     build and run the demo
# Other targets: build, bench, check-asan, clean.

BUILD ?= build
ASAN_BUILD ?= build-asan
MESON ?= meson

.PHONY: all deps build check check-asan demo bench clean

all: build

deps:
	@scripts/deps.sh check

$(BUILD)/build.ninja:
	@scripts/deps.sh check
	$(MESON) setup $(BUILD) -Dwerror=true

build: $(BUILD)/build.ninja
	$(MESON) compile -C $(BUILD)

check: build
	@scripts/run-tests.sh $(BUILD)

$(ASAN_BUILD)/build.ninja:
	@scripts/deps.sh check
	$(MESON) setup $(ASAN_BUILD) -Dwerror=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dbuildtype=debug

check-asan: $(ASAN_BUILD)/build.ninja
	$(MESON) compile -C $(ASAN_BUILD)
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	 scripts/run-tests.sh $(ASAN_BUILD)

demo: build
	@scripts/demo.sh $(BUILD)

bench: build
	@scripts/deps.sh bench
	@scripts/run-bench.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
