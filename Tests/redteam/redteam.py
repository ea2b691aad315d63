#!/usr/bin/env python3
"""make redteam: issue 17's attacks at full size against the release daemon, run as the
shipped unit runs it (a memory cgroup with MemoryMax=128M, WatchdogSec=30s as WATCHDOG_USEC
with a notify socket, the shipped config), each with a real 150-socket leak elsewhere.

For each attack it prints: time to READY, the longest gap between watchdog pings, peak
memory (the cgroup's high-water mark), CPU per minute, and how long after the leak started
its alert came. Goals (issue 17): under 64 MiB, READY within 15 s, no watchdog gap past
30 s, the leak alerted within 30 s.

usage: redteam.py BIN_DIR [--only NAME,...] [--seconds S] [--markdown FILE]
Every process it starts is ended by pid (and the attack's children die with their parent).
"""
import json, os, shutil, signal, socket, subprocess, sys, tempfile, threading, time

BIN = sys.argv[1]
# The helpers run as nobody: copied where nobody can read them (a checkout may sit in a
# directory only its owner can enter).
HERE = tempfile.mkdtemp(prefix="cw-redteam-helpers-")
os.chmod(HERE, 0o755)
for name in os.listdir(os.path.dirname(os.path.abspath(__file__))):
    if name.endswith(".py"):
        shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), name), HERE)
        os.chmod(os.path.join(HERE, name), 0o755)
ONLY = sys.argv[sys.argv.index("--only") + 1].split(",") if "--only" in sys.argv else None
SECONDS = float(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 90
MARKDOWN = sys.argv[sys.argv.index("--markdown") + 1] if "--markdown" in sys.argv else None
NOBODY = ["/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/bin/python3"]
MEMCG = "/sys/fs/cgroup/memory"
SHIPPED_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "config", "closewaitd.toml")

ATTACKS = {
    # row: (description, argv of the attack run as nobody)
    "2-fork-sharers": ("150 CLOSE_WAIT sockets shared by 10,000 forked children",
                       [os.path.join(HERE, "fork-sharers.py"), "150", "10000", "600"]),
    "3-timewait": ("one user netns with 500k TIME_WAIT entries",
                   [os.path.join(HERE, "netns-flood.py"), "timewait", "500000", "600"]),
    "4-busy-namespaces": ("1000 user+net namespaces, one loopback connection a second each",
                          [os.path.join(HERE, "netns-flood.py"), "busy", "1000", "600"]),
    "5-timewait-leakers": ("200k TIME_WAIT in a netns + 21 processes there crossing count_warning together",
                           [os.path.join(HERE, "netns-flood.py"), "timewait", "200000", "600", "--leakers", "21", "--leak", "101"]),
    "10-idle-fds": ("1.52M idle fds + one unownable CLOSE_WAIT socket a second",
                    [os.path.join(HERE, "parked-sockets.py"), "1", "600", "--per-second", "1", "--idle-fds", "1520000"]),
}


