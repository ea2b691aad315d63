#!/bin/bash
# service-test.sh DEB — the closewaitd service against a real systemd and journald.
#
# Boots this machine's own systemd in a throwaway systemd-nspawn container (tmpfs root,
# discarded overlays over /usr, /etc, /var: the host is untouched), installs the .deb,
# leaks CLOSE_WAIT sockets on loopback inside it, and checks start/READY/STATUS, the alert
# in the journal with its fields and catalog text, reload (good and bad config), the
# watchdog restarting a frozen daemon, a clean stop, systemd-analyze verify and security.
# Every wait is bounded; the container is stopped on every path.
set -uo pipefail

DEB=$(readlink -f "${1:?usage: service-test.sh path/to/closewaitd.deb}")
HERE=$(cd "$(dirname "$0")/../.." && pwd)
SWIFT=${SWIFT:-$(command -v swift || echo /opt/swift/usr/bin/swift)}
BIN_DIR=$(cd "$HERE" && "$SWIFT" build --show-bin-path)
WORK=$(mktemp -d /tmp/closewaitd-service-test.XXXXXX)
MACHINE="cwtest-$$"
TIMEOUT_PID=""
PID1=""
LEAK_NSENTER=""
# The second container (its own network namespace) and what runs in it and beside it.
TIMEOUT2_PID=""
LEAK_NETNS_NSENTER=""
MACHINE2="cwnet-$$"
# The cgroup systemd-machined gives a registered machine (unit-name escaped: '-' is \x2d).
MACHINE2_SCOPE="machine.slice/machine-${MACHINE2//-/\\x2d}.scope"
MACHINE2_CGROUPS=""
HOST_DAEMON=""
passed=0
failed=0

log() { printf 'service-test: %s\n' "$*"; }
pass() { passed=$((passed + 1)); log "ok   - $*"; }
fail() { failed=$((failed + 1)); log "FAIL - $*"; }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

