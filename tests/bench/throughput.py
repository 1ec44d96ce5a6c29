#!/usr/bin/env python3
"""tests/bench/throughput.py — how fast mailgate relays mail, against the ceiling and Haraka.

Throughput mode (the default). In one run, on loopback, Postfix's smtp-source sends messages
of --size payload octets (4 KB) at each concurrency of --concurrency (1, 20, 100 sessions):
  1. straight into Postfix's smtp-sink (the ceiling: nothing is faster than that here);
  2. through mailgate with no plugins, relaying to the same sink;
  3. through mailgate with the full default chain (access, spf, dkim, dmarc, ratelimit,
     spamscore; a real unbound on loopback answers the SPF and DMARC lookups; shared state in
     memory);
  4. through Haraka (npm package Haraka, installed into --cache) forwarding to the same sink
     with queue/smtp_forward, when npm can install it; else "Haraka: not installed".
The targets take turns at each concurrency (so the machine's other load hits them alike),
--repeat times (2), and the fastest run of each is kept; a target too slow to take --messages
within --max-run-seconds gets fewer (a 100-message pilot tells). For each: messages/s, the ratio to the ceiling and to Haraka at the same concurrency, p50/p99
transaction latency (a probe client timing MAIL FROM .. the end-of-data reply while the load
runs; see mgbench/load.py), the server's CPU per message (utime+stime from /proc/PID/stat over
the run ÷ messages) and its peak RSS (VmHWM). The issue's targets are checked and printed;
they never change the exit status, which is non-zero only when mail was lost or refused.

Idle mode (--mode idle, or --mode all for both): opens --idle-sessions connections (10,000) to a
gateway with no plugins, reads the greeting on each, and prints the gateway's RSS growth per
session.

The client addresses: run as root, the script moves itself into a network namespace of its
own (as the integration tests do) where lo also holds 192.0.2.10, and the servers listen there,
so clients come from a non-loopback address and SPF/DMARC really evaluate (libspf2 passes
loopback clients without a lookup). Not root: everything runs on 127.0.0.1 instead (noted).

  tests/bench/throughput.py                       # builds build-release (Release) and runs
  tests/bench/throughput.py --mailgate build-release/gateway/mailgate \\
      --mailgatectl build-release/tools/mailgatectl --plugin-dir build-release/plugins
  tests/bench/throughput.py --mode idle --idle-sessions 10000
  tests/bench/throughput.py --smoke               # a few hundred messages, no Haraka (ctest)

Figures and how to read them: docs/performance.md.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "integration"))

from mgbench import idle, load, procstat  # noqa: E402
from mgbench.servers import Gateway, Haraka, SmtpSink, install_haraka  # noqa: E402

DOMAIN = "bench.test"
BENCH_IP = "192.0.2.10"       # the servers' and clients' address in the private namespace
SENDER = f"sender@{DOMAIN}"
RECIPIENT = f"user@{DOMAIN}"
HELO = f"client.{DOMAIN}"
HARAKA_VERSION = "3.1.7"
FULL_CHAIN = ["access", "spf", "dkim", "dmarc", "ratelimit", "spamscore"]


def zones():
    """The test zone: SPF for the sender domain and the HELO name, a DMARC policy."""
    return "\n".join([
        f'local-zone: "{DOMAIN}." static',
        f'local-data: "{DOMAIN}. 3600 IN SOA ns.{DOMAIN}. hostmaster.{DOMAIN}. 1 3600 600 86400 60"',
        f'local-data: "{HELO}. 300 IN A {BENCH_IP}"',
        f"local-data: '{DOMAIN}. 300 IN TXT \"v=spf1 ip4:192.0.2.0/24 ip4:127.0.0.0/8 -all\"'",
        f"local-data: '{HELO}. 300 IN TXT \"v=spf1 a -all\"'",
        f"local-data: '_dmarc.{DOMAIN}. 300 IN TXT \"v=DMARC1; p=reject\"'",
    ]) + "\n"


# ------------------------------------------------------------------------------- set-up

def build_release(jobs):
    """Builds mailgate, mailgatectl and the plugins in Release (-O2 -DNDEBUG) in build-release;
    returns (mailgate, mailgatectl, plugin dir)."""
    build = os.path.join(SOURCE_DIR, "build-release")
    configure = ["cmake", "-S", SOURCE_DIR, "-B", build, "-G", "Ninja",
                 "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_CXX_FLAGS_RELEASE=-O2 -DNDEBUG",
                 "-DCMAKE_C_FLAGS_RELEASE=-O2 -DNDEBUG", f"-DPython3_EXECUTABLE={sys.executable}"]
    if shutil.which("ccache"):
        configure += ["-DCMAKE_C_COMPILER_LAUNCHER=ccache", "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"]
    print(f"building Release into {build} ...", flush=True)
    subprocess.run(configure, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["nice", "-n", "10", "cmake", "--build", build, "-j", str(jobs), "--target",
                    "mailgate", "mailgatectl", "mailgate_plugins"], check=True)
    return (os.path.join(build, "gateway", "mailgate"), os.path.join(build, "tools", "mailgatectl"),
            os.path.join(build, "plugins"))


def enter_private_network():
    """As root: a network namespace of our own with BENCH_IP on lo. Returns the address the
    servers listen on and a note."""
    if os.geteuid() != 0:
        return "127.0.0.1", "not root: clients and servers on 127.0.0.1 (SPF passes loopback)"
    from mgtest.netns import private_network
    why = private_network([BENCH_IP])
    if why is not None:
        return "127.0.0.1", f"no private network namespace ({why}): everything on 127.0.0.1"
    return BENCH_IP, f"private network namespace; clients connect from {BENCH_IP}"


def ctl(mailgatectl, db, *args):
    p = subprocess.run([mailgatectl, "--db", db, *args], capture_output=True, text=True,
                       timeout=60, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"mailgatectl --db {db} {' '.join(args)}: exit {p.returncode}\n"
                           f"{p.stdout}{p.stderr}")


def make_policies(mailgatectl, workdir):
    """Two policy databases: no plugins, and the full default chain."""
    plain = os.path.join(workdir, "plain.db")
    ctl(mailgatectl, plain, "init")
    full = os.path.join(workdir, "full.db")
    ctl(mailgatectl, full, "init")
    ctl(mailgatectl, full, "policy", "domain", "add", DOMAIN)
    settings = {"spf": {"receiver": "gateway.bench.test"}}
    for name in FULL_CHAIN:
        ctl(mailgatectl, full, "policy", "plugin", "add", "--name", name, "--path", f"{name}.so",
            "--settings", json.dumps(settings.get(name, {})))
    # A limit that is counted on every message but never reached by the benchmark.
    ctl(mailgatectl, full, "policy", "ratelimit", "add", "bench-per-ip", "--what", "messages",
        "--key", "client_ip", "--rate", "1000000", "--period", "60")
    return plain, full


# ------------------------------------------------------------------------------- measuring

class Row:
    def __init__(self, target, sessions, messages, seconds, cpu, probe):
        self.target, self.sessions, self.messages, self.seconds = target, sessions, messages, seconds
        self.rate = messages / seconds if seconds > 0 else 0.0
        self.cpu_us = cpu / (messages + probe.messages) * 1e6 if cpu is not None else None
        self.p50 = load.percentile(probe.samples, 50) * 1e3 if probe.samples else None
        self.p99 = load.percentile(probe.samples, 99) * 1e3 if probe.samples else None
        self.samples = len(probe.samples)
        self.errors = probe.errors


class Target:
    """One thing smtp-source sends to: its name, where it listens, the process whose CPU and
    memory count, how many messages it was sent."""

    def __init__(self, key, name, host, port, pid):
        self.key, self.name, self.host, self.port, self.pid = key, name, host, port, pid
        self.sent = 0


def warm_up(t, args, failures):
    code = load.smtp_source(t.host, t.port, 20, args.warmup, args.size, SENDER, RECIPIENT, HELO,
                            args.run_timeout)[1]
    if code != 0:
        failures.append(f"{t.name}: warm-up smtp-source exit {code}")
    t.sent += args.warmup


def run_size(t, sessions, args, failures):
    """How many messages a run at `sessions` sends: --messages, or fewer for a target so slow
    that they would take longer than --max-run-seconds (a pilot of 100 messages tells)."""
    pilot = min(100, args.messages)
    seconds, code, _ = load.smtp_source(t.host, t.port, sessions, pilot, args.size, SENDER,
                                        RECIPIENT, HELO, args.run_timeout)
    t.sent += pilot
    if code != 0:
        failures.append(f"{t.name}: pilot run at {sessions} sessions: smtp-source exit {code}")
    affordable = int(pilot / max(seconds, 1e-6) * args.max_run_seconds)
    return max(pilot, min(args.messages, affordable))


def run_once(t, sessions, messages, args, failures):
    """One smtp-source run at `sessions` with the latency probe alongside; a Row."""
    probe = load.LatencyProbe(t.host, t.port, SENDER, RECIPIENT, args.size, args.probe_interval,
                              HELO).start_and_wait()
    cpu0 = procstat.cpu_seconds(t.pid)
    seconds, code, out = load.smtp_source(t.host, t.port, sessions, messages, args.size,
                                          SENDER, RECIPIENT, HELO, args.run_timeout)
    cpu1 = procstat.cpu_seconds(t.pid)
    probe.stop()
    if code != 0:
        failures.append(f"{t.name} at {sessions} sessions: smtp-source exit {code}: "
                        f"{out.strip()[-500:]}")
    failures.extend(f"{t.name} at {sessions} sessions: {e}" for e in probe.errors)
    t.sent += messages + probe.messages
    row = Row(t.name, sessions, messages, seconds, cpu1 - cpu0, probe)
    print(f"  {t.name:<22} {sessions:>4} sessions  {messages:>6} msgs  {row.rate:8.0f} msg/s"
          f"  p50 {fmt(row.p50, '.2f')} ms  p99 {fmt(row.p99, '.2f')} ms"
          f"  cpu {fmt(row.cpu_us, '.0f')} us/msg", flush=True)
    return row


def measure(targets, args, failures):
    """Every target at each concurrency, the targets taking turns (so a change in the machine's
    load hits them alike), --repeat times; the fastest run of each is kept."""
    for t in targets:
        warm_up(t, args, failures)
    rows = {t.key: [] for t in targets}
    for sessions in args.concurrency:
        best = {}
        size = {t.key: run_size(t, sessions, args, failures) for t in targets}
        for _ in range(args.repeat):
            for t in targets:
                row = run_once(t, sessions, size[t.key], args, failures)
                if t.key not in best or row.rate > best[t.key].rate:
                    best[t.key] = row
        for t in targets:
            rows[t.key].append(best[t.key])
    return rows


def fmt(value, spec, missing="-"):
    return missing if value is None else format(value, spec)


def throughput(args, host, sink, workdir, mailgate, mailgatectl, plugin_dir, failures):
    from dnstest import UnboundServer  # the integration tests' unbound harness
    plain_db, full_db = make_policies(mailgatectl, workdir)
    common = ["--max_connections=4000", "--max_connections_per_ip=4000", "--log_level=info"]
    started = []   # processes to stop, last first
    targets = [Target("direct", "smtp-sink (direct)", sink.host, sink.port, sink.pid)]
    gateways = {}
    try:
        dns = UnboundServer(zones()).start()
        started.append(dns)
        for key, name, db, flags in (
                ("plain", "mailgate (no plugins)", plain_db, common),
                ("full", "mailgate (full chain)", full_db,
                 common + [f"--dns_servers={dns.forwarder}"])):
            gw = Gateway(mailgate, workdir, key, f"{sink.host}:{sink.port}", db, plugin_dir, host,
                         flags)
            started.append(gw)
            gateways[key] = gw
            targets.append(Target(key, name, host, gw.port, gw.pid))
        want = f"{len(FULL_CHAIN)} plugin instances"
        deadline = time.monotonic() + 20
        while want not in gateways["full"].log() and time.monotonic() < deadline:
            time.sleep(0.1)
        if want not in gateways["full"].log():
            raise RuntimeError(f"the full chain did not load ({want}); log "
                               f"{gateways['full'].log_path}:\n{gateways['full'].log()[-3000:]}")
        harakabin = None if args.no_haraka else install_haraka(args.cache, HARAKA_VERSION)
        if harakabin:
            hk = Haraka(harakabin, workdir, host, sink, DOMAIN)
            started.append(hk)
            targets.append(Target("haraka", "Haraka", host, hk.port, hk.pid))
        else:
            print("Haraka: not installed" + (" (--no-haraka)" if args.no_haraka else ""))
        for t in targets:
            print(f"{t.name}: {t.host}:{t.port}" + ("" if t.key == "direct" else " -> sink"))
        rows = measure(targets, args, failures)
        results = {t.key: (rows[t.key], None if t.key == "direct" else
                           procstat.peak_rss_kib(t.pid)) for t in targets}
    finally:
        for proc in reversed(started):
            proc.stop()
    for t in targets:
        if t.key in gateways:
            accepted = gateways[t.key].count(r"status=accepted")
            if accepted != t.sent:
                failures.append(f"{t.name}: {t.sent} messages sent, {accepted} logged accepted "
                                f"(log {gateways[t.key].log_path})")
    report(results, args)


def report(results, args):
    ceiling = {r.sessions: r.rate for r in results["direct"][0]}
    haraka = {r.sessions: r.rate for r in results.get("haraka", ([], None))[0]}
    print()
    print(f"{args.size}-octet messages, up to {args.messages} per run (fewer for a target that "
          f"would take over {args.max_run_seconds:g} s), fastest of {args.repeat} runs; latency "
          f"from a probe every {args.probe_interval:g} s")
    print(f"{'target':<22} {'sess':>4} {'msg/s':>8} {'/ceiling':>8} {'/Haraka':>8} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'CPU us/msg':>10}")
    for key in ("direct", "plain", "full", "haraka"):
        if key not in results:
            continue
        for r in results[key][0]:
            h = haraka.get(r.sessions)
            print(f"{r.target:<22} {r.sessions:>4} {r.rate:8.0f} "
                  f"{r.rate / ceiling[r.sessions]:8.2f} "
                  f"{fmt(r.rate / h if h else None, '8.2f', '       -')} "
                  f"{fmt(r.p50, '7.2f', '      -')} {fmt(r.p99, '7.2f', '      -')} "
                  f"{fmt(r.cpu_us, '10.0f', '         -')}")
    for key, label in (("plain", "mailgate (no plugins)"), ("full", "mailgate (full chain)"),
                       ("haraka", "Haraka")):
        if key in results and results[key][1] is not None:
            print(f"peak RSS {label}: {results[key][1] / 1024:.1f} MiB")
    if "haraka" not in results:
        print("Haraka: not installed (no ratios to Haraka)")

    print("\ntargets (issue 9):")

    def check(ok, text):
        print(f"  [{'met' if ok else 'NOT met'}] {text}")

    for r in results["plain"][0]:
        if r.sessions in (1, 20):
            ratio = r.rate / ceiling[r.sessions]
            check(ratio >= 0.5, f"no plugins, {r.sessions} sessions: {ratio:.2f} of the ceiling "
                                f"(>= 0.5)")
    for r in results["plain"][0]:
        check(r.cpu_us <= 100, f"no plugins, {r.sessions} sessions: {r.cpu_us:.0f} us of gateway "
                               f"CPU per message (<= 100)")
    for r in results["full"][0]:
        ratio = r.rate / ceiling[r.sessions]
        check(ratio >= 0.3, f"full chain, {r.sessions} sessions: {ratio:.2f} of the ceiling "
                            f"(>= 0.3)")
        if r.sessions in haraka:
            x = r.rate / haraka[r.sessions]
            check(x >= 10, f"full chain, {r.sessions} sessions: {x:.1f}x Haraka (>= 10x)")


def idle_sessions(args, host, sink, workdir, mailgate, mailgatectl, plugin_dir, failures):
    n = args.idle_sessions
    db = os.path.join(workdir, "idle.db")
    ctl(mailgatectl, db, "init")
    gw = Gateway(mailgate, workdir, "idle", f"{sink.host}:{sink.port}", db, plugin_dir, host,
                 [f"--max_connections={n + 100}", f"--max_connections_per_ip={n + 100}",
                  "--client_timeout=600"])
    socks = []
    try:
        # A few transactions first, so what every session shares (threads, backend pool,
        # allocator arenas) exists before the baseline is read.
        code = load.smtp_source(host, gw.port, 4, 100, args.size, SENDER, RECIPIENT, HELO,
                                args.run_timeout)[1]
        if code != 0:
            failures.append(f"idle mode warm-up: smtp-source exit {code}")
        time.sleep(0.5)
        before = procstat.rss_kib(gw.pid)
        t0 = time.monotonic()
        socks = idle.open_idle(host, gw.port, n)
        opened = time.monotonic() - t0
        time.sleep(1.0)
        after = procstat.rss_kib(gw.pid)
        per = (after - before) * 1024 / n
        print(f"\nidle sessions: {n} open (greeted) in {opened:.1f} s; gateway RSS "
              f"{before / 1024:.1f} MiB -> {after / 1024:.1f} MiB: {per:.0f} bytes "
              f"({per / 1024:.2f} KiB) per session; peak {procstat.peak_rss_kib(gw.pid) / 1024:.1f} "
              f"MiB")
        print(f"  [{'met' if per <= 10 * 1024 else 'NOT met'}] <= 10 KiB of RSS per idle session")
    finally:
        idle.close_all(socks)
        gw.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("throughput", "idle", "all"), default="throughput")
    ap.add_argument("--mailgate", help="the gateway binary (default: build build-release)")
    ap.add_argument("--mailgatectl", help="mailgatectl (default: beside --mailgate's build)")
    ap.add_argument("--plugin-dir", help="built plugins (default: beside --mailgate's build)")
    ap.add_argument("--messages", type=int, default=5000, help="messages per run (5000)")
    ap.add_argument("--warmup", type=int, default=300, help="messages before measuring (300)")
    ap.add_argument("--max-run-seconds", type=float, default=10,
                    help="fewer messages for a target too slow to take --messages in this "
                         "time (10)")
    ap.add_argument("--repeat", type=int, default=2,
                    help="runs per target and concurrency, the fastest kept (2)")
    ap.add_argument("--concurrency", default="1,20,100", help="sessions per run (1,20,100)")
    ap.add_argument("--size", type=int, default=4096, help="payload octets per message (4096)")
    ap.add_argument("--probe-interval", type=float, default=0.01,
                    help="seconds between the latency probe's transactions (0.01)")
    ap.add_argument("--idle-sessions", type=int, default=10000)
    ap.add_argument("--no-haraka", action="store_true", help="skip Haraka")
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/mailgate-bench/haraka"),
                    help="where npm installs Haraka")
    ap.add_argument("--run-timeout", type=float, default=600)
    ap.add_argument("--jobs", type=int, default=2, help="build jobs (2)")
    ap.add_argument("--smoke", action="store_true",
                    help="a few hundred messages at 1 and 20 sessions, 300 idle sessions, "
                         "no Haraka: checks the script works, says nothing about speed")
    args = ap.parse_args()
    if args.smoke:
        args.messages, args.warmup, args.concurrency, args.repeat = 200, 20, "1,20", 1
        args.no_haraka, args.idle_sessions = True, min(args.idle_sessions, 300)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]

    if args.mailgate:
        mailgate = os.path.abspath(args.mailgate)
        build = os.path.dirname(os.path.dirname(mailgate))
        mailgatectl = args.mailgatectl or os.path.join(build, "tools", "mailgatectl")
        plugin_dir = args.plugin_dir or os.path.join(build, "plugins")
    else:
        mailgate, mailgatectl, plugin_dir = build_release(args.jobs)
    for path in (mailgate, mailgatectl):
        if not os.access(path, os.X_OK):
            sys.exit(f"not an executable: {path}")
    for tool in ("smtp-source", "smtp-sink", "unbound"):
        if not (shutil.which(tool) or os.access(f"/usr/sbin/{tool}", os.X_OK)):
            print(f"skipped: {tool} not found (Debian packages postfix, unbound)")
            return 77

    idle.raise_fd_limit(max(4096, args.idle_sessions + 1024))
    host, note = enter_private_network()
    print(f"mailgate: {mailgate}\nnetwork: {note}\n", flush=True)
    workdir = tempfile.mkdtemp(prefix="mailgate-bench-")
    os.chmod(workdir, 0o755)
    failures = []
    sink = SmtpSink(workdir, host)
    try:
        if args.mode in ("throughput", "all"):
            throughput(args, host, sink, workdir, mailgate, mailgatectl, plugin_dir, failures)
        if args.mode in ("idle", "all"):
            idle_sessions(args, host, sink, workdir, mailgate, mailgatectl, plugin_dir, failures)
    finally:
        sink.stop()
    if failures:
        print(f"\nFAILED (logs kept in {workdir}):\n  " + "\n  ".join(failures[:30]))
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