class Notify:
    """The notify socket systemd would give: records (time, message)."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []
        self.stopping = False
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stopping:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode(errors="replace")))


def start_attack(argv):
    p = subprocess.Popen(NOBODY + argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    return p, json.loads(line) if line.startswith("{") else {}


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_one(name, description, argv):
    print(f"redteam: {name}: {description}: starting the attack", flush=True)
    t0 = time.monotonic()
    attack, info = start_attack(argv)
    print(f"redteam: {name}: attack ready after {time.monotonic() - t0:.0f} s: {info}", flush=True)
    work = tempfile.mkdtemp(prefix="cw-redteam-")
    cg = f"{MEMCG}/cw-redteam-{os.getpid()}"
    os.mkdir(cg)
    open(f"{cg}/memory.limit_in_bytes", "w").write(str(128 << 20))
    notify = Notify(f"{work}/notify")
    env = dict(os.environ, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="30000000")
    env.pop("WATCHDOG_PID", None)
    daemon = leak = None
    try:
        started = time.monotonic()
        daemon = subprocess.Popen(["/bin/sh", "-c", f'echo $$ > {cg}/cgroup.procs && exec "$0" "$@"', f"{BIN}/closewaitd", "run",
                                   "--config", SHIPPED_CONFIG, "--log", "stderr", "--state-file", f"{work}/state.json"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=open(f"{work}/daemon.log", "w"))
        leak = subprocess.Popen([f"{BIN}/closewaitd-workload", "--processes", "1", "--v4", "150", "--duration", str(int(SECONDS) + 60)],
                                stdout=subprocess.PIPE, text=True)
        leak_line = json.loads(leak.stdout.readline())
        leak_started = time.monotonic()
        holder = leak_line["holders"][0]
        cpu_start, cpu_at = None, None
        alert_after = None
        while time.monotonic() - started < SECONDS:
            time.sleep(0.5)
            if daemon.poll() is not None:
                break
            if cpu_start is None and any("READY=1" in m for _, m in notify.messages):
                cpu_start, cpu_at = cpu_seconds(daemon.pid), time.monotonic()
            if alert_after is None:
                log = open(f"{work}/daemon.log", errors="replace").read()
                if f"CLOSEWAIT_PID={holder} " in log and "MESSAGE_ID=e185260dfe7242159da48af8f29f2002" in log:
                    alert_after = time.monotonic() - leak_started
        alive = daemon.poll() is None
        cpu = (cpu_seconds(daemon.pid) - cpu_start) / (time.monotonic() - cpu_at) * 60 if alive and cpu_start is not None else None
        ready = next((t - started for t, m in notify.messages if "READY=1" in m), None)
        pings = [started] + [t for t, m in notify.messages if "WATCHDOG=1" in m] + ([time.monotonic()] if alive else [])
        gap = max(b - a for a, b in zip(pings, pings[1:])) if len(pings) > 1 else None
        # The daemon's own peak (VmHWM): the cgroup's figure also counts the kernel's
        # reclaimable /proc dentries the walk creates, which the kernel takes back at the limit.
        hwm = next((int(l.split()[1]) for l in open(f"/proc/{daemon.pid}/status") if l.startswith("VmHWM:")), 0) if alive else 0
        peak = hwm / 1024
        charged = int(open(f"{cg}/memory.max_usage_in_bytes").read()) / (1 << 20)
        oom = next((int(l.split()[1]) for l in open(f"{cg}/memory.oom_control") if l.startswith("oom_kill ")), 0)
        status = next((m for _, m in reversed(notify.messages) if m.startswith("STATUS=")), "")
        result = {
            "name": name, "description": description, "alive": alive, "ready_s": ready, "watchdog_gap_s": gap,
            "peak_mib": peak, "cgroup_peak_mib": charged, "oom_kills": oom, "cpu_s_per_min": cpu, "leak_alert_s": alert_after,
            "status": status[7:200],
        }
        ok = alive and oom == 0 and ready is not None and ready <= 15 and gap is not None and gap <= 30 and peak < 64 \
            and alert_after is not None and alert_after <= 30
        result["ok"] = ok
        print(f"redteam: {name}: {'OK' if ok else 'SHORT'} {json.dumps(result)}", flush=True)
        return result
    finally:
        for p in (daemon, leak):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        notify.stopping = True
        if attack.poll() is None:
            attack.stdin.close()
            try:
                attack.wait(timeout=30)
            except subprocess.TimeoutExpired:
                attack.kill()
                attack.wait()
        for pid in open(f"{cg}/cgroup.procs").read().split():
            os.kill(int(pid), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while open(f"{cg}/cgroup.procs").read().strip() and time.monotonic() < deadline:
            time.sleep(0.1)
        os.rmdir(cg)


def main():
    results = []
    for name, (description, argv) in ATTACKS.items():
        if ONLY and not any(name.startswith(o) for o in ONLY):
            continue
        results.append(run_one(name, description, argv))
    lines = ["| attack | READY | longest watchdog gap | peak RSS (cgroup charge) | CPU | 150-socket leak alerted after | |",
             "|---|---|---|---|---|---|---|"]
    def f(v, unit, digits=1):
        return "-" if v is None else f"{v:.{digits}f} {unit}"
    for r in results:
        lines.append(f"| {r['description']} | {f(r['ready_s'], 's')} | {f(r['watchdog_gap_s'], 's')} | {f(r['peak_mib'], 'MiB')} ({f(r['cgroup_peak_mib'], 'MiB', 0)}) "
                     f"| {f(r['cpu_s_per_min'], 's/min')} | {f(r['leak_alert_s'], 's')} | {'ok' if r['ok'] else 'SHORT'} |")
    print("\n".join(lines))
    if MARKDOWN:
        open(MARKDOWN, "w").write("\n".join(lines) + "\n")
    shutil.rmtree(HERE, ignore_errors=True)
    sys.exit(0 if all(r["ok"] for r in results) else 1)


main()