# end_pid PID: SIGTERM, up to 5 s, then SIGKILL.
end_pid() {
    [ -n "$1" ] || return 0
    kill -TERM "$1" 2>/dev/null
    for _ in $(seq 1 25); do kill -0 "$1" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# end_container TIMEOUT_PID: `timeout` bounds the container's life; nspawn is its child.
# SIGTERM to nspawn makes it shut the container down; SIGKILL if that takes more than 20 s.
end_container() {
    local nspawn
    if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
        nspawn=$(pgrep -P "$1" -x systemd-nspawn)
        kill -TERM ${nspawn:-} "$1" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.2; done
        [ -n "$nspawn" ] && kill -KILL "$nspawn" 2>/dev/null
        kill -KILL "$1" 2>/dev/null
        wait "$1" 2>/dev/null
    fi
}

cleanup() {
    # Leakers run inside the containers through nsenter; end them (and nsenter) by pid.
    end_pid "$LEAK_NSENTER"
    end_pid "$LEAK_NETNS_NSENTER"
    end_pid "$HOST_DAEMON"
    end_container "$TIMEOUT_PID"
    end_container "$TIMEOUT2_PID"
    # The machine's cgroups, deepest first (the container's systemd made some below it).
    for d in $MACHINE2_CGROUPS; do find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; rmdir "$(dirname "$d")" 2>/dev/null; done
    [ "${KEEP_WORK:-}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# C CMD...: run CMD inside the container (all of its namespaces).
C() { nsenter -t "$PID1" -a "$@"; }

# wait_for SECONDS DESCRIPTION CMD...: poll CMD until it succeeds or the deadline passes.
wait_for() {
    local seconds=$1 what=$2; shift 2
    local deadline=$((SECONDS + seconds))
    while [ $SECONDS -lt $deadline ]; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    log "timed out after ${seconds}s waiting for: $what"
    return 1
}

[ "$(id -u)" = 0 ] || { log "needs root (systemd-nspawn)"; exit 1; }
command -v systemd-nspawn >/dev/null || { log "needs systemd-nspawn (apt-get install systemd-container)"; exit 1; }
[ -x "$BIN_DIR/closewaitd-workload" ] || (cd "$HERE" && "$SWIFT" build --product closewaitd-workload) || exit 1

mkdir -p "$WORK/pkg"
cp "$DEB" "$WORK/pkg/closewaitd.deb"
cp "$BIN_DIR/closewaitd-workload" "$WORK/pkg/"

log "booting container $MACHINE"
# The host's own services that the tests' packages enabled (docker.io, containerd, podman's
# API and auto-update, which fail on an overlay root and leave the boot "degraded", so the
# wait for "running" below would sit out its whole deadline) would start in every booted copy
# of this root and slow or fail its boot: masked there (systemd reads its arguments in a
# container as a kernel command line).
NO_RUNTIMES="systemd.mask=docker.service systemd.mask=docker.socket systemd.mask=containerd.service"
NO_RUNTIMES="$NO_RUNTIMES systemd.mask=podman.service systemd.mask=podman-auto-update.service systemd.mask=podman-restart.service"
# nspawn's default bounding set has no CAP_BPF or CAP_PERFMON, and its seccomp filter denies
# bpf() (a host's systemd has every capability and no filter): both given to the container
# so that the eBPF drop-in can grant them to the unit. CAP_NET_ADMIN likewise for the
# destroy-sockets drop-in (nspawn keeps it only for containers with a private network; this
# one shares the host's, which its SOCK_DESTROY then acts in: on the test's own sockets).
timeout 900 systemd-nspawn --keep-unit --register=no -D / --volatile=yes \
    --overlay=/usr::/usr --overlay=/etc::/etc --overlay=/var::/var \
    --bind-ro="$WORK/pkg:/mnt/pkg" --bind-ro=/opt/swift --capability=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN --system-call-filter=bpf \
    -M "$MACHINE" -b $NO_RUNTIMES </dev/null >"$WORK/console.log" 2>&1 &
TIMEOUT_PID=$!

# find_init TIMEOUT_PID: prints the host pid of the container's init below that nspawn.
find_init() {
    local p
    for p in $(pgrep -x systemd); do
        [ "$p" = 1 ] && continue
        # The container's init: PID 1 in its own pid namespace, below our nspawn.
        if awk '/^NSpid:/ { exit !($NF == 1) }' "/proc/$p/status" 2>/dev/null \
            && pstree -p "$1" 2>/dev/null | grep -q "($p)"; then
            echo "$p"; return 0
        fi
    done
    return 1
}
find_pid1() { PID1=$(find_init "$TIMEOUT_PID") && [ -n "$PID1" ]; }
wait_for 60 "the container's systemd" find_pid1 || { cat "$WORK/console.log"; exit 1; }
wait_for 120 "system running" C systemctl is-system-running --wait
state=$(C systemctl is-system-running 2>/dev/null)
log "container systemd (host pid $PID1) is $state"

# --- install ----------------------------------------------------------------
# This machine image carries Docker's /usr/sbin/policy-rc.d (exit 101), which tells
# deb-systemd-invoke never to start services. A real host has none: remove it inside the
# container (an overlay; the host keeps it) so the postinst behaves as it would there.
C rm -f /usr/sbin/policy-rc.d
check "dpkg -i installs the package" C dpkg -i /mnt/pkg/closewaitd.deb
check "postinst enabled the unit" C systemctl is-enabled --quiet closewaitd.service
check "bash and zsh completions installed" C test -s /usr/share/bash-completion/completions/closewaitd -a -s /usr/share/zsh/vendor-completions/_closewaitd
wait_for 30 "closewaitd active" C systemctl is-active --quiet closewaitd.service
check "closewaitd is active after install" C systemctl is-active --quiet closewaitd.service

# --- config for the test: fast ticks, a high threshold first -------------------
write_config() {  # write_config COUNT_WARNING
    C sh -c "cat > /etc/closewaitd/closewaitd.toml" <<CONF
[daemon]
interval = "1s"
window = "20s"
[alerts]
hold = 2
reminder = "0"
cooldown = "0"
[thresholds]
count_warning = $1
count_critical = 1000
growth_warning = 0
growth_critical = 0
age_warning = 0
age_critical = 0
exhaustion_warning = 0
exhaustion_critical = 0
CONF
}
write_config 100
C mkdir -p /etc/systemd/system/closewaitd.service.d
C sh -c 'printf "[Service]\nWatchdogSec=4s\nTimeoutAbortSec=2s\nRestartSec=1s\n" > /etc/systemd/system/closewaitd.service.d/test.conf'
C systemctl daemon-reload
check "systemctl restart succeeds (start returns only after READY)" C systemctl restart closewaitd.service
status=$(C systemctl show -p StatusText --value closewaitd.service)
sub=$(C systemctl show -p SubState --value closewaitd.service)
log "after start: SubState=$sub StatusText='$status'"
# STATUS= is sent together with READY=1, so a StatusText right when start returns proves the
# start job waited for READY.
check "active (running) with the daemon's STATUS when start returns" test "$sub" = running -a -n "$status"
case "$status" in *CLOSE_WAIT*|*watching*) pass "StatusText is the daemon's sentence";; *) fail "StatusText '$status'";; esac

CROSSED=e185260dfe7242159da48af8f29f2002
# SERVICE_TEST_ONLY=actions runs only the [[action]] checks (actions.sh) after install.
if [ "${SERVICE_TEST_ONLY:-}" != actions ]; then
# --- a leak inside the container ----------------------------------------------
# nsenter itself in the background (not the C function, whose subshell would hide its pid).
nsenter -t "$PID1" -a /mnt/pkg/closewaitd-workload --processes 1 --v4 6 --duration 300 >"$WORK/leak.out" 2>"$WORK/leak.err" &
LEAK_NSENTER=$!
wait_for 30 "leaker ready" grep -q '"ready":true' "$WORK/leak.out"
LEAKER=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["holders"][0])' "$WORK/leak.out")
PORT=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["port4"])' "$WORK/leak.out")
log "leaker pid $LEAKER (container namespace), peer 127.0.0.1:$PORT"

