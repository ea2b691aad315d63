#!/bin/bash
# The container image as a node agent under podman: --pid=host --network=host, root with only
# CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE, CAP_BPF and CAP_PERFMON, a read-only root, the host's
# containers/storage mounted read-only under /host, its state in its own volume. Against a
# leaker on the host and one in a named podman container, it must alert on both in JSON lines
# on stdout (the container one with CLOSEWAIT_CONTAINER_NAME), serve /metrics with
# container="NAME" and /healthz, and answer `closewaitd status` inside. Everything started
# is ended by pid or name from a trap.
#
# Usage: Tests/containers/image.sh IMAGE [BIN_DIR]
set -u
IMAGE=$1
HERE=$(cd "$(dirname "$0")/../.." && pwd)
BIN_DIR=$(cd "${2:-$(cd "$HERE" && swift build --show-bin-path)}" && pwd)
WORK=$(mktemp -d /tmp/closewaitd-image.XXXXXX)
AGENT=closewaitd-agent-$$ LEAKER=orders-$$
PORT=$((20000 + $$ % 10000))
HOSTLEAK=""
log() { echo "image-test: $*"; }
RUNC=$(command -v runc || echo /usr/sbin/runc)
printf '[containers]\ndefault_ulimits = []\n' >"$WORK/containers.conf"
export CONTAINERS_CONF="$WORK/containers.conf"
P() { podman --runtime "$RUNC" "$@"; }
cleanup() {
    P rm -f "$AGENT" "$LEAKER" >/dev/null 2>&1
    [ -n "$HOSTLEAK" ] && kill "$HOSTLEAK" 2>/dev/null && wait "$HOSTLEAK" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
die() { log "FAIL - $*"; echo "--- agent"; P logs --tail 5 "$AGENT" 2>&1 | cut -c1-400; exit 1; }
. "$HERE/Tests/containers/lib.sh"
P image exists "$IMAGE" || die "no image $IMAGE (make image)"
log "image $IMAGE: $(P image inspect --format '{{.Size}}' "$IMAGE") bytes"

# A leaker on the host, and one in a named container (its own network namespace).
"$BIN_DIR/closewaitd-workload" --processes 1 --v4 7 --duration 120 >"$WORK/host.out" 2>&1 &
HOSTLEAK=$!
P run -d --name "$LEAKER" --network=none --rootfs /:O "$BIN_DIR/closewaitd-workload" --processes 1 --v4 6 \
    --duration 120 >"$WORK/leaker.id" 2>"$WORK/leaker.err" || die "podman run leaker: $(cat "$WORK/leaker.err")"
CID=$(cat "$WORK/leaker.id")

cat >"$WORK/agent.toml" <<EOF2
[daemon]
interval = "500ms"
[alerts]
hold = 1
[thresholds]
count_warning = 5
count_critical = 1000
[metrics]
listen = "127.0.0.1:$PORT"
[containers]
storage_roots = ["/host/var/lib/containers/storage", "/host/run/containers/storage"]
EOF2
P run -d --name "$AGENT" --pid=host --network=host --read-only --cap-drop=all \
    --cap-add=DAC_READ_SEARCH,SYS_PTRACE,BPF,PERFMON \
    -v /var/lib/containers/storage:/host/var/lib/containers/storage:ro \
    -v /run/containers/storage:/host/run/containers/storage:ro \
    -v "$WORK/agent.toml:/etc/closewaitd/closewaitd.toml:ro" --tmpfs /run/closewaitd \
    "$IMAGE" >"$WORK/agent.id" 2>"$WORK/agent.err" || die "podman run agent: $(cat "$WORK/agent.err")"

named() { P logs "$AGENT" 2>/dev/null | grep -q "\"CLOSEWAIT_CONTAINER_NAME\":\"$LEAKER\""; }
wait_for 60 named || die "no JSON alert line naming $LEAKER"
P logs "$AGENT" 2>/dev/null >"$WORK/agent.log"
python3 - "$WORK/agent.log" "$LEAKER" "$CID" "$HOSTLEAK" <<'EOF2' || die "the JSON lines are not what they should be"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
docs = [json.loads(l) for l in lines]          # every line is one JSON object
alerts = [d for d in docs if d.get("CLOSEWAIT_REASON") == "count"]
mine = [d for d in alerts if d.get("CLOSEWAIT_CONTAINER_NAME") == sys.argv[2]]
assert mine and mine[0]["CLOSEWAIT_CONTAINER_ID"] == sys.argv[3] and mine[0]["level"] == "warning", mine
assert "(container %s (podman:%s)" % (sys.argv[2], sys.argv[3][:12]) in mine[0]["message"], mine[0]["message"]
host = [d for d in alerts if "CLOSEWAIT_CONTAINER_ID" not in d and d.get("CLOSEWAIT_COUNT") == "7"]
assert host, [d["message"][:80] for d in alerts]
assert all(d["time"].endswith("Z") and d["MESSAGE_ID"] for d in alerts)
print("image-test: a line:", json.dumps({k: mine[0][k] for k in list(mine[0])[:5] + ["MESSAGE_ID", "CLOSEWAIT_CONTAINER_NAME", "CLOSEWAIT_COUNT"]}))
scanner = [d for d in docs if d.get("CLOSEWAIT_SCANNER")]
print("image-test: scanner in the container:", scanner[0]["CLOSEWAIT_SCANNER"] if scanner else "?",
      "-", scanner[0]["message"][:120] if scanner else "")
EOF2
log "PASS - JSON lines on stdout: the leaker in container $LEAKER by name, the host's leaker (7 sockets)"

metrics=$(curl -sf "http://127.0.0.1:$PORT/metrics") || die "no /metrics on 127.0.0.1:$PORT"
echo "$metrics" | grep -q "container=\"$LEAKER\",pod=\"\",namespace=\"\"} 6" || die "no series with container=\"$LEAKER\""
[ "$(curl -sf "http://127.0.0.1:$PORT/healthz")" = "ok" ] || die "/healthz is not ok"
log "PASS - /metrics carries container=\"$LEAKER\"; /healthz says ok"

P exec "$AGENT" /usr/bin/closewaitd status >"$WORK/status.txt" || die "closewaitd status inside the agent failed: $(cat "$WORK/status.txt")"
grep -q " $LEAKER pid [0-9]" "$WORK/status.txt" || die "status does not show $LEAKER"
log "PASS - closewaitd status inside the agent shows $LEAKER (state file in its own volume)"
