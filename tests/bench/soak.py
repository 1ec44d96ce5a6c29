#!/usr/bin/env python3
"""soak.py — the gateway under moderate mixed load for a long time, with its memory and file
descriptors sampled: are they flat?

Starts Postfix's smtp-sink on a loopback port the OS picks (the backend), the mailgate binary in
front of it (its embedded default policy, created on first run in a temporary directory), and
client threads that keep a steady, moderate mixed load on it:
  * ordinary messages of 1 to 64 KB, one or several recipients;
  * relay attempts to outside domains (refused 554 by the access plugin);
  * transactions abandoned with RSET, and connections dropped in the middle of DATA;
  * unknown commands (answered 500 or 502), and a NOOP/VRFY here and there.
Every --sample seconds it records the gateway's resident memory (VmRSS), its peak (VmHWM), its
open file descriptors and the replies seen so far. At the end it prints the samples, then the
figures: memory and descriptors in the first and last quarter after warm-up (the first 10% of
the run, when allocator arenas and pools fill), their growth, and a verdict line each. The
gateway keeps idle backend connections for --backend-pool-idle-timeout seconds (2 here, 60 by
default): each I/O thread's pool holds as many as that thread last needed at once, so with the
default the descriptor count would creep up to the run's peak concurrency per thread, which
is not a leak; with 2 s it follows the load, and a leaked descriptor still shows.

It is a benchmark, not a test: the figures are for a person to read. With --check it exits 1
when a figure is past its bound (RSS growth over --max-rss-growth-kib, any descriptor growth
past --max-fd-growth, any unexpected reply, or the gateway exiting) — the ctest entry runs
it for 20 s with --check so the script does not rot. The issue's soak is the hour:
    python3 tests/bench/soak.py --duration 3600
Environment: MAILGATE_BIN (default build/gateway/mailgate), MAILGATE_PLUGIN_DIR.
"""

import argparse
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from mgtest.gateway import Gateway  # noqa: E402
from mgtest.policyctl import PolicyCtl  # noqa: E402
from mgtest.smtpclient import RawSmtp, message_data  # noqa: E402

LOCAL_DOMAIN = "example.test"  # what the embedded default accepts (access plugin, local domain)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_sink(port):
    """smtp-sink on 127.0.0.1:port; a big backlog; as nobody when run as root."""
    sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    argv = [sink]
    if os.geteuid() == 0:
        argv += ["-u", "nobody"]
    argv += [f"127.0.0.1:{port}", "1024"]
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return p
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise RuntimeError("smtp-sink did not start")


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])  # KiB
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.counts = {}
        self.unexpected = []

    def add(self, what, ok, detail=""):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1
            if not ok and len(self.unexpected) < 20:
                self.unexpected.append(f"{what}: {detail}")
            if not ok:
                self.counts["unexpected"] = self.counts.get("unexpected", 0) + 1


def expect(c, line, code, tally, what):
    r = c.cmd(line)
    if r.code != code:
        tally.add(what, False, f"{line!r} -> {r}")
        return False
    return True