RELOADED=ebd6229ea723460eb05ae1e09c422f9c
REJECTED=ec06e116cb504e1dbac7b69f1372b186
journal_has() { C journalctl -u closewaitd.service -o json --no-pager "$@" | grep -q .; }

# Threshold 100: no alert for 6 sockets. Wait until a tick has seen the leaker (STATUS names
# it), then lower the threshold to 5 and reload.
status_names_leaker() { C systemctl show -p StatusText --value closewaitd.service | grep -q "closewaitd-work\[$LEAKER\] 6"; }
wait_for 30 "STATUS naming the leaker" status_names_leaker && pass "STATUS names the leaker: $(C systemctl show -p StatusText --value closewaitd.service)" || fail "STATUS naming the leaker"
no_alert_yet() { ! journal_has MESSAGE_ID=$CROSSED CLOSEWAIT_PID=$LEAKER; }
check "no alert under the first threshold (100)" no_alert_yet
write_config 5
check "systemctl reload succeeds" C systemctl reload closewaitd.service
wait_for 20 "reload notice" journal_has MESSAGE_ID=$RELOADED && pass "reload notice in the journal" || fail "reload notice"
wait_for 30 "alert for the leaker" journal_has MESSAGE_ID=$CROSSED CLOSEWAIT_PID=$LEAKER \
    && pass "alert with MESSAGE_ID and CLOSEWAIT_PID=$LEAKER after reload" || fail "alert after reload"
C journalctl -u closewaitd.service -o json --no-pager MESSAGE_ID=$CROSSED CLOSEWAIT_PID=$LEAKER >"$WORK/alert.json"
python3 - "$WORK/alert.json" "$LEAKER" "$PORT" <<'PY' && pass "alert fields: COUNT, TOP_PEER, PRIORITY, SYSLOG_IDENTIFIER, THRESHOLD" || fail "alert fields"
import json, sys
entry = json.loads(open(sys.argv[1]).readline())
checks = {
    "CLOSEWAIT_PID": sys.argv[2], "CLOSEWAIT_COUNT": "6", "CLOSEWAIT_TOP_PEER": f"127.0.0.1:{sys.argv[3]}",
    "CLOSEWAIT_REASON": "count", "CLOSEWAIT_LEVEL": "warning", "CLOSEWAIT_THRESHOLD": "5",
    "PRIORITY": "4", "SYSLOG_IDENTIFIER": "closewaitd", "CLOSEWAIT_COMM": "closewaitd-work",
}
bad = {k: (entry.get(k), v) for k, v in checks.items() if entry.get(k) != v}
print("service-test: alert:", entry.get("MESSAGE"))
if bad:
    print("service-test: mismatched fields:", bad)
    sys.exit(1)
