# closewaitd — build, test, install.
#   make run            install missing build dependencies (apt), build, take a snapshot
#   make unit           the pure and fixture tests only (no root, seconds)
#   make format         reformat Sources, Tests and Package.swift (.swift-format); make lint checks
#   make check          install missing test dependencies (apt), build, run every test,
#                       then the service test in a booted systemd container
#   sudo make install   release build (static Swift stdlib), install, enable and start the service
#   make deb            dist/closewaitd_VERSION_ARCH.deb
#   make image          the container image closewaitd:VERSION (podman, offline: FROM scratch)
#   make bench          the performance benchmark against ss -tnp
#   make fuzz           libFuzzer on every parser of untrusted bytes, FUZZ_SECONDS each (600)
#   make soak           the release daemon for SOAK_SECONDS (1800) against a pool, a leak and churn
#   make sanitize       every test under ThreadSanitizer, then AddressSanitizer (binaries included)
#   make clients        every real HTTP client of the corpus (Tests/clients), leaking and healthy
#   make redteam        issue 17's local-user attacks at full size against the release daemon
#                       (figures in dist/redteam.md; REDTEAM_ONLY=2,3 for some; ~10 minutes)

VERSION := 0.1.0
PREFIX ?= /usr
SYSCONFDIR ?= /etc
DESTDIR ?=
BINDIR = $(PREFIX)/bin
UNITDIR = $(PREFIX)/lib/systemd/system
CATALOGDIR = $(PREFIX)/lib/systemd/catalog
DOCDIR = $(PREFIX)/share/doc/closewaitd
MANDIR = $(PREFIX)/share/man
RELEASE_BIN = .build/release/closewaitd
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB_ROOT = dist/deb/closewaitd_$(VERSION)_$(DEB_ARCH)
DEB = dist/closewaitd_$(VERSION)_$(DEB_ARCH).deb
SWIFT ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
SWIFT_FLAGS ?=
# Debian packages the build needs, and the ones the tests drive (ss, setpriv, systemd-nspawn).
BUILD_DEBS := libsystemd-dev libbpf-dev pkg-config
TEST_DEBS := $(BUILD_DEBS) iproute2 util-linux systemd systemd-container dbus polkitd libnss-systemd python3 python3-venv python3-yaml prometheus podman runc docker.io containerd curl \
	python3-requests python3-urllib3 golang-go libhttpclient-java openjdk-17-jdk-headless nodejs

BENCH_SIZES ?= small,medium,large
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 10
SOAK_SECONDS ?= 1800
SOAK_SMOKE_SECONDS ?= 120

.PHONY: image image-test k8s-check bpf bpf-check unit format lint clients redteam prometheus-test container-test sanitize fuzz fuzz-smoke soak soak-smoke bench bench-smoke all deps test-deps build release run check service-test install install-files uninstall deb lint-deb clean

all: build

# Installs only what is missing; needs root (or sudo) the first time.
deps:
	@./packaging/apt-ensure $(BUILD_DEBS)

test-deps:
	@./packaging/apt-ensure $(TEST_DEBS)

build: deps
	$(SWIFT) build $(SWIFT_FLAGS)

run: build
	$$($(SWIFT) build --show-bin-path)/closewaitd snapshot

# The pure and fixture tests: no root, no system tools beyond the build's, seconds.
unit: deps
	$(SWIFT) build --build-tests $(SWIFT_FLAGS)
	$(SWIFT) test --skip-build $(SWIFT_FLAGS) --filter 'CloseWaitCoreTests|CloseWaitLinuxTests|CloseWaitDaemonTests|CloseWaitSystemdTests'

# The formatter configuration the code follows (.swift-format: 4 spaces, 120 columns; long
# string literals are left whole).
SWIFT_SOURCES = Sources Tests Package.swift
format:
	$(SWIFT) format format --in-place --recursive --parallel $(SWIFT_SOURCES)

lint: bpf-check
	$(SWIFT) format lint --strict --recursive --parallel $(SWIFT_SOURCES)

