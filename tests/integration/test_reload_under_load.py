"""SIGHUP and policy reloads under load, through the real gateway in front of a real Postfix.

Owns the issue-10 fault "SIGHUP and policy reload under load": while several clients keep
connections open and send message after message, and another client opens a new connection for
every message, a reloader rewrites the flag file and sends SIGHUP, and edits the policy database
with mailgatectl, many times a second. Asserted:
  * no connection drops and no message is refused or tempfailed (every edit is unrelated to the
    traffic, so any non-250 is damage done by a reload);
  * every message answered 250 is in the Postfix mailbox exactly once;
  * the reloads really happened and took effect: the gateway logs each flag reload and policy
    reload, and new connections greet with the host name of the flag file they started under
    (both names are seen);
  * afterwards (once idle backend connections have timed out of the pool) the gateway holds no
    more file descriptors than before the load: nothing is kept per reload (policy database,
    flag file) or per session.
"""

import os
import re
import signal
import threading
import time
import unittest
import uuid

from mgtest import base, util
from mgtest.gateway import Gateway
from mgtest.policyctl import PolicyCtl
from mgtest.smtpclient import RawSmtp, message_data
from mgtest.traffic import Sender

LOOPING_CLIENTS = 4
LOAD_SECONDS = 6.0
RELOAD_PERIOD = 0.1  # seconds between two reloads (alternately SIGHUP and a policy edit)
HOSTNAMES = ("hup-a.mailgate.test", "hup-b.mailgate.test")