PY
C closewaitd status >"$WORK/status.txt" 2>&1
status_rc=$?
sed 's/^/service-test: status: /' "$WORK/status.txt" | head -5
check "closewaitd status reads the service's state file (exit $status_rc)" test $status_rc = 0
check "closewaitd status shows the leaker at warning" grep -qE "^ *$LEAKER .*warning \(count\)" "$WORK/status.txt"
C journalctl -x -u closewaitd.service --no-pager MESSAGE_ID=$CROSSED >"$WORK/explained.txt"
check "journalctl -x shows the catalog text" grep -q "What to do: find the code path" "$WORK/explained.txt"

# --- a broken config on reload is rejected, the daemon keeps running ---------------
C sh -c 'printf "[thresholds]\ncount_warning = \"many\"\n" > /etc/closewaitd/closewaitd.toml'
check "reload with a broken config still returns" C systemctl reload closewaitd.service
wait_for 20 "rejection notice" journal_has MESSAGE_ID=$REJECTED && pass "rejection in the journal" || fail "rejection notice"
C journalctl -u closewaitd.service --no-pager MESSAGE_ID=$REJECTED -o cat | head -1 | tee "$WORK/rejected.txt" | sed 's/^/service-test: /'
check "rejection names file, line and key" grep -q "closewaitd.toml:2: thresholds.count_warning" "$WORK/rejected.txt"
check "still active after the rejected reload" C systemctl is-active --quiet closewaitd.service
write_config 5

# --- watchdog: a frozen daemon is restarted -----------------------------------------
restarts_before=$(C systemctl show -p NRestarts --value closewaitd.service)
main_before=$(C systemctl show -p MainPID --value closewaitd.service)
C kill -STOP "$main_before"
frozen_at=$SECONDS
restarted() {
    local n m
    n=$(C systemctl show -p NRestarts --value closewaitd.service)
    m=$(C systemctl show -p MainPID --value closewaitd.service)
    [ "$n" -gt "$restarts_before" ] && [ "$m" != 0 ] && [ "$m" != "$main_before" ] && C systemctl is-active --quiet closewaitd.service
}
# WatchdogSec=4s + TimeoutAbortSec=2s + RestartSec=1s, plus a margin.
if wait_for 30 "watchdog restart" restarted; then
    pass "watchdog restarted the frozen daemon in $((SECONDS - frozen_at))s (NRestarts $restarts_before -> $(C systemctl show -p NRestarts --value closewaitd.service))"
else
    fail "watchdog restart"
fi

# --- a capability dropped by a drop-in: attribution degraded, and said so ---------------
DEGRADED=89e70d1c3ee54120b579ad6246fac63d
C sh -c 'printf "[Service]\nAmbientCapabilities=\nAmbientCapabilities=CAP_DAC_READ_SEARCH\n" > /etc/systemd/system/closewaitd.service.d/lost-cap.conf'
C systemctl daemon-reload
check "restart without CAP_SYS_PTRACE succeeds" C systemctl restart closewaitd.service
wait_for 30 "degraded warning" journal_has MESSAGE_ID=$DEGRADED && pass "attribution-degraded warning in the journal: $(C journalctl -u closewaitd.service --no-pager -o cat MESSAGE_ID=$DEGRADED | tail -1 | cut -c1-120)" || fail "attribution-degraded warning"
status_degraded() { C systemctl show -p StatusText --value closewaitd.service | grep -q "attribution degraded"; }
wait_for 20 "STATUS degraded" status_degraded && pass "STATUS says degraded: $(C systemctl show -p StatusText --value closewaitd.service)" || fail "STATUS says degraded"
C closewaitd status >"$WORK/status-degraded.txt" 2>&1
check "closewaitd status warns about degraded attribution" grep -q "warning: attribution degraded" "$WORK/status-degraded.txt"
check "journalctl -x explains the degraded attribution" sh -c "nsenter -t $PID1 -a journalctl -x -u closewaitd.service --no-pager MESSAGE_ID=$DEGRADED | grep -q 'CAP_DAC_READ_SEARCH and'"
C rm -f /etc/systemd/system/closewaitd.service.d/lost-cap.conf
C systemctl daemon-reload
C systemctl restart closewaitd.service
wait_for 30 "STATUS naming the leaker again" status_names_leaker && ! status_degraded \
    && pass "with both capabilities back, the leaker is attributed and STATUS is not degraded" || fail "attribution after restoring the capability"

