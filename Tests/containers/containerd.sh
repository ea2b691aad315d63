#!/bin/bash
# A real containerd (Debian's containerd + ctr), started by this test with its own root,
# state and socket (the CRI plugin off: no kubelet here), running a leaker as a task the way
# Kubernetes' CRI plugin lays one out: namespace k8s.io, a pod's cgroup
# (/kubepods/besteffort/pod<uid>/<id>, the cgroupfs driver) and the CRI annotations
# (io.kubernetes.cri.container-name, sandbox-name, sandbox-namespace, …) in the task's OCI
# config.json, which containerd itself writes. closewaitd reads that state
# ([containers] containerd_roots) and must name the pod, namespace and container in the
# alert, snapshot --json and `explain namespace/pod`. The container shares the host's
# network (ctr's own namespaces start with lo down). Ended by pid from a trap.
#
# Usage: Tests/containers/containerd.sh [BIN_DIR]   (default: swift build --show-bin-path)
set -u
HERE=$(cd "$(dirname "$0")/../.." && pwd)
BIN_DIR=$(cd "${1:-$(cd "$HERE" && swift build --show-bin-path)}" && pwd)
WORK=$(mktemp -d /tmp/closewaitd-containerd.XXXXXX)
ID=$(head -c 32 /dev/urandom | sha256sum | cut -c1-64)
POD_UID=$(cat /proc/sys/kernel/random/uuid)
CONTAINERD="" DAEMON=""
C() { ctr -a "$WORK/containerd.sock" -n k8s.io "$@"; }
log() { echo "containerd-test: $*"; }
cleanup() {
    if [ -n "$CONTAINERD" ]; then
        C task kill -s KILL "$ID" >/dev/null 2>&1
        for _ in $(seq 50); do C task ls -q 2>/dev/null | grep -q "$ID" || break; C task rm "$ID" >/dev/null 2>&1; sleep 0.1; done
        C container rm "$ID" >/dev/null 2>&1
        local shims
        shims=$(pgrep -f "containerd-shim-runc-v2 -namespace k8s.io -id $ID")
        kill "$CONTAINERD" $shims 2>/dev/null
        wait "$CONTAINERD" 2>/dev/null
    fi
    [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
die() {
    log "FAIL - $*"; echo "--- daemon"; tail -5 "$WORK/daemon.log" 2>/dev/null
    echo "--- containerd"; tail -3 "$WORK/containerd.log"; exit 1
}
. "$HERE/Tests/containers/lib.sh"
command -v containerd >/dev/null && command -v ctr >/dev/null || die "containerd is not installed (apt-get install containerd)"

printf 'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n' >"$WORK/config.toml"
containerd --config "$WORK/config.toml" --root "$WORK/root" --state "$WORK/state" \
    --address "$WORK/containerd.sock" >"$WORK/containerd.log" 2>&1 &
CONTAINERD=$!
if ! wait_for 30 C version >/dev/null 2>&1; then
    log "SKIP - containerd does not start on this machine: $(tail -2 "$WORK/containerd.log" | tr '\n' ' ')"
    exit 0
fi
"$HERE/packaging/container/mkroot.sh" "$WORK/rootfs" "$BIN_DIR/closewaitd-workload:/usr/bin/closewaitd-workload" \
    || die "could not assemble the rootfs"
mkdir -p "$WORK/rootfs/dev" "$WORK/rootfs/proc" "$WORK/rootfs/sys"

write_config "$(printf '[containers]\ncontainerd_roots = ["%s"]' "$WORK/state")"
start_daemon

C run -d --rootfs --net-host --cgroup "/kubepods/besteffort/pod$POD_UID/$ID" \
    --annotation io.kubernetes.cri.container-type=container --annotation io.kubernetes.cri.container-name=app \
    --annotation io.kubernetes.cri.sandbox-id="$(echo "$ID" | rev)" \
    --annotation io.kubernetes.cri.sandbox-name=orders-7d9f-x2k4p --annotation io.kubernetes.cri.sandbox-namespace=shop \
    --annotation io.kubernetes.cri.sandbox-uid="$POD_UID" \
    "$WORK/rootfs" "$ID" /usr/bin/closewaitd-workload --processes 1 --v4 6 --duration 120 >"$WORK/run.out" 2>&1 \
    || die "ctr run: $(cat "$WORK/run.out")"
[ -f "$WORK/state/io.containerd.runtime.v2.task/k8s.io/$ID/config.json" ] || die "containerd wrote no task config.json"
log "task $ID in pod shop/orders-7d9f-x2k4p"

alerted() { grep -q "CLOSEWAIT_CONTAINER_ID=$ID CLOSEWAIT_CONTAINER_NAME=app CLOSEWAIT_POD_NAME=orders-7d9f-x2k4p CLOSEWAIT_POD_NAMESPACE=shop CLOSEWAIT_POD_UID=$POD_UID" "$WORK/daemon.log"; }
wait_for 30 alerted || die "no alert naming the pod, namespace and container"
line=$(grep "CLOSEWAIT_CONTAINER_ID=$ID" "$WORK/daemon.log" | head -1)
log "alert: $(echo "$line" | cut -c1-150)"
echo "$line" | grep -q "(pod shop/orders-7d9f-x2k4p, container app, pid [0-9]* inside) holds 6 CLOSE_WAIT sockets" \
    || die "the alert text does not name the pod"
log "PASS - the alert names pod shop/orders-7d9f-x2k4p, container app (CLOSEWAIT_POD_*, CLOSEWAIT_CONTAINER_NAME)"

snapshot_container "$ID" "(c['runtime'], c['name'], c['podName'], c['podNamespace'], c['podUid']) == ('containerd', 'app', 'orders-7d9f-x2k4p', 'shop', '$POD_UID')" \
    || die "snapshot --json does not name the pod"
log "PASS - snapshot --json names it (runtime containerd, name app, podName, podNamespace, podUid)"

"$BIN_DIR/closewaitd" explain shop/orders-7d9f-x2k4p --config "$WORK/closewaitd.toml" --state-file "$WORK/state.json" \
    >"$WORK/explain.txt" || die "explain shop/orders-7d9f-x2k4p failed"
grep -q "(pod shop/orders-7d9f-x2k4p, container app, pid [0-9]* inside" "$WORK/explain.txt" || die "explain does not name it"
log "PASS - closewaitd explain shop/orders-7d9f-x2k4p finds it"