class Churn(threading.Thread):
    """A new connection per message. Records (greeting host, final reply code) per message."""

    def __init__(self, gw, tag):
        super().__init__(daemon=True, name="churn")
        self.gw = gw
        self.tag = tag
        self.results = []
        self.error = None
        self._halt = threading.Event()

    def run(self):
        i = 0
        try:
            while not self._halt.is_set():
                i += 1
                subject = f"{self.tag}-{i}"
                c = RawSmtp(self.gw.host, self.gw.port, source_address=("127.0.0.3", 0))
                try:
                    host = c.greeting.text.split()[0]
                    for line, want in ((f"EHLO churn.example", 250),
                                       ("MAIL FROM:<churn@load.example>", 250),
                                       (f"RCPT TO:<{base.USER}>", 250), ("DATA", 354)):
                        r = c.cmd(line)
                        if r.code != want:
                            raise AssertionError(f"{line}: {r}")
                    final = c.data(message_data(
                        f"From: <churn@load.example>\r\nSubject: {subject}\r\n\r\nx\r\n")).code
                    self.results.append((host, final, subject))
                    c.cmd("QUIT")
                finally:
                    c.close()
        except Exception as e:  # noqa: BLE001 — reported by the test
            self.error = e

    def stop(self):
        self._halt.set()
        self.join(20)


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class ReloadUnderLoadTest(base.PostfixCase):

    def write_flags(self, path, hostname, db):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write("--listen=127.0.0.1:0\n"
                    f"--backend=127.0.0.1:{self.postfix.port}\n"
                    f"--hostname={hostname}\n"
                    f"--policy_db={db}\n"
                    "--policy_poll_ms=50\n"
                    "--max_errors=100000\n"
                    # Idle backend connections close after a second, so the descriptor count
                    # can come back to where it started.
                    "--backend_pool_idle_timeout=1\n"
                    "--dns_servers=none\n"
                    "--log_level=info\n")
        os.replace(tmp, path)  # a reload never reads a half-written file

    def test_sighup_and_policy_edits_under_load_lose_nothing(self):
        d = util.make_tempdir("mailgate-reload-load-")
        self.addCleanup(util.remove_tree, d)
        ctl = PolicyCtl(os.path.join(d, "policy.db"))
        ctl.init()
        ctl("policy", "domain", "add", base.DOMAIN)
        ctl("policy", "plugin", "add", "--name", "access", "--path", "access.so",
            "--timeout-ms", "2000")
        flags = os.path.join(d, "mailgate.flags")
        self.write_flags(flags, HOSTNAMES[0], ctl.db)
        gw = Gateway(listen=None, hostname=None, policy_db=ctl.db, flags=[f"--flagfile={flags}"])
        self.addCleanup(self._dump_log_on_failure, gw, self._problem_count())
        gw.start()
        self.addCleanup(gw.stop)
        gw.wait_for_log(r"plugin chains ready")
        fds_before = fd_count(gw.pid)

        tag = f"load-{uuid.uuid4().hex[:8]}"
        looping = [Sender(self, gw, f"s{i}@load.example", f"{tag}-s{i}", pause=0)
                   for i in range(LOOPING_CLIENTS)]
        churn = Churn(gw, f"{tag}-c")
        for t in (*looping, churn):
            t.start()
            self.addCleanup(t.stop)

        hups = edits = 0
        rule_ids = []
        end = time.monotonic() + LOAD_SECONDS
        while time.monotonic() < end:
            if (hups + edits) % 2 == 0:
                hups += 1
                self.write_flags(flags, HOSTNAMES[hups % 2], ctl.db)
                gw.signal(signal.SIGHUP)
            else:
                edits += 1
                if rule_ids and edits % 3 == 0:
                    ctl("policy", "access", "remove", rule_ids.pop(0))
                else:
                    out = ctl("policy", "access", "add", "--stage", "sender_domain", "--pattern",
                              f"noise-{edits}.example", "--action", "deny", "--code", "550",
                              "--enhanced", "5.7.1", "--text", "noise")
                    rule_ids.append(out.split()[3].rstrip(":"))
            time.sleep(RELOAD_PERIOD)
        # Let the last reloads land while traffic still flows.
        time.sleep(0.5)
        for t in (*looping, churn):
            t.stop()

        for s in looping:
            self.assertIsNone(s.error, f"{s.name}: {s.error!r}")
            self.assertEqual(s.quit_reply.code, 221, f"{s.name} stayed connected to the end")
            finals = [e for e in s.snapshot() if e[1] != 250 or e[2] != 250]
            self.assertEqual(finals, [], f"{s.name}: refusals during reloads")
        self.assertIsNone(churn.error, f"churn: {churn.error!r}")
        self.assertEqual([r for r in churn.results if r[1] != 250], [])
        greeted = {r[0] for r in churn.results}
        self.assertEqual(greeted, set(HOSTNAMES),
                         "new connections see the host name of each reloaded flag file")

        # Every accepted message delivered exactly once.
        accepted = [e[3] for s in looping for e in s.snapshot() if e[2] == 250]
        accepted += [r[2] for r in churn.results]
        self.assertGreater(len(accepted), 50, "enough traffic to mean something")

        def subjects():
            out = []
            for m in self.postfix.messages(base.USER):
                found = re.search(rb"^Subject: (\S+)", m, re.M)
                if found:
                    out.append(found.group(1).decode())
            return out
        util.wait_until(lambda: set(accepted) <= set(subjects()), 60,
                        what=f"delivery of {len(accepted)} accepted messages")
        delivered = subjects()
        dupes = [s for s in accepted if delivered.count(s) != 1]
        self.assertEqual(dupes, [], "each accepted message delivered exactly once")

        # The reloads happened: one configuration reload per SIGHUP (signals may coalesce
        # while one is being handled, so at least half), and policy reloads for the edits.
        log = gw.log_text()
        self.assertNotIn("reload failed", log)
        self.assertGreaterEqual(log.count("reloaded configuration"), hups // 2)
        self.assertGreaterEqual(len(re.findall(r"policy: reloaded", log)), edits // 2)
        print(f"\nreload under load: {len(accepted)} messages accepted and delivered once, "
              f"{hups} SIGHUPs, {edits} policy edits, "
              f"{log.count('reloaded configuration')} flag reloads logged")

        # No descriptor kept per reload or per session once the clients are gone.
        util.wait_until(lambda: fd_count(gw.pid) <= fds_before + 2, 10,
                        what=f"fds back to {fds_before} (now {fd_count(gw.pid)})")


if __name__ == "__main__":
    unittest.main()
