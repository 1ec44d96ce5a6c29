"""Connection limits (total and per client address, 421 4.7.0 before any SMTP), the grace
period forcing sessions closed, and SIGHUP re-reading --flagfile for new sessions."""

import os
import signal
import time

from mgtest import util
from mgtest.base import PostfixCase, USER
from mgtest.gateway import Gateway
from mgtest.smtpclient import RawSmtp


class LimitsTest(PostfixCase):

    def test_per_client_limit_421_others_unaffected(self):
        gw = self.start_gateway(flags=["--max_connections_per_ip=2", "--max_connections=100"])
        a = self.connect(gw, source_address=("127.0.0.2", 0))
        b = self.connect(gw, source_address=("127.0.0.2", 0))
        self.assertEqual((a.greeting.code, b.greeting.code), (220, 220))
        third = self.connect(gw, source_address=("127.0.0.2", 0))
        self.assertEqual((third.greeting.code, third.greeting.enhanced), (421, "4.7.0"),
                         third.greeting)
        third.wait_closed()
        # Another address is served, and the refused one still works on its open sessions.
        other = self.connect(gw, source_address=("127.0.0.3", 0))
        self.assertEqual(other.greeting.code, 220)
        self.assertEqual(a.cmd("EHLO client.example.org").code, 250)
        # A slot freed is a slot available again.
        b.quit()
        b.close()
        def fourth_ok():
            c = RawSmtp(gw.host, gw.port, source_address=("127.0.0.2", 0))
            code = c.greeting.code
            c.close()
            return code == 220 or None
        util.wait_until(fourth_ok, 5, interval=0.1, what="a freed per-client slot")

    def test_total_limit_421(self):
        gw = self.start_gateway(flags=["--max_connections=3", "--max_connections_per_ip=10"])
        held = [self.connect(gw, source_address=(f"127.0.0.{i}", 0)) for i in (2, 3, 4)]
        self.assertEqual([c.greeting.code for c in held], [220, 220, 220])
        over = self.connect(gw, source_address=("127.0.0.5", 0))
        self.assertEqual((over.greeting.code, over.greeting.enhanced), (421, "4.7.0"))
        self.assertIn("Too many connections", over.greeting.text)
        util.wait_until(lambda: "too many connections" in gw.log_text() or None, 5,
                        what="the refusal in the log")

    def test_grace_period_forces_open_transaction_closed(self):
        before = len(self.postfix.messages(USER))
        gw = self.start_gateway(flags=["--shutdown_grace=1"])
        c = self.connect(gw)
        c.cmd("EHLO client.example.org")
        replies = c.pipeline("MAIL FROM:<sender@example.org>", f"RCPT TO:<{USER}>", "DATA")
        self.assertEqual([r.code for r in replies], [250, 250, 354])
        c.send(b"Subject: never finished\r\n\r\npart\r\n")
        t0 = time.monotonic()
        gw.signal(signal.SIGTERM)
        r = c.read_reply(timeout=10)  # the grace period runs out: 421, never 250
        self.assertEqual(r.code, 421, r)
        self.assertEqual(gw.wait(15), 0)
        self.assertLess(time.monotonic() - t0, 8)
        time.sleep(0.5)
        self.assertEqual(len(self.postfix.messages(USER)), before, "a half message was delivered")

    def test_sighup_rereads_flagfile_for_new_sessions(self):
        path = os.path.join(self.tmpdir, "reload.flags")

        def write(max_rcpt, hostname):
            with open(path, "w") as f:
                f.write(f"--listen=127.0.0.1:0\n--backend=127.0.0.1:{self.postfix.port}\n"
                        f"--hostname={hostname}\n--max_recipients={max_rcpt}\n")
        write(1, "before.mailgate.test")
        gw = Gateway(listen=None, hostname=None, flags=[f"--flagfile={path}"])
        gw.start()
        self.addCleanup(gw.stop)
        old = self.connect(gw)
        self.assertIn("before.mailgate.test", old.greeting.text)

        write(2, "after.mailgate.test")
        gw.signal(signal.SIGHUP)
        util.wait_until(lambda: "reloaded configuration" in gw.log_text() or None, 5,
                        what="the reload log line")
        new = self.connect(gw)
        self.assertIn("after.mailgate.test", new.greeting.text)
        new.cmd("EHLO client.example.org")
        replies = new.pipeline("MAIL FROM:<s@example.org>", f"RCPT TO:<{USER}>",
                               "RCPT TO:<other@example.test>", "RCPT TO:<alice@example.test>")
        self.assertEqual([r.code for r in replies], [250, 250, 250, 452], replies)
        # The session opened before the reload keeps its settings and its connection.
        old.cmd("EHLO client.example.org")
        replies = old.pipeline("MAIL FROM:<s@example.org>", f"RCPT TO:<{USER}>",
                               "RCPT TO:<other@example.test>")
        self.assertEqual([r.code for r in replies], [250, 250, 452], replies)

        # A broken file keeps the running configuration.
        with open(path, "w") as f:
            f.write("--max_recipients=0\n")
        gw.signal(signal.SIGHUP)
        util.wait_until(lambda: "reload failed" in gw.log_text() or None, 5,
                        what="the failed-reload log line")
        self.assertIn("--max_recipients", gw.log_text())
        again = self.connect(gw)
        self.assertIn("after.mailgate.test", again.greeting.text)