# --- the scanner: the shipped unit polls and says why; with the drop-in it scans with eBPF ----
SCANNER_POLL=b24c7e19d05a4f8e93a1c6e5d8f2b470
SCANNER_EBPF=5d3e0a8c9f1b4e27a6c4b8d2e7f09a13
last_json() { C journalctl -u closewaitd.service -o json --no-pager "$@" | tail -1; }
wait_for 20 "the shipped unit's scanner notice" journal_has MESSAGE_ID=$SCANNER_POLL \
    && pass "the shipped unit polls and says why: $(C journalctl -u closewaitd.service --no-pager -o cat MESSAGE_ID=$SCANNER_POLL | tail -1 | cut -c1-170)" \
    || fail "the shipped unit's polling notice"
reason_named() { last_json MESSAGE_ID=$SCANNER_POLL | grep -q '"CLOSEWAIT_REASON":"missing CAP_BPF and CAP_PERFMON'; }
check "its CLOSEWAIT_REASON names the missing capabilities" reason_named
C closewaitd status >"$WORK/status-poll.txt" 2>&1
check "closewaitd status says it polls and why" grep -q "^scanner: poll (eBPF unavailable: missing CAP_BPF" "$WORK/status-poll.txt"
check "the eBPF drop-in is installed and not enabled" \
    C sh -c 'test -s /usr/share/closewaitd/closewaitd-ebpf.conf && ! test -e /etc/systemd/system/closewaitd.service.d/ebpf.conf'
C mkdir -p /etc/systemd/system/closewaitd.service.d
C ln -s /usr/share/closewaitd/closewaitd-ebpf.conf /etc/systemd/system/closewaitd.service.d/ebpf.conf
C systemctl daemon-reload
crossed_before=$(C journalctl -u closewaitd.service -o cat --no-pager MESSAGE_ID=$CROSSED CLOSEWAIT_PID=$LEAKER | wc -l)
check "restart with the eBPF drop-in succeeds" C systemctl restart closewaitd.service
wait_for 30 "the eBPF scanner notice" journal_has MESSAGE_ID=$SCANNER_EBPF \
    && pass "with the drop-in the service scans with eBPF: $(C journalctl -u closewaitd.service --no-pager -o cat MESSAGE_ID=$SCANNER_EBPF | tail -1 | cut -c1-120)" \
    || { fail "the eBPF scanner notice"; C journalctl -u closewaitd.service --no-pager -o cat | tail -5 | sed 's/^/service-test: journal: /'; }
crossed_again() { [ "$(C journalctl -u closewaitd.service -o cat --no-pager MESSAGE_ID=$CROSSED CLOSEWAIT_PID=$LEAKER | wc -l)" -gt "$crossed_before" ]; }
wait_for 30 "an alert from the eBPF scanner" crossed_again \
    && pass "the eBPF-scanning service alerts on the leaker (pid $LEAKER in the container's pid namespace)" \
    || fail "an alert for the leaker from the eBPF scanner"
C closewaitd status >"$WORK/status-ebpf.txt" 2>&1
check "closewaitd status says eBPF" grep -q "^scanner: ebpf (tp_btf)" "$WORK/status-ebpf.txt"
check "closewaitd status shows the leaker (from the eBPF pass)" grep -qE "^ *$LEAKER .*closewaitd-work" "$WORK/status-ebpf.txt"
C systemd-analyze security --no-pager closewaitd.service >"$WORK/security-ebpf.txt" 2>&1
EBPF_SCORE=$(grep -o 'Overall exposure level for closewaitd.service: [0-9.]*' "$WORK/security-ebpf.txt" | grep -o '[0-9.]*$')
log "systemd-analyze security with the eBPF drop-in: exposure ${EBPF_SCORE:-unknown}"
[ -n "${SECURITY_REPORT:-}" ] && cp "$WORK/security-ebpf.txt" "${SECURITY_REPORT%.txt}-ebpf.txt"
C rm -f /etc/systemd/system/closewaitd.service.d/ebpf.conf
C systemctl daemon-reload
C systemctl restart closewaitd.service

# --- a leaker in its own network namespace, seen by the hardened service ------------------
# unshare --net inside the container: the service (DynamicUser, two capabilities, no
# CAP_SYS_ADMIN) must find the namespace and read it through the member's /proc/PID/net/tcp.
nsenter -t "$PID1" -a unshare --net sh -c 'ip link set lo up && exec /mnt/pkg/closewaitd-workload --processes 1 --v4 7 --duration 300' \
    >"$WORK/leak-netns.out" 2>"$WORK/leak-netns.err" &
