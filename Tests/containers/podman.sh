#!/bin/bash
# A real container runtime: a leaking workload in a podman container (its own network
# namespace, --network=none: loopback only; the host's root as an overlay), closewaitd on the
# host. Asserts the alert names the container (its --name from podman's containers/storage,
# CLOSEWAIT_CONTAINER_RUNTIME=podman and the id `podman ps` reports, the pid inside), and
# `snapshot --json`, `status` and `explain NAME` agree.
# runc, not crun (crun refuses this machine's hybrid cgroups); no default ulimits (the
# sandbox may not raise rlimits). The container is removed and the daemon ended from a trap.
#
# Usage: Tests/containers/podman.sh [BIN_DIR]   (default: swift build --show-bin-path)
set -u
HERE=$(cd "$(dirname "$0")/../.." && pwd)
BIN_DIR=$(cd "${1:-$(cd "$HERE" && swift build --show-bin-path)}" && pwd)
WORK=$(mktemp -d /tmp/closewaitd-podman.XXXXXX)
CID=""
NAME=closewaitd-test-$$
DAEMON=""
log() { echo "podman-test: $*"; }
cleanup() {
    # By name: a container podman created but could not start has no id printed to us.
    podman rm -f "$NAME" >/dev/null 2>&1
    [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
die() { log "FAIL - $*"; echo "--- daemon"; tail -5 "$WORK/daemon.log"; exit 1; }
. "$HERE/Tests/containers/lib.sh"
RUNC=$(command -v runc || echo /usr/sbin/runc)
printf '[containers]\ndefault_ulimits = []\n' >"$WORK/containers.conf"
export CONTAINERS_CONF="$WORK/containers.conf"
podman_run() { podman --runtime "$RUNC" run "$@"; }

command -v podman >/dev/null || die "podman is not installed (apt-get install podman runc)"
# The runtime itself must work here; if it cannot start a trivial container, that is this
# machine, not closewaitd: say so loudly and stop.
if ! out=$(podman_run --rm --network=none --rootfs /:O /bin/true 2>&1); then
    log "SKIP - podman cannot run a container on this machine: $(echo "$out" | tail -2 | tr '\n' ' ')"
    exit 0
fi

write_config
start_daemon

CID=$(podman_run -d --name "$NAME" --network=none --rootfs /:O "$BIN_DIR/closewaitd-workload" --processes 1 --v4 6 --duration 120 2>"$WORK/podman.err") \
    || die "podman run: $(cat "$WORK/podman.err")"
log "container $CID"
[ "$(podman ps --no-trunc --format '{{.ID}}' --filter id="$CID")" = "$CID" ] || die "podman ps does not list $CID"

alerted() { grep -q "CLOSEWAIT_CONTAINER_RUNTIME=podman CLOSEWAIT_CONTAINER_ID=$CID" "$WORK/daemon.log"; }
wait_for 30 alerted || die "no alert naming podman:$CID"
line=$(grep "CLOSEWAIT_CONTAINER_ID=$CID" "$WORK/daemon.log" | head -1)
log "alert: $(echo "$line" | cut -c1-200)"
echo "$line" | grep -q "(container $NAME (podman:${CID:0:12}), pid [0-9]* inside[^)]*) holds 6 CLOSE_WAIT sockets" || die "the alert text does not name the container and the pid inside"
echo "$line" | grep -q "CLOSEWAIT_CONTAINER_NAME=$NAME" || die "no CLOSEWAIT_CONTAINER_NAME=$NAME"
echo "$line" | grep -q "CLOSEWAIT_NSPID=" || die "no CLOSEWAIT_NSPID"
echo "$line" | grep -q "CLOSEWAIT_NETNS=" || die "no CLOSEWAIT_NETNS"
log "PASS - the alert names $NAME (podman:${CID:0:12}), CLOSEWAIT_CONTAINER_ID is the id podman ps reports"
wait_for 10 grep -q "\"containerName\": \"$NAME\"" "$WORK/state.json" || die "the state file does not carry the name"
"$BIN_DIR/closewaitd" status --state-file "$WORK/state.json" | grep -q " $NAME pid [0-9]" || die "closewaitd status does not show $NAME"
log "PASS - closewaitd status shows the container as $NAME"

snapshot_container "$CID" "(c['runtime'], c['name']) == ('podman', '$NAME') and p['innerPid'] and p['netns']" \
    || die "snapshot --json does not list the container's leaker by name"
log "PASS - snapshot --json lists the leaker with runtime podman, its id and name, pid inside and netns"

# Both scanners see the container's sockets alike, and as ss does inside its namespace.
"$BIN_DIR/closewaitd" snapshot --json --scanner poll >"$WORK/poll.json" || die "snapshot --scanner poll failed"
"$BIN_DIR/closewaitd" snapshot --json --scanner ebpf >"$WORK/ebpf.json" || die "snapshot --scanner ebpf failed"
LEAKER=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print([p["pid"] for p in d["processes"] if p["container"] and p["container"]["id"] == sys.argv[2]][0])' "$WORK/ebpf.json" "$CID") \
    || die "the eBPF scanner does not list the container's leaker"
nsenter -t "$LEAKER" -n ss -tanpe state close-wait >"$WORK/ss.txt" || die "ss inside the container's namespace failed"
python3 - "$WORK/poll.json" "$WORK/ebpf.json" "$WORK/ss.txt" "$LEAKER" <<'EOF' || die "the scanners disagree on the container's sockets"
import json, re, sys
def mine(path):
    doc = json.load(open(path))
    return {(s["inode"], s["local"], s["remote"], s["state"], s["recvQ"], tuple(s["owners"]), s["netns"])
            for s in doc["sockets"] if int(sys.argv[4]) in s["owners"]}
poll, ebpf = mine(sys.argv[1]), mine(sys.argv[2])
assert poll == ebpf and len(ebpf) == 6, (poll ^ ebpf, len(ebpf))
ss = {int(m.group(1)) for line in open(sys.argv[3]) if "pid=%s," % sys.argv[4] in line for m in [re.search(r"ino:(\d+)", line)] if m}
assert ss == {s[0] for s in ebpf}, (ss, {s[0] for s in ebpf})
EOF
log "PASS - the eBPF and the poll scanner list the container's 6 sockets alike, with the owners ss shows in its namespace"

"$BIN_DIR/closewaitd" explain "podman:${CID:0:12}" --state-file "$WORK/state.json" >"$WORK/explain.txt" || die "explain podman:${CID:0:12} failed"
grep -q "(container $NAME (podman:${CID:0:12}), pid [0-9]* inside" "$WORK/explain.txt" || die "explain does not name the container: $(head -3 "$WORK/explain.txt")"
"$BIN_DIR/closewaitd" explain "$NAME" --state-file "$WORK/state.json" >"$WORK/explain-name.txt" || die "explain $NAME failed"
cmp -s <(head -1 "$WORK/explain.txt") <(head -1 "$WORK/explain-name.txt") || die "explain by name and by id differ"
log "PASS - closewaitd explain finds it by podman:${CID:0:12} and by its name $NAME"