# The eBPF programs (Sources/CBPFScanner/bpf): compiled with the Swift toolchain's clang (it
# has the BPF target, and one compiler makes the output reproducible), linked by bpftool
# (which drops the DWARF, keeping BTF) and embedded in a libbpf skeleton. The skeleton is
# committed, so a fresh clone builds without clang; `make bpf-check` (part of lint) fails
# when it is stale.
BPF_DIR = Sources/CBPFScanner
BPF_CLANG ?= $(dir $(realpath $(SWIFT)))clang
BPF_SKELS = closewait.skel.h closewait_compat.skel.h
# $(1): output directory, $(2): object name, $(3): extra compiler flags.
define bpf_object
	$(BPF_CLANG) -target bpf -D__TARGET_ARCH_x86 -O2 -g -Wall -Werror -ffile-prefix-map=$(CURDIR)=. $(3) -c $(BPF_DIR)/bpf/closewait.bpf.c -o $(1)/$(2).tmp.o
	bpftool gen object $(1)/$(2).o $(1)/$(2).tmp.o
	bpftool gen skeleton $(1)/$(2).o name $(2)_bpf > $(1)/$(2).skel.h
endef
# The 6.2+ object and the compat one (bpf_skc_to_tcp_sock instead of bpf_rdonly_cast).
define bpf_build
	@mkdir -p $(1)
	$(call bpf_object,$(1),closewait,)
	$(call bpf_object,$(1),closewait_compat,-DCW_COMPAT)
endef
bpf:
	@./packaging/apt-ensure bpftool libbpf-dev
	$(call bpf_build,.build/bpf)
	cd .build/bpf && cp $(BPF_SKELS) $(CURDIR)/$(BPF_DIR)/

bpf-check:
	@./packaging/apt-ensure bpftool libbpf-dev
	$(call bpf_build,.build/bpf-check)
	@for f in $(BPF_SKELS); do cmp -s .build/bpf-check/$$f $(BPF_DIR)/$$f || { echo "$(BPF_DIR)/$$f is stale: run make bpf and commit it" >&2; exit 1; }; done

check: test-deps
	$(MAKE) lint
	$(SWIFT) build --build-tests $(SWIFT_FLAGS)
	$(MAKE) service-test
	$(MAKE) bench-smoke
	$(SWIFT) test --skip-build $(SWIFT_FLAGS)
	$(MAKE) prometheus-test
	$(MAKE) container-test
	$(MAKE) image-test
	$(MAKE) k8s-check
	$(MAKE) fuzz-smoke
	$(MAKE) soak-smoke

# Every library of the client corpus (Tests/clients: Python requests and urllib3, Apache
# HttpClient 4.x and the JDK client, Go net/http, Node http), each leaking beside its healthy
# twin under the shipped config; make check runs the Python and Go pairs.
clients: test-deps
	$(SWIFT) build --build-tests $(SWIFT_FLAGS)
	CLOSEWAITD_CLIENTS=all $(SWIFT) test --skip-build $(SWIFT_FLAGS) --filter ClientCorpusLiveTests

# Boots this machine's systemd in a throwaway container, installs the .deb, and checks the
# service against a real systemd and journald (Tests/service/service-test.sh).
service-test: deb
	Tests/service/service-test.sh $(DEB)

# The benchmark (README, Performance): release builds, every size, results also in dist/bench.md.
bench: test-deps
	$(SWIFT) build -c release --static-swift-stdlib $(SWIFT_FLAGS)
	mkdir -p dist
	.build/release/closewaitd-bench --sizes $(BENCH_SIZES) --markdown dist/bench.md

# Issue 17's attacks by an unprivileged local user at full size, each against the release
# daemon run as the unit runs it, with a real leak elsewhere (Tests/redteam/redteam.py).
REDTEAM_ONLY ?=
REDTEAM_SECONDS ?= 90
redteam: test-deps
	$(SWIFT) build -c release --static-swift-stdlib $(SWIFT_FLAGS)
	mkdir -p dist
	python3 Tests/redteam/redteam.py .build/release --seconds $(REDTEAM_SECONDS) --markdown dist/redteam.md $(if $(REDTEAM_ONLY),--only $(REDTEAM_ONLY))

# A quick run of the benchmark so it cannot rot: small workload, debug build, no time asserted.
bench-smoke:
	$(SWIFT) build --product closewaitd-bench $(SWIFT_FLAGS)
	$$($(SWIFT) build --show-bin-path)/closewaitd-bench --smoke

