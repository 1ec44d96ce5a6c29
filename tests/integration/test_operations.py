"""Operating the daemon: flag errors, --flagfile, graceful SIGTERM, the transaction log line."""

import os
import re
import signal
import smtplib
import socket
import time
import unittest

from mgtest import util
from mgtest.base import PostfixCase, USER
from mgtest.gateway import Gateway, parse_fields, run_once
from mgtest.smtpclient import ConnectionClosed, RawSmtp, message_data


class FlagErrorTest(unittest.TestCase):
    """Bad flags: non-zero exit, and a message naming the flag (no backend needed)."""

    def setUp(self):
        self.spool = util.make_tempdir("mailgate-spool-")
        self.addCleanup(util.remove_tree, self.spool)

    def run_bad(self, bad, names):
        # Every other flag valid, and nothing outside the temp dir touched (policy db, DNS).
        flags = ["--listen=127.0.0.1:0", "--backend=127.0.0.1:10025",
                 f"--spool_dir={self.spool}", "--hostname=gateway.mailgate.test",
                 f"--policy_db={self.spool}/policy.db", "--dns_servers=none"]
        key = bad.split("=", 1)[0]
        flags = [f for f in flags if not f.startswith(key + "=")] + [bad]
        code, out = run_once(flags, timeout=15)
        self.assertIsNotNone(code, f"{bad}: the gateway did not exit (output: {out[-2000:]})")
        self.assertNotEqual(code, 0, f"{bad}: exit 0 (output: {out[-2000:]})")
        self.assertTrue(any(n in out for n in names),
                        f"{bad}: message does not name {names}: {out[-2000:]!r}")
        self.assertNotIn("Segmentation", out)
        self.assertLess(code if code >= 0 else 128 - code, 128, f"{bad}: killed by a signal")

    def test_listen_garbage(self):
        self.run_bad("--listen=garbage", ["listen"])

    def test_listen_bad_port(self):
        self.run_bad("--listen=127.0.0.1:99999", ["listen"])

    def test_backend_without_host(self):
        self.run_bad("--backend=:0", ["backend"])

    def test_listen_non_local_address(self):
        # 192.0.2.1 (TEST-NET-1) is not an address of this host: bind() fails.
        self.run_bad("--listen=192.0.2.1:25", ["listen", "192.0.2.1"])

    def test_bare_eol_value(self):
        self.run_bad("--bare_eol=maybe", ["bare_eol"])

    def test_log_level_value(self):
        self.run_bad("--log_level=loud", ["log_level"])

    def test_unknown_flag(self):
        self.run_bad("--no_such_flag=1", ["no_such_flag"])