LEAK_NETNS_NSENTER=$!
if wait_for 30 "namespaced leaker ready" grep -q '"ready":true' "$WORK/leak-netns.out"; then
    NETNS_LEAKER=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["holders"][0])' "$WORK/leak-netns.out")
    NETNS_INODE=$(C stat -L -c %i "/proc/$NETNS_LEAKER/ns/net")
    log "leaker in its own network namespace: pid $NETNS_LEAKER, netns $NETNS_INODE"
    wait_for 30 "alert for the namespaced leaker" journal_has MESSAGE_ID=$CROSSED CLOSEWAIT_PID=$NETNS_LEAKER CLOSEWAIT_NETNS=$NETNS_INODE \
        && pass "the hardened service alerts on a leaker in its own network namespace: $(C journalctl -u closewaitd.service --no-pager -o cat MESSAGE_ID=$CROSSED CLOSEWAIT_PID=$NETNS_LEAKER | tail -1 | cut -c1-160)" \
        || fail "alert for the leaker in its own network namespace (CLOSEWAIT_NETNS=$NETNS_INODE)"
else
    fail "namespaced leaker ready: $(cat "$WORK/leak-netns.err")"
fi
end_pid "$LEAK_NETNS_NSENTER"; LEAK_NETNS_NSENTER=""
[ -n "${NETNS_LEAKER:-}" ] && C kill "$NETNS_LEAKER" 2>/dev/null

# --- the metrics endpoint through socket activation -----------------------------------
# systemd refuses to start a socket whose service already runs: stop, then start both.
check "closewaitd-metrics.socket enables" C systemctl enable closewaitd-metrics.socket
C systemctl stop closewaitd.service
check "the socket and then the service start" C systemctl start closewaitd-metrics.socket closewaitd.service
scrape_names_leaker() {
    C curl -sf --max-time 5 -o /tmp/scrape.txt http://127.0.0.1:9838/metrics \
        && C grep -q "closewaitd_process_close_wait_sockets{pid=\"$LEAKER\"" /tmp/scrape.txt
}
wait_for 30 "a scrape naming the leaker" scrape_names_leaker \
    && pass "curl http://127.0.0.1:9838/metrics (socket from systemd) names the leaker: $(C grep "closewaitd_process_close_wait_sockets{pid=\"$LEAKER\"" /tmp/scrape.txt)" \
    || fail "a scrape of the socket-activated endpoint naming the leaker"
check "the service says it serves systemd's socket" sh -c "nsenter -t $PID1 -a journalctl -u closewaitd.service --no-pager -o cat | grep -q 'metrics at http://127.0.0.1:9838/metrics (socket from systemd)'"
C cat /tmp/scrape.txt > "$WORK/scrape.txt"
if command -v promtool >/dev/null; then
    check "promtool check metrics accepts the live scrape" sh -c "promtool check metrics < '$WORK/scrape.txt'"
fi
check "the service's own sockets stay AF_UNIX/AF_NETLINK (RestrictAddressFamilies unchanged)" \
    sh -c "nsenter -t $PID1 -a systemctl show -p RestrictAddressFamilies --value closewaitd.service | grep -v AF_INET | grep -q AF_NETLINK"
C systemd-analyze verify /usr/lib/systemd/system/closewaitd-metrics.socket >"$WORK/verify-socket.txt" 2>&1
check "systemd-analyze verify closewaitd-metrics.socket is clean" test $? = 0 -a ! -s "$WORK/verify-socket.txt"

fi  # SERVICE_TEST_ONLY

# --- actions on alerts: restart_unit, exec, destroy_sockets (actions.sh) ------------------
. "$HERE/Tests/service/actions.sh"

# --- stop ----------------------------------------------------------------------
check "systemctl stop succeeds" C systemctl stop closewaitd.service
result=$(C systemctl show -p Result --value closewaitd.service)
code=$(C systemctl show -p ExecMainCode --value closewaitd.service)
estatus=$(C systemctl show -p ExecMainStatus --value closewaitd.service)
log "after stop: Result=$result ExecMainCode=$code ExecMainStatus=$estatus"
# ExecMainCode 1 = CLD_EXITED (exited by itself, not killed), status 0.
check "stopped cleanly: exit 0, not killed" test "$result" = success -a "$code" = 1 -a "$estatus" = 0