# The shipped Prometheus rules: valid, and raising what they must on series as the daemon
# writes them (promtool test rules); the Grafana dashboard is valid JSON; then a real
# Prometheus scraping a real daemon fires the shipped alert on a real leak (end to end).
prometheus-test: test-deps
	promtool check rules packaging/prometheus/closewaitd.rules.yml
	cd Tests/prometheus && promtool test rules closewaitd.rules.test.yml
	python3 -m json.tool packaging/prometheus/closewaitd.dashboard.json >/dev/null
	$(SWIFT) build --product closewaitd $(SWIFT_FLAGS) && $(SWIFT) build --product closewaitd-workload $(SWIFT_FLAGS)
	Tests/prometheus/end-to-end.sh $$($(SWIFT) build --show-bin-path)

# A real container runtime: a leaker in a podman container (runc), closewaitd on the host.
container-test: test-deps
	$(SWIFT) build --product closewaitd $(SWIFT_FLAGS) && $(SWIFT) build --product closewaitd-workload $(SWIFT_FLAGS)
	Tests/containers/podman.sh $$($(SWIFT) build --show-bin-path)
	Tests/containers/docker.sh $$($(SWIFT) build --show-bin-path)
	Tests/containers/containerd.sh $$($(SWIFT) build --show-bin-path)

# The container image from the release binary: the binary (stripped) and the libraries ldd
# lists, the container config, FROM scratch; built with podman, nothing pulled.
IMAGE ?= closewaitd:$(VERSION)
image: release
	rm -rf dist/image-root
	packaging/container/mkroot.sh dist/image-root $(RELEASE_BIN):/usr/bin/closewaitd
	strip --strip-unneeded dist/image-root/usr/bin/closewaitd
	install -D -m 0644 packaging/container/closewaitd.toml dist/image-root/etc/closewaitd/closewaitd.toml
	install -d dist/image-root/run/closewaitd
	printf '[containers]\ndefault_ulimits = []\n' >dist/containers.conf
	CONTAINERS_CONF=$(CURDIR)/dist/containers.conf podman --runtime $$(command -v runc || echo /usr/sbin/runc) \
	    build --quiet -f packaging/container/Containerfile -t $(IMAGE) dist/image-root
	@podman image inspect --format 'image $(IMAGE): {{.Size}} bytes' $(IMAGE)

# The image under podman as a node agent (host pid and network, four capabilities, read-only
# mounts) against a leaker on the host and one in a named container.
image-test: test-deps image
	$(SWIFT) build --product closewaitd-workload $(SWIFT_FLAGS)
	Tests/containers/image.sh $(IMAGE) $$($(SWIFT) build --show-bin-path)

# The Kubernetes manifests, offline: Kubernetes' schemas (kubernetes-validate from PyPI, in a
# venv under .build), promtool on the PrometheusRule, check-config on the ConfigMap's TOML.
k8s-check: test-deps
	$(SWIFT) build --product closewaitd $(SWIFT_FLAGS)
	deploy/kubernetes/check.sh $$($(SWIFT) build --show-bin-path)/closewaitd

# The whole test suite, the daemon and workload binaries it starts included, built with
# ThreadSanitizer and then AddressSanitizer; any report fails the run (halt_on_error). Leak
# detection is off: the Swift runtime keeps metadata caches for the life of a process.
sanitize: test-deps
	$(SWIFT) build --build-tests --sanitize=thread --scratch-path .build-tsan $(SWIFT_FLAGS)
	TSAN_OPTIONS="halt_on_error=1 exitcode=66" $(SWIFT) test --skip-build --sanitize=thread --scratch-path .build-tsan $(SWIFT_FLAGS)
	$(SWIFT) build --build-tests --sanitize=address --scratch-path .build-asan $(SWIFT_FLAGS)
	ASAN_OPTIONS="halt_on_error=1 detect_leaks=0" $(SWIFT) test --skip-build --sanitize=address --scratch-path .build-asan $(SWIFT_FLAGS)

# libFuzzer (coverage + AddressSanitizer) on each target for FUZZ_SECONDS; crashes are kept in
# .build-fuzz/crashes/TARGET and fail the run (Tests/fuzz/run-fuzz.sh, README "Testing").
fuzz: deps
	SWIFT=$(SWIFT) Tests/fuzz/run-fuzz.sh $(FUZZ_SECONDS)

fuzz-smoke: deps
	SWIFT=$(SWIFT) Tests/fuzz/run-fuzz.sh $(FUZZ_SMOKE_SECONDS)

