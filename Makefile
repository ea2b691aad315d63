# closewaitd — build, test, install.
#   make run            install missing build dependencies (apt), build, take a snapshot
#   make check          install missing test dependencies (apt), build, run every test
#   sudo make install   release build (static Swift stdlib) into $(DESTDIR)$(PREFIX)

PREFIX ?= /usr
DESTDIR ?=
SWIFT ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
SWIFT_FLAGS ?=
# Debian packages the build needs, and the ones the tests drive (ss, setpriv, systemd-nspawn).
BUILD_DEBS := libsystemd-dev pkg-config
TEST_DEBS := $(BUILD_DEBS) iproute2 util-linux

.PHONY: all deps test-deps build release run check clean

all: build

# Installs only what is missing; needs root (or sudo) the first time.
deps:
	@./packaging/apt-ensure $(BUILD_DEBS)

test-deps:
	@./packaging/apt-ensure $(TEST_DEBS)

build: deps
	$(SWIFT) build $(SWIFT_FLAGS)

release: deps
	$(SWIFT) build -c release --static-swift-stdlib $(SWIFT_FLAGS)

run: build
	$$($(SWIFT) build --show-bin-path)/closewaitd snapshot

check: test-deps
	$(SWIFT) build --build-tests $(SWIFT_FLAGS)
	$(SWIFT) test --skip-build $(SWIFT_FLAGS)

clean:
	rm -rf .build
