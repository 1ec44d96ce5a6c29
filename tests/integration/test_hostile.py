"""Hostile clients against the gateway in front of a real Postfix, each one while the gateway
keeps serving everybody else.

Owns issue 10's hostile-client cases not covered elsewhere: a slowloris client (a byte a
second) while other clients are served; an HTTP request on the SMTP port, including a form
POST carrying SMTP commands (answered once, closed, nothing run); an early talker before the
greeting (--greet_pause); commands pipelined after QUIT; NUL bytes in a message; 8-bit header
text without 8BITMIME; 10,000 pipelined RCPTs; malformed and UTF-8 addresses; a message far
over the size limit, refused with 552 without the gateway buffering it (its peak RSS is
checked). Elsewhere: connection limits (test_limits), SMTP smuggling (test_smuggling), long
lines and SIZE (transcripts), relaying (test_access), backend faults (test_backend_failure),
the crash test (test_crash_no_loss).
"""

import threading
import time
import uuid

from mgtest import base, util
from mgtest.smtpclient import RawSmtp, message_data


def token():
    return uuid.uuid4().hex[:12]


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/PID/status")


class HostileClientTest(base.PostfixCase):
    def setUp(self):
        self.gw = self.start_gateway(flags=["--max_message_size=1048576",
                                            "--max_recipients=100", "--client_timeout=30"])

    def send_ok(self, subject, gw=None):
        """A well-behaved client delivers one message; returns the seconds it took."""
        started = time.monotonic()
        c = self.connect(gw or self.gw)
        self.assertEqual(c.greeting.code, 220)
        self.assertEqual(c.cmd("EHLO good.example.test").code, 250)
        self.assertEqual(c.cmd(f"MAIL FROM:<good@{base.DOMAIN}>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        r = c.data(message_data(f"Subject: {subject}\r\n\r\nhello\r\n".encode()))
        self.assertEqual(r.code, 250, r)
        c.quit()
        return time.monotonic() - started

    def delivered(self, needle):
        return [m for m in self.postfix.messages(base.USER) if needle.encode() in m]

    def wait_delivered(self, needle, n):
        util.wait_until(lambda: len(self.delivered(needle)) >= n, 20,
                        what=f"{n} message(s) with {needle!r} in the mailbox")
        self.assertEqual(len(self.delivered(needle)), n)

    def test_slowloris_does_not_hold_up_other_clients(self):
        slow = self.connect(self.gw)
        stop = threading.Event()

        def drip():
            for b in b"EHLO slow.example.test\r\nMAIL FROM:<a@b.test>\r\n":
                if stop.wait(1.0):
                    return
                try:
                    slow.send(bytes([b]))
                except OSError:
                    return

        t = threading.Thread(target=drip)
        t.start()
        self.addCleanup(t.join, 5)
        self.addCleanup(stop.set)
        t0 = token()
        for i in range(5):
            self.assertLess(self.send_ok(f"slowloris-{t0}-{i}"), 5.0)
        self.wait_delivered(f"slowloris-{t0}", 5)

    def test_http_request_is_answered_once_and_closed(self):
        t = token()
        c = self.connect(self.gw)
        # A browser form POSTed to port 25: the SMTP commands inside must never run.
        c.send(("POST /form HTTP/1.1\r\nHost: mail.example.test\r\n"
                "Content-Type: text/plain\r\n\r\n"
                f"HELO x\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<{base.USER}>\r\nDATA\r\n"
                f"Subject: cross-protocol-{t}\r\n\r\nspam\r\n.\r\nQUIT\r\n").encode())
        r = c.read_reply()
        self.assertEqual((r.code, r.enhanced), (554, "5.5.1"), r)
        self.assertTrue(c.wait_closed(5))
        self.assertEqual(c.buf, b"", "more than one reply to an HTTP request")
        self.gw.wait_for_log(r"reject: HTTP request \(POST\)")
        g = self.connect(self.gw)
        g.send(b"GET / HTTP/1.0\r\n\r\n")
        self.assertEqual(g.read_reply().code, 554)
        self.assertTrue(g.wait_closed(5))
        self.send_ok(f"after-http-{t}")
        self.wait_delivered(f"after-http-{t}", 1)
        self.assertEqual(self.delivered(f"cross-protocol-{t}"), [])

    def test_early_talker_is_refused_and_patient_clients_are_greeted(self):
        gw = self.start_gateway(flags=["--greet_pause=0.5"])
        c = RawSmtp(gw.host, gw.port, read_greeting=False)
        self.addCleanup(c.close)
        c.send(b"EHLO rude.example.test\r\nMAIL FROM:<a@example.test>\r\n")
        r = c.read_reply()
        self.assertEqual((r.code, r.enhanced), (554, "5.5.1"), r)
        self.assertTrue(c.wait_closed(5))
        self.assertEqual(c.buf, b"")
        gw.wait_for_log(r"early talker")
        took = self.send_ok(f"patient-{token()}", gw=gw)
        self.assertGreaterEqual(took, 0.45)

    def test_commands_after_quit_are_not_run(self):
        t = token()
        c = self.connect(self.gw)
        c.send((f"QUIT\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<{base.USER}>\r\nDATA\r\n"
                f"Subject: after-quit-{t}\r\n\r\nx\r\n.\r\n").encode())
        self.assertEqual(c.read_reply().code, 221)
        self.assertTrue(c.wait_closed(5))
        self.assertEqual(c.buf, b"", "a command after QUIT was answered")
        self.send_ok(f"after-quit-ok-{t}")
        self.wait_delivered(f"after-quit-ok-{t}", 1)
        self.assertEqual(self.delivered(f"after-quit-{t}\r\n"), [])

    def test_nul_bytes_refused_and_8bit_headers_passed_to_the_backend(self):
        t = token()
        c = self.connect(self.gw)
        self.assertEqual(c.cmd("EHLO x.example.test").code, 250)
        self.assertEqual(c.cmd(f"MAIL FROM:<a@{base.DOMAIN}>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        r = c.data(message_data(f"Subject: nul-{t}\r\n\r\na\x00b\r\n".encode()))
        self.assertEqual((r.code, r.enhanced), (554, "5.6.0"), r)
        # 8-bit header text without BODY=8BITMIME: not the gateway's to judge; Postfix takes it.
        self.assertEqual(c.cmd(f"MAIL FROM:<a@{base.DOMAIN}>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        r = c.data(message_data(f"Subject: 8bit-{t} Grüße\r\n\r\nbody\r\n".encode("utf-8")))
        self.assertEqual(r.code, 250, r)
        c.quit()
        self.wait_delivered(f"8bit-{t}", 1)
        self.assertEqual(self.delivered(f"nul-{t}"), [])

    def test_ten_thousand_pipelined_recipients(self):
        c = self.connect(self.gw, timeout=60)
        self.assertEqual(c.cmd("EHLO many.example.test").code, 250)
        self.assertEqual(c.cmd(f"MAIL FROM:<a@{base.DOMAIN}>").code, 250)
        c.send(b"".join(f"RCPT TO:<{u}@{base.DOMAIN}>\r\n".encode()
                        for u in ("user", "other", "alice", "bob") * 2500))
        codes = []
        try:
            while len(codes) < 10000:
                codes.append(c.read_reply(timeout=60).code)
        except AssertionError:  # the gateway closed after too many errors: fine
            pass
        self.assertEqual(codes[:100], [250] * 100)
        self.assertTrue(set(codes[100:]) <= {452, 421}, set(codes[100:]))
        self.send_ok(f"after-many-{token()}")

    def test_malformed_and_utf8_addresses(self):
        c = self.connect(self.gw)
        self.assertEqual(c.cmd("EHLO addr.example.test").code, 250)
        for bad in ("MAIL FROM:<a@@example.test>", "MAIL FROM:<a b@example.test>",
                    "MAIL FROM:a@example.test", "MAIL FROM:<a@example..test>",
                    "MAIL FROM:<a@[999.1.1.1]>", "MAIL FROM:<\x7f@example.test>"):
            r = c.cmd(bad)
            self.assertEqual(r.code // 100, 5, (bad, r))
            self.assertTrue(r.enhanced.startswith("5."), (bad, r))
        # UTF-8 needs SMTPUTF8 on MAIL (RFC 6531); with it the address goes through.
        r = c.cmd("MAIL FROM:<jörg@example.test>")
        self.assertEqual(r.code, 553, r)
        self.assertEqual(c.cmd("MAIL FROM:<jörg@example.test> SMTPUTF8").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        c.quit()

    def test_oversized_message_is_refused_without_being_buffered(self):
        t = token()
        before = peak_rss_kib(self.gw.pid)
        c = self.connect(self.gw, timeout=60)
        self.assertEqual(c.cmd("EHLO big.example.test").code, 250)
        self.assertEqual(c.cmd(f"MAIL FROM:<a@{base.DOMAIN}>").code, 250)  # no SIZE=
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        line = b"x" * 998 + b"\r\n"
        c.send(f"Subject: big-{t}\r\n\r\n".encode())
        for _ in range(64):  # 64 MB, 64 times the limit
            c.send(line * 1024)
        r = c.data(b".\r\n", timeout=60)
        self.assertEqual((r.code, r.enhanced), (552, "5.3.4"), r)
        after = peak_rss_kib(self.gw.pid)
        if not util.sanitized_binary(self.gw.binary):  # ASan's quarantine keeps freed buffers
            self.assertLess(after - before, 16 * 1024, f"peak RSS grew {after - before} KiB")
        self.assertEqual(c.cmd("NOOP").code, 250)  # the session goes on
        c.quit()
        self.assertEqual(self.delivered(f"big-{t}"), [])
