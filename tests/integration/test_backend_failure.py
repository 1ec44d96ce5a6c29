"""The backend fails, is absent or hangs: the client gets 4xx, never 250, and nothing is lost."""

import os
import time
import unittest

from mgtest import util
from mgtest.base import PostfixCase, USER
from mgtest.fakebackend import FakeBackend
from mgtest.postfix import PostfixInstance
from mgtest.smtpclient import ConnectionClosed, message_data

SHORT_TIMEOUTS = ["--backend_connect_timeout=1", "--backend_greeting_timeout=1",
                  "--backend_command_timeout=1", "--backend_data_init_timeout=1",
                  "--backend_data_block_timeout=1", "--backend_data_end_timeout=1"]


class BackendFailureTest(PostfixCase):

    def assert_transient(self, r, allowed=(421, 451)):
        self.assertIn(r.code, allowed, r)
        self.assertRegex(r.enhanced, r"^4\.\d+\.\d+$", r)

    def send_one(self, gw, subject):
        """One complete transaction; returns the list of replies (greeting first)."""
        c = self.connect(gw)
        replies = [c.greeting]
        try:
            replies.append(c.cmd("EHLO client.example.org"))
            for line in ("MAIL FROM:<sender@example.org>", f"RCPT TO:<{USER}>", "DATA"):
                r = c.cmd(line)
                replies.append(r)
                if r.code >= 400:
                    return replies
            replies.append(c.data(message_data(f"Subject: {subject}\r\n\r\nbody\r\n"), timeout=20))
            c.quit()
        except ConnectionClosed:
            pass
        finally:
            c.close()
        return replies

    def test_backend_stopped_mid_session_then_restarted(self):
        # Own Postfix: this test stops and restarts it.
        pf = PostfixInstance(os.path.join(self.tmpdir, "pf-restart"), users=("user",))
        pf.start()
        self.addCleanup(pf.stop)
        gw = self.start_gateway(flags=SHORT_TIMEOUTS, backend_port=pf.port)
        replies = self.send_one(gw, "before stop")
        self.assertEqual(replies[-1].code, 250, replies)
        pf.wait_for_messages(USER, 1)

        # A session in DATA when the backend goes away: end-of-data gets 4xx, never 250.
        c = self.connect(gw)
        c.cmd("EHLO client.example.org")
        replies = c.pipeline("MAIL FROM:<sender@example.org>", f"RCPT TO:<{USER}>", "DATA")
        self.assertEqual([r.code for r in replies], [250, 250, 354], replies)
        c.send(b"Subject: during stop\r\n\r\nfirst part\r\n")
        pf.stop()
        try:
            r = c.data(b"second part\r\n.\r\n", timeout=20)
            self.assert_transient(r)
        except ConnectionClosed:
            self.fail("connection closed without a reply to end-of-data")
        c.close()

        # Backend down: a new transaction gets 4xx at MAIL (or at greeting), never 250.
        replies = self.send_one(gw, "while down")
        self.assertNotIn(250, [r.code for r in replies[2:]], replies)
        self.assert_transient(replies[-1])

        # Backend back on the same port: delivery works again.
        pf.start()
        # A stale pooled connection must not turn into a 250 for a lost message; a 4xx on
        # the first attempt is allowed (the sender retries), so retry for a few seconds.
        deadline = time.monotonic() + 15
        attempts = 0
        while True:
            attempts += 1
            replies = self.send_one(gw, "after restart")
            if replies[-1].code == 250 or time.monotonic() > deadline:
                break
            self.assert_transient(replies[-1])
            time.sleep(0.5)
        self.assertEqual(replies[-1].code, 250, replies)
        if attempts > 1:
            print(f"\nnote: delivery after backend restart needed {attempts} attempts")
        msgs = pf.wait_for_messages(USER, 2)
        self.assertTrue(all(b"during stop" not in m and b"while down" not in m for m in msgs))
        self.assertIn(b"after restart", msgs[-1])

    def test_backend_port_never_listening(self):
        port = util.free_port()
        gw = self.start_gateway(flags=SHORT_TIMEOUTS, backend_port=port)
        for _ in range(2):   # twice: no cached state turns the second attempt into success
            c = self.connect(gw)
            if c.greeting.code != 220:
                self.assert_transient(c.greeting, allowed=(421,))
                continue
            self.assertEqual(c.cmd("EHLO client.example.org").code, 250)
            t0 = time.monotonic()
            try:
                r = c.cmd("MAIL FROM:<sender@example.org>", timeout=15)
            except ConnectionClosed:
                self.fail("connection closed without a reply to MAIL")
            self.assertLess(time.monotonic() - t0, 10)
            self.assert_transient(r)
            c.close()

    def hang_case(self, mode, expect_at):
        with FakeBackend(mode) as fake:
            gw = self.start_gateway(flags=SHORT_TIMEOUTS, backend_port=fake.port)
            c = self.connect(gw)
            self.assertEqual(c.greeting.code, 220)
            self.assertEqual(c.cmd("EHLO client.example.org").code, 250)
            steps = [("MAIL FROM:<sender@example.org>", 250), (f"RCPT TO:<{USER}>", 250),
                     ("DATA", 354)]
            for line, code in steps:
                t0 = time.monotonic()
                r = c.cmd(line, timeout=15)
                if line.startswith(expect_at):
                    self.assertLess(time.monotonic() - t0, 8, "reply took too long")
                    self.assertEqual((r.code, r.enhanced), (451, "4.4.2"), r)
                    return
                self.assertEqual(r.code, code, r)
            t0 = time.monotonic()
            r = c.data(message_data("Subject: hang\r\n\r\nbody\r\n"), timeout=15)
            self.assertLess(time.monotonic() - t0, 8, "reply took too long")
            self.assertEqual((r.code, r.enhanced), (451, "4.4.2"), r)
            # The session survives a backend timeout: the client may retry later.
            try:
                self.assertNotEqual(c.cmd("NOOP").code, 354)
            except ConnectionClosed:
                pass

    def test_backend_hangs_after_end_of_data(self):
        self.hang_case("hang_after_data", expect_at=".")

    def test_backend_never_greets(self):
        self.hang_case("no_greeting", expect_at="MAIL")

    def test_backend_hangs_at_mail(self):
        # The backend offers PIPELINING, so MAIL goes in one group with the first RCPT: the
        # gateway answered MAIL itself, and the backend's silence is the RCPT's 451 4.4.2.
        self.hang_case("hang_at_mail", expect_at="RCPT")


if __name__ == "__main__":
    unittest.main()