# The release daemon at a 1 s interval against a turning-over pool, a steady leak and
# short-lived holders; fails on an RSS or fd trend, a false alert or a missed one.
soak: test-deps
	$(SWIFT) build -c release --static-swift-stdlib $(SWIFT_FLAGS)
	.build/release/closewaitd-bench --soak $(SOAK_SECONDS)

soak-smoke: test-deps
	$(SWIFT) build -c release --static-swift-stdlib $(SWIFT_FLAGS)
	.build/release/closewaitd-bench --soak $(SOAK_SMOKE_SECONDS)

release: deps
	$(SWIFT) build -c release --static-swift-stdlib --product closewaitd $(SWIFT_FLAGS)

# Copies the files only: binary, unit, catalog, default config (never overwritten), docs.
install-files: release
	install -D -m 0755 $(RELEASE_BIN) $(DESTDIR)$(BINDIR)/closewaitd
	@# Installed stripped (33 MB -> 17 MB); the debug information is kept under its build id,
	@# $(PREFIX)/lib/debug/.build-id/XX/REST.debug, where gdb and coredumpctl look for it.
	build_id=$$(readelf -n $(RELEASE_BIN) | awk '/Build ID/ { print $$3 }'); \
	if [ -n "$$build_id" ]; then \
	    dir=$(DESTDIR)$(PREFIX)/lib/debug/.build-id/$$(echo $$build_id | cut -c1-2); install -d $$dir; \
	    objcopy --only-keep-debug --compress-debug-sections $(RELEASE_BIN) $$dir/$$(echo $$build_id | cut -c3-).debug; \
	    chmod 0644 $$dir/$$(echo $$build_id | cut -c3-).debug; fi
	strip --strip-unneeded $(DESTDIR)$(BINDIR)/closewaitd
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(CATALOGDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/closewaitd
	sed -e 's|/usr/bin/closewaitd|$(BINDIR)/closewaitd|g' -e 's|/etc/closewaitd/|$(SYSCONFDIR)/closewaitd/|g' \
	    -e 's|/usr/share/doc/closewaitd/|$(DOCDIR)/|g' packaging/systemd/closewaitd.service > $(DESTDIR)$(UNITDIR)/closewaitd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/closewaitd.service
	sed -e 's|/usr/share/doc/closewaitd/|$(DOCDIR)/|g' packaging/systemd/closewaitd-metrics.socket > $(DESTDIR)$(UNITDIR)/closewaitd-metrics.socket
	chmod 0644 $(DESTDIR)$(UNITDIR)/closewaitd-metrics.socket
	install -m 0644 packaging/systemd/closewaitd.catalog $(DESTDIR)$(CATALOGDIR)/closewaitd.catalog
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -D -m 0644 packaging/closewaitd.8 $(DESTDIR)$(MANDIR)/man8/closewaitd.8
	@# Shell completions generated from the argument parser itself.
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions
	$(RELEASE_BIN) --generate-completion-script bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/closewaitd
	$(RELEASE_BIN) --generate-completion-script zsh > $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_closewaitd
	chmod 0644 $(DESTDIR)$(PREFIX)/share/bash-completion/completions/closewaitd $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_closewaitd
	install -D -m 0644 packaging/systemd/closewaitd-ebpf.conf $(DESTDIR)$(PREFIX)/share/closewaitd/closewaitd-ebpf.conf
	install -D -m 0644 packaging/systemd/closewaitd-destroy-sockets.conf $(DESTDIR)$(PREFIX)/share/closewaitd/closewaitd-destroy-sockets.conf
	install -D -m 0644 packaging/systemd/closewaitd.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/closewaitd.conf
	install -D -m 0644 packaging/prometheus/closewaitd.rules.yml $(DESTDIR)$(PREFIX)/share/closewaitd/prometheus/closewaitd.rules.yml
	install -D -m 0644 packaging/prometheus/closewaitd.dashboard.json $(DESTDIR)$(PREFIX)/share/closewaitd/prometheus/closewaitd.dashboard.json
	test -e $(DESTDIR)$(SYSCONFDIR)/closewaitd/closewaitd.toml || \
	    install -m 0644 config/closewaitd.toml $(DESTDIR)$(SYSCONFDIR)/closewaitd/closewaitd.toml

# sudo make install: files, then (on a live systemd, without DESTDIR) enable and start.
install: install-files
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then \
	    systemd-sysusers closewaitd.conf; journalctl --update-catalog; systemctl daemon-reload; \
	    systemctl enable --now closewaitd.service && systemctl --no-pager status closewaitd.service | head -5; \
	else echo "installed into $(DESTDIR)$(PREFIX); start it with: systemctl enable --now closewaitd"; fi

uninstall:
	-@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl disable --now closewaitd-metrics.socket closewaitd.service; fi
	-build_id=$$(readelf -n $(DESTDIR)$(BINDIR)/closewaitd 2>/dev/null | awk '/Build ID/ { print $$3 }'); \
	[ -z "$$build_id" ] || rm -f $(DESTDIR)$(PREFIX)/lib/debug/.build-id/$$(echo $$build_id | cut -c1-2)/$$(echo $$build_id | cut -c3-).debug
	rm -f $(DESTDIR)$(BINDIR)/closewaitd $(DESTDIR)$(UNITDIR)/closewaitd.service $(DESTDIR)$(UNITDIR)/closewaitd-metrics.socket \
	    $(DESTDIR)$(CATALOGDIR)/closewaitd.catalog \
	    $(DESTDIR)$(MANDIR)/man8/closewaitd.8 $(DESTDIR)$(PREFIX)/share/bash-completion/completions/closewaitd \
	    $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_closewaitd $(DESTDIR)$(PREFIX)/lib/sysusers.d/closewaitd.conf
	rm -rf $(DESTDIR)$(DOCDIR) $(DESTDIR)$(PREFIX)/share/closewaitd
	-@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; journalctl --update-catalog; fi
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/closewaitd/closewaitd.toml and the system user closewaitd (remove them by hand if you no longer want them)"

# A .deb built with dpkg-deb from the same install tree (PREFIX=/usr, SYSCONFDIR=/etc).
deb: release
	@# Full Foundation (and ICU) in the daemon costs ~50 MB of binary and ~4 MiB of RSS; it
	@# comes in silently when a String method binds to Foundation's overload (TOMLKit imports it).
	@if nm $(RELEASE_BIN) | grep -q '10Foundation'; then \
	    echo "error: $(RELEASE_BIN) links full Foundation (ICU): find the Foundation API a Sources/ file uses" >&2; exit 1; fi
	@# FoundationEssentials (no ICU, ~4 MB) is said, with who imports it: a new importer shows here.
	@n=$$(nm $(RELEASE_BIN) | grep -c 'FoundationEssentials' || true); \
	if [ "$$n" -gt 0 ]; then echo "note: $(RELEASE_BIN) links FoundationEssentials ($$n symbols), imported by:" \
	    $$(grep -rl --include='*.swift' 'import FoundationEssentials' Sources .build/checkouts/*/Sources 2>/dev/null | sed 's|^.build/checkouts/||' | tr '\n' ' '); fi
	rm -rf $(DEB_ROOT) && mkdir -p $(DEB_ROOT)/DEBIAN
	$(MAKE) install-files DESTDIR=$(CURDIR)/$(DEB_ROOT) PREFIX=/usr SYSCONFDIR=/etc
	@# The debug information goes beside the .deb (dist/debug/), not into the package.
	rm -rf dist/debug && mkdir -p dist/debug/usr/lib && mv $(DEB_ROOT)/usr/lib/debug dist/debug/usr/lib/
	rmdir --ignore-fail-on-non-empty $(DEB_ROOT)/usr/lib
	gzip -9n $(DEB_ROOT)/usr/share/man/man8/closewaitd.8
	install -m 0644 packaging/debian/copyright $(DEB_ROOT)/usr/share/doc/closewaitd/copyright
	gzip -9n < packaging/debian/changelog > $(DEB_ROOT)/usr/share/doc/closewaitd/changelog.gz
	install -m 0644 packaging/debian/conffiles $(DEB_ROOT)/DEBIAN/conffiles
	install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm $(DEB_ROOT)/DEBIAN/
	sed -e 's/@VERSION@/$(VERSION)/' -e 's/@ARCH@/$(DEB_ARCH)/' \
	    -e "s/@SIZE@/$$(du -sk --exclude=DEBIAN $(DEB_ROOT) | cut -f1)/" packaging/debian/control.in > $(DEB_ROOT)/DEBIAN/control
	dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $(DEB)

# lintian findings on the .deb (see README, "Packaging").
lint-deb: deb
	./packaging/apt-ensure lintian
	lintian --info $(DEB) || true
clean:
	rm -rf .build .build-fuzz .build-tsan .build-asan dist
