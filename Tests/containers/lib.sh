# Shared by the container tests (sourced): WORK and BIN_DIR set, `log` and `die` defined.

wait_for() {  # SECONDS COMMAND...
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do [ $SECONDS -ge $deadline ] && return 1; sleep 0.3; done
}

# $WORK/closewaitd.toml: fast ticks, an alert at 5 sockets, then the lines given.
write_config() {
    printf '[daemon]\ninterval = "200ms"\n[alerts]\nhold = 1\n[thresholds]\ncount_warning = 5\ncount_critical = 1000\n%s\n' \
        "${1:-}" >"$WORK/closewaitd.toml"
}

# The daemon on that config, stderr to $WORK/daemon.log, its state in $WORK/state.json.
start_daemon() {
    "$BIN_DIR/closewaitd" run --config "$WORK/closewaitd.toml" --log stderr --state-file "$WORK/state.json" \
        2>"$WORK/daemon.log" &
    DAEMON=$!
}

# snapshot --json of the host (the config's [containers] roots), then CHECK, a Python
# expression over `c`, the container of the one process whose container id is ID and which
# holds 6 CLOSE_WAIT sockets (`p` is that process).
snapshot_container() {  # ID CHECK
    "$BIN_DIR/closewaitd" snapshot --json --config "$WORK/closewaitd.toml" >"$WORK/snapshot.json" || return 1
    python3 - "$WORK/snapshot.json" "$1" "$2" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
mine = [p for p in doc["processes"] if p["container"] and p["container"]["id"] == sys.argv[2]]
assert len(mine) == 1 and mine[0]["closeWait"] == 6, mine
p, c = mine[0], mine[0]["container"]
assert eval(sys.argv[3]), c
PY
}