# --- static analysis -------------------------------------------------------------
C rm -f /etc/systemd/system/closewaitd.service.d/test.conf
C systemctl daemon-reload
C systemd-analyze verify /usr/lib/systemd/system/closewaitd.service >"$WORK/verify.txt" 2>&1
verify_rc=$?
sed 's/^/service-test: verify: /' "$WORK/verify.txt"
check "systemd-analyze verify is clean" test $verify_rc = 0 -a ! -s "$WORK/verify.txt"
C systemd-analyze security --no-pager closewaitd.service >"$WORK/security.txt" 2>&1
score=$(grep -o 'Overall exposure level for closewaitd.service: [0-9.]*' "$WORK/security.txt" | grep -o '[0-9.]*$')
log "systemd-analyze security: exposure ${score:-unknown}"
grep -E '^✗' "$WORK/security.txt" | sed 's/^/service-test: security: /' | head -40
awk -v s="${score:-99}" 'BEGIN { exit !(s <= 2.5) }' && pass "exposure $score <= 2.5" || fail "exposure ${score:-unknown} > 2.5"
[ -n "${SECURITY_REPORT:-}" ] && cp "$WORK/security.txt" "$SECURITY_REPORT"

# --- a leak in a container with its own network namespace, watched from the host --------
# sock_diag from the host cannot see that namespace's sockets: closewaitd reads them through
# the member's /proc/<pid>/net/tcp and names the process with its pid inside.
log "booting a second container with --private-network"
# On a systemd host, `machinectl start` or a registered nspawn runs in
# machine.slice/machine-NAME.scope, the path closewaitd names the machine by. This sandbox has
# no systemd as PID 1 (so no machined, no scope): the test makes the same cgroup in the
# systemd hierarchies itself (name=systemd and the unified one: v1, hybrid or pure v2) and
# starts nspawn in it, --keep-unit, as systemd would.
for root in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified /sys/fs/cgroup; do
    case "$(stat -fc %T "$root" 2>/dev/null)" in
        cgroup2fs) ;;
        cgroupfs) [ "$root" = /sys/fs/cgroup/systemd ] || continue ;;
        *) continue ;;
    esac
    [ "$root" = /sys/fs/cgroup ] && [ -n "$MACHINE2_CGROUPS" ] && continue
    mkdir -p "$root/$MACHINE2_SCOPE" && MACHINE2_CGROUPS="$MACHINE2_CGROUPS $root/$MACHINE2_SCOPE"
done
log "machine cgroups:${MACHINE2_CGROUPS:- none (cannot name the machine)}"
(
    for d in $MACHINE2_CGROUPS; do echo "$BASHPID" >"$d/cgroup.procs"; done
    exec timeout 600 systemd-nspawn --keep-unit --register=no -D / --volatile=yes \
        --overlay=/usr::/usr --overlay=/etc::/etc --overlay=/var::/var \
        --bind-ro="$WORK/pkg:/mnt/pkg" --bind-ro=/opt/swift --private-network \
        -M "$MACHINE2" -b $NO_RUNTIMES </dev/null >"$WORK/console2.log" 2>&1
) &
TIMEOUT2_PID=$!
PID2=""
find_pid2() { PID2=$(find_init "$TIMEOUT2_PID") && [ -n "$PID2" ]; }
C2() { nsenter -t "$PID2" -a "$@"; }
if wait_for 60 "the second container's systemd" find_pid2; then
    # Booted far enough (running, or degraded on a busy machine) for a workload.
    state2=$(timeout 120 nsenter -t "$PID2" -a systemctl is-system-running --wait 2>/dev/null)
    log "second container (host pid $PID2) is ${state2:-not up after 120 s}"
    C2 ip link set lo up
    # The leaker is a service of the container's own systemd (as a containerised app would
    # be), so it lives in the machine's cgroup; it ends with the container.
    C2 systemd-run --quiet --unit=cwleak -p StandardOutput=file:/run/cwleak.out -p StandardError=file:/run/cwleak.err \
        /mnt/pkg/closewaitd-workload --processes 1 --v4 6 --duration 300
    LEAK2_OUT="/proc/$PID2/root/run/cwleak.out"
    wait_for 30 "namespaced leaker ready" grep -q '"ready":true' "$LEAK2_OUT"
    INNER=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["holders"][0])' "$LEAK2_OUT")
    NETNS=$(readlink "/proc/$PID2/ns/net" | tr -dc 0-9)
    HOSTPID=""
    for p in $(pgrep -f 'closewaitd-workload --processes 1 --v4 6'); do
        if [ "$(readlink /proc/$p/ns/pid)" = "$(readlink /proc/$PID2/ns/pid)" ] \
            && awk -v inner="$INNER" '/^NSpid:/ { exit !($NF == inner) }' "/proc/$p/status"; then HOSTPID=$p; fi
    done
    log "namespaced leaker: host pid ${HOSTPID:-?}, pid $INNER inside, netns $NETNS, machine $MACHINE2"
    sed 's/^/service-test: cgroup of the namespaced leaker: /' "/proc/${HOSTPID:-0}/cgroup" 2>/dev/null | grep -E 'systemd|0::'
    # Named only when the test could make the machine's cgroup.
    WANT_MACHINE=""
    [ -n "$MACHINE2_CGROUPS" ] && WANT_MACHINE=$MACHINE2
    "$BIN_DIR/closewaitd" snapshot --json --pid "${HOSTPID:-0}" >"$WORK/netns-snapshot.json"
    python3 - "$WORK/netns-snapshot.json" "${HOSTPID:-0}" "$INNER" "$NETNS" "$WANT_MACHINE" <<'PY' && pass "host snapshot attributes the container's sockets: host pid, pid inside, netns, machine" || fail "host snapshot of the container's sockets"