class OperationsTest(PostfixCase):

    def test_flagfile(self):
        path = os.path.join(self.tmpdir, "mailgate.flags")
        with open(path, "w") as f:
            f.write("# mailgate flags\n"
                    "--listen=127.0.0.1:0\n"
                    f"--backend=127.0.0.1:{self.postfix.port}\n"
                    "--hostname=flagfile.mailgate.test\n"
                    "--max_recipients=2\n")
        gw = Gateway(listen=None, hostname=None, flags=[f"--flagfile={path}"])
        gw.start()
        self.addCleanup(gw.stop)
        c = self.connect(gw)
        self.assertIn("flagfile.mailgate.test", c.greeting.text)
        c.cmd("EHLO client.example.org")
        replies = c.pipeline("MAIL FROM:<sender@example.org>", "RCPT TO:<user@example.test>",
                             "RCPT TO:<other@example.test>", "RCPT TO:<alice@example.test>")
        self.assertEqual([r.code for r in replies], [250, 250, 250, 452], replies)
        c.quit()

    def test_second_gateway_on_the_same_port_is_refused(self):
        # Several I/O threads bind the port SO_REUSEPORT; a second gateway started by mistake
        # must still fail to bind rather than share the port.
        gw = self.start_gateway(flags=["--threads=2"])
        spool = util.make_tempdir("mailgate-spool-")
        self.addCleanup(util.remove_tree, spool)
        code, out = run_once([f"--listen={gw.host}:{gw.port}", f"--backend=127.0.0.1:{self.postfix.port}",
                              f"--spool_dir={spool}", "--hostname=second.mailgate.test",
                              f"--policy_db={spool}/policy.db", "--dns_servers=none",
                              "--threads=2"], timeout=15)
        self.assertIsNotNone(code, f"the second gateway did not exit: {out[-2000:]}")
        self.assertNotEqual(code, 0, out[-2000:])
        self.assertIn(f"--listen={gw.host}:{gw.port}", out)
        self.assertIn("in use", out)
        # The first one still serves.
        c = self.connect(gw)
        self.assertEqual(c.greeting.code, 220)
        c.quit()

    def test_sigterm_lets_open_session_finish(self):
        before = len(self.postfix.messages(USER))
        gw = self.start_gateway(flags=["--shutdown_grace=15"])
        c = self.connect(gw)
        c.cmd("EHLO client.example.org")
        replies = c.pipeline("MAIL FROM:<sender@example.org>", f"RCPT TO:<{USER}>", "DATA")
        self.assertEqual([r.code for r in replies], [250, 250, 354], replies)
        c.send(b"Subject: sigterm\r\n\r\npart one\r\n")
        t0 = time.monotonic()
        gw.signal(signal.SIGTERM)

        # New connections are refused (closed listener) or told 421 at once.
        def refused():
            try:
                s = RawSmtp(gw.host, gw.port, timeout=3)
            except (ConnectionRefusedError, ConnectionClosed, ConnectionResetError):
                return True
            except OSError:
                return True
            code = s.greeting.code
            s.close()
            return code == 421 or None
        util.wait_until(refused, 5, interval=0.1, what="new connections refused after SIGTERM")
        self.assertTrue(gw.running(), "gateway exited while a session was open")

        r = c.data(b"part two\r\n.\r\n", timeout=15)
        self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        try:
            r = c.cmd("QUIT")
            self.assertIn(r.code, (221, 421), r)
        except ConnectionClosed:
            pass
        c.close()
        code = gw.wait(15)
        self.assertEqual(code, 0, gw.log_text()[-3000:])
        self.assertLess(time.monotonic() - t0, 15)
        msgs = self.postfix.wait_for_messages(USER, before + 1)
        self.assertIn(b"part one\npart two\n", msgs[before])

    def test_sigterm_idle_session_gets_421(self):
        gw = self.start_gateway(flags=["--shutdown_grace=10"])
        c = self.connect(gw)
        c.cmd("EHLO client.example.org")
        gw.signal(signal.SIGTERM)
        try:
            r = c.read_reply(timeout=10)
            self.assertEqual(r.code, 421, r)
        except ConnectionClosed:
            pass
        self.assertEqual(gw.wait(15), 0)

    def test_transaction_log_line(self):
        gw = self.start_gateway()
        with smtplib.SMTP(gw.host, gw.port, local_hostname="client.example.org",
                          source_address=("127.0.0.2", 0), timeout=15) as s:
            body = b"Subject: logged\r\n\r\nlog line test\r\n"
            s.ehlo()
            s.mail("sender@example.org")
            s.rcpt(USER)
            s.rcpt("other@example.test")
            code, resp = s.data(body)
            self.assertEqual(code, 250, resp)
        m = re.search(rb"queued as (\w+)", resp)
        self.assertIsNotNone(m, resp)
        qid = m.group(1).decode()
        self.assertIn((qid, "unknown[127.0.0.2]"), self.postfix.smtpd_queue_ids())
        lines = gw.wait_for_transactions(1)
        line = lines[-1]
        fields = parse_fields(line)
        self.assertRegex(fields.get("client", ""), r"127\.0\.0\.2", line)
        self.assertIn("client.example.org", fields.get("helo", ""), line)
        self.assertEqual(fields.get("from"), "<sender@example.org>", line)
        self.assertIn("<user@example.test>", line)
        self.assertIn("<other@example.test>", line)
        self.assertRegex(fields.get("size", ""), r"^\d+$", line)
        self.assertGreaterEqual(int(fields["size"]), len(body))
        self.assertEqual(fields.get("queue_id"), qid, line)
        self.assertEqual(fields.get("status"), "accepted", line)
        self.assertRegex(fields.get("delay", ""), r"^\d+(\.\d+)?$", line)

    def test_rejected_transaction_is_logged(self):
        gw = self.start_gateway(flags=["--max_message_size=2000"])
        c = self.connect(gw)
        c.cmd("EHLO client.example.org")
        replies = c.pipeline("MAIL FROM:<sender@example.org>", f"RCPT TO:<{USER}>", "DATA")
        self.assertEqual([r.code for r in replies], [250, 250, 354], replies)
        r = c.data(message_data("Subject: big\r\n\r\n" + ("z" * 70 + "\r\n") * 60))
        self.assertEqual(r.code, 552, r)
        c.quit()
        line = gw.wait_for_transactions(1)[-1]
        self.assertEqual(parse_fields(line).get("status"), "rejected", line)


if __name__ == "__main__":
    unittest.main()