def one_session(host, port, rng, tally):
    """One connection doing one or a few mixed things."""
    c = RawSmtp(host, port, timeout=30)
    try:
        if not expect(c, "EHLO soak.example", 250, tally, "ehlo"):
            return
        for _ in range(rng.randint(1, 4)):
            kind = rng.random()
            if kind < 0.65:
                rcpts = 1 if rng.random() < 0.8 else rng.randint(2, 5)
                size = rng.randint(1, 64) * 1024
                if not expect(c, "MAIL FROM:<soak@sender.example>", 250, tally, "message"):
                    return
                for i in range(rcpts):
                    if not expect(c, f"RCPT TO:<user{i}@{LOCAL_DOMAIN}>", 250, tally,
                                  "message"):
                        return
                if not expect(c, "DATA", 354, tally, "message"):
                    return
                body = ("x" * 76 + "\r\n") * (size // 78)
                r = c.data(message_data(f"Subject: soak\r\n\r\n{body}"))
                tally.add("message", r.code == 250, str(r))
            elif kind < 0.75:
                c.cmd("MAIL FROM:<soak@sender.example>")
                r = c.cmd("RCPT TO:<victim@outside.example>")
                tally.add("relay attempt", r.code == 554, str(r))
                c.cmd("RSET")
            elif kind < 0.85:
                c.cmd("MAIL FROM:<soak@sender.example>")
                c.cmd(f"RCPT TO:<user@{LOCAL_DOMAIN}>")
                r = c.cmd("RSET")
                tally.add("rset", r.code == 250, str(r))
            elif kind < 0.92:
                r = c.cmd("FROB the gateway")
                tally.add("bad command", r.code in (500, 502), str(r))
                r = c.cmd("NOOP")
                tally.add("noop", r.code == 250, str(r))
            else:
                # Dropped mid-DATA: the gateway must forget the transaction.
                c.cmd("MAIL FROM:<soak@sender.example>")
                c.cmd(f"RCPT TO:<user@{LOCAL_DOMAIN}>")
                if c.cmd("DATA").code == 354:
                    c.send(b"Subject: cut\r\n\r\n" + b"y" * rng.randint(10, 20000))
                tally.add("dropped in data", True)
                return
        c.cmd("QUIT")
    except (OSError, AssertionError) as e:
        tally.add("session", False, repr(e))
    finally:
        c.close()


def client_loop(host, port, seed, stop, rate_per_client, tally):
    rng = random.Random(seed)
    interval = 1.0 / rate_per_client
    next_at = time.monotonic()
    while not stop.is_set():
        one_session(host, port, rng, tally)
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            next_at = time.monotonic()  # behind: do not burst to catch up


def quarter_median(samples, key, which):
    n = len(samples)
    q = max(1, n // 4)
    part = samples[:q] if which == "first" else samples[-q:]
    return statistics.median(s[key] for s in part)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=3600, help="seconds (default 3600)")
    ap.add_argument("--clients", type=int, default=8, help="client threads (default 8)")
    ap.add_argument("--rate", type=float, default=40,
                    help="sessions per second across all clients (default 40)")
    ap.add_argument("--sample", type=float, default=0, help="seconds between samples "
                    "(default duration/60, at least 1)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a figure is past a bound")
    ap.add_argument("--max-rss-growth-kib", type=int, default=8192)
    ap.add_argument("--max-fd-growth", type=int, default=4)
    ap.add_argument("--backend-pool-idle-timeout", type=float, default=2,
                    help="the gateway's --backend_pool_idle_timeout (default 2 s)")
    args = ap.parse_args()
    # Stopped with SIGTERM (or Ctrl-C): unwind, so the finally below stops the gateway and sink.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sample_every = args.sample or max(1.0, args.duration / 60)

    work = tempfile.mkdtemp(prefix="mailgate-soak-")
    sink = gw = None
    try:
        sink_port = free_port()
        sink = start_sink(sink_port)
        # The access plugin and one local domain: relay attempts are refused, local mail passes.
        ctl = PolicyCtl(os.path.join(work, "policy.db"))
        ctl.init()
        ctl("policy", "domain", "add", LOCAL_DOMAIN)
        ctl("policy", "plugin", "add", "--name", "access", "--path", "access.so")
        gw = Gateway(backend_port=sink_port, log_path=os.path.join(work, "mailgate.log"),
                     policy_db=ctl.db,
                     # smtp-sink offers XCLIENT but refuses it on reused connections.
                     flags=["--max_connections=2000", "--max_connections_per_ip=1000",
                            "--xclient=false",
                            f"--backend_pool_idle_timeout={args.backend_pool_idle_timeout:g}"])
        gw.start()
        stop = threading.Event()
        tally = Tally()
        threads = [threading.Thread(target=client_loop, daemon=True,
                                    args=(gw.host, gw.port, 1000 + i, stop,
                                          args.rate / args.clients, tally))
                   for i in range(args.clients)]
        start = time.monotonic()
        for t in threads:
            t.start()
        samples = []
        print(f"soak: {args.duration:.0f} s, {args.clients} clients, {args.rate:g} sessions/s, "
              f"sample every {sample_every:g} s")
        print(f"{'t (s)':>8} {'RSS KiB':>9} {'HWM KiB':>9} {'fds':>5} {'messages':>9} "
              f"{'unexpected':>10}")
        while time.monotonic() - start < args.duration:
            time.sleep(min(sample_every, max(0.0, args.duration - (time.monotonic() - start))))
            if not gw.running():
                print("soak: the gateway exited")
                return 1
            with gw._cond:  # the log is in the file; do not let the harness hold an hour of it
                del gw.lines[:]
            st = proc_status(gw.pid)
            st["t"] = time.monotonic() - start
            with tally.lock:
                st["messages"] = tally.counts.get("message", 0)
                st["unexpected"] = tally.counts.get("unexpected", 0)
            samples.append(st)
            print(f"{st['t']:8.0f} {st['VmRSS']:9d} {st['VmHWM']:9d} {st['fds']:5d} "
                  f"{st['messages']:9d} {st['unexpected']:10d}", flush=True)
        stop.set()
        for t in threads:
            t.join(60)
        time.sleep(1)  # let the last sessions close
        idle = proc_status(gw.pid)

        steady = samples[max(1, len(samples) // 10):] or samples
        rss_first = quarter_median(steady, "VmRSS", "first")
        rss_last = quarter_median(steady, "VmRSS", "last")
        fd_first = quarter_median(steady, "fds", "first")
        fd_last = quarter_median(steady, "fds", "last")
        elapsed = samples[-1]["t"] if samples else 0
        print()
        print("counts: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.counts.items())))
        for u in tally.unexpected:
            print(f"unexpected: {u}")
        print(f"throughput: {tally.counts.get('message', 0) / max(elapsed, 1e-9):.1f} "
              f"messages/s over {elapsed:.0f} s")
        rss_growth = rss_last - rss_first
        fd_growth = fd_last - fd_first
        print(f"RSS: {rss_first:.0f} KiB (first quarter after warm-up) -> {rss_last:.0f} KiB "
              f"(last quarter), growth {rss_growth:+.0f} KiB "
              f"({100.0 * rss_growth / max(rss_first, 1):+.1f}%), peak {idle['VmHWM']} KiB, "
              f"idle after the load {idle['VmRSS']} KiB")
        print(f"file descriptors: {fd_first:.0f} -> {fd_last:.0f} under load, "
              f"{idle['fds']} idle after the load")
        rss_ok = rss_growth <= args.max_rss_growth_kib
        fd_ok = fd_growth <= args.max_fd_growth
        print(f"verdict: memory {'flat' if rss_ok else 'GROWING'}, "
              f"descriptors {'flat' if fd_ok else 'GROWING'}, "
              f"{tally.counts.get('unexpected', 0)} unexpected replies")
        if args.check and (not rss_ok or not fd_ok or tally.counts.get("unexpected", 0)
                           or tally.counts.get("message", 0) == 0):
            return 1
        return 0
    finally:
        if gw is not None:
            gw.stop()
        if sink is not None:
            sink.send_signal(signal.SIGTERM)
            try:
                sink.wait(5)
            except subprocess.TimeoutExpired:
                sink.kill()
                sink.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