import json, sys
doc = json.load(open(sys.argv[1]))
procs = [p for p in doc["processes"] if p["pid"] == int(sys.argv[2])]
print("service-test: snapshot:", procs[0] if procs else doc["processes"][:3])
ok = procs and procs[0]["closeWait"] == 6 and procs[0]["innerPid"] == int(sys.argv[3]) and procs[0]["netns"] == int(sys.argv[4])
ok = ok and all(s["netns"] == int(sys.argv[4]) for s in doc["sockets"])
ok = ok and all(peer["netns"] == int(sys.argv[4]) for peer in procs[0]["peers"])
if sys.argv[5]:
    c = procs[0]["container"]
    ok = ok and (c["runtime"], c["id"], c["name"], c["podUid"], c["podName"]) == ("nspawn", sys.argv[5], sys.argv[5], None, None)
sys.exit(0 if ok else 1)
PY
    printf '[daemon]\ninterval = "1s"\n[alerts]\nhold = 1\n[thresholds]\ncount_warning = 5\n' >"$WORK/host.toml"
    "$BIN_DIR/closewaitd" run --config "$WORK/host.toml" --log stderr --state-file "" 2>"$WORK/host-daemon.log" &
    HOST_DAEMON=$!
    host_alert() { grep "CLOSEWAIT_PID=$HOSTPID " "$WORK/host-daemon.log" | grep -q "MESSAGE_ID=$CROSSED"; }
    if wait_for 30 "host daemon alert for the namespaced leaker" host_alert; then
        line=$(grep "CLOSEWAIT_PID=$HOSTPID " "$WORK/host-daemon.log" | grep "MESSAGE_ID=$CROSSED" | head -1)
        log "host alert: ${line:0:200}"
        case "$line" in
            *"pid $INNER "*"netns $NETNS)"*"CLOSEWAIT_NSPID=$INNER "*"CLOSEWAIT_NETNS=$NETNS "*) pass "host alert names the host pid, the pid inside and the netns";;
            *) fail "host alert text/fields for the namespaced leaker";;
        esac
        if [ -n "$WANT_MACHINE" ]; then
            case "$line" in
                *"(container nspawn:$WANT_MACHINE, pid $INNER inside"*"CLOSEWAIT_CONTAINER_RUNTIME=nspawn "*"CLOSEWAIT_CONTAINER_ID=$WANT_MACHINE "*"CLOSEWAIT_CONTAINER_NAME=$WANT_MACHINE "*)
                    pass "host alert names the nspawn machine $WANT_MACHINE";;
                *) fail "host alert names the nspawn machine $WANT_MACHINE";;
            esac
        fi
    else
        fail "host daemon alert for the namespaced leaker"
    fi
    end_pid "$HOST_DAEMON"; HOST_DAEMON=""
else
    fail "second container did not boot"; sed 's/^/service-test: console2: /' "$WORK/console2.log" | tail -5
fi

log "$passed passed, $failed failed"
[ "$failed" = 0 ]
