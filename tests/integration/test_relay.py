"""End-to-end relaying: real clients → mailgate → a private Postfix → maildir."""

import email
import email.policy
import smtplib
import subprocess
import unittest

from mgtest.base import PostfixCase, USER
from mgtest.smtpclient import message_data


def split_message(raw):
    """(header bytes, body bytes) of a delivered message (maildir files use LF)."""
    head, _, body = raw.partition(b"\n\n")
    return head, body


def postfix_received(raw, hostname="backend.mailgate.test"):
    """The Received header Postfix wrote (unfolded), or None."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    for value in msg.get_all("Received") or []:
        unfolded = " ".join(value.split())
        if f"by {hostname}" in unfolded:
            return unfolded
    return None


class RelayTest(PostfixCase):
    postfix_users = ("user", "other", "alice", "bob", "jürgen")
    # Postfix refuses this one sender at MAIL itself (not at RCPT, its default), so the
    # refusal reaches the gateway as the reply to MAIL.
    postfix_extra_main = {
        "smtpd_delay_reject": "no",
        "smtpd_sender_restrictions":
            "check_sender_access inline:{ {refused@example.org=REJECT Sender refused by policy} }",
    }

    def setUp(self):
        self.gw = self.start_gateway(flags=["--max_message_size=100000"])

    def test_smtplib_from_127_0_0_2_xclient_and_dots(self):
        body = ("From: Sender <sender@example.org>\r\n"
                "To: <user@example.test>\r\n"
                "Subject: relay test\r\n"
                "\r\n"
                "first line\r\n"
                ".leading dot\r\n"
                "..two dots\r\n"
                ".\r\n"
                " . not the end\r\n"
                "last line\r\n")
        before = len(self.postfix.messages(USER))
        with smtplib.SMTP(self.gw.host, self.gw.port, local_hostname="client.example.org",
                          source_address=("127.0.0.2", 0), timeout=15) as s:
            refused = s.sendmail("sender@example.org", [USER], body.encode())
            self.assertEqual(refused, {})
        msgs = self.postfix.wait_for_messages(USER, before + 1)
        raw = msgs[before]
        received = postfix_received(raw)
        self.assertIsNotNone(received, raw.decode(errors="replace"))
        self.assertIn("[127.0.0.2]", received)          # XCLIENT told Postfix the real client
        self.assertIn("client.example.org", received)   # ... and its HELO name
        head, got_body = split_message(raw)
        self.assertIn(b"Subject: relay test", head)
        expected_body = body.split("\r\n\r\n", 1)[1].replace("\r\n", "\n").encode()
        self.assertEqual(got_body, expected_body)

    def test_unknown_recipient_550_from_postfix(self):
        c = self.connect(self.gw)
        self.assertEqual(c.cmd("EHLO client.example.org").code, 250)
        r = c.cmd("MAIL FROM:<sender@example.org>")
        self.assertEqual(r.code, 250, r)
        r = c.cmd("RCPT TO:<nosuch@example.test>")
        self.assertEqual((r.code, r.enhanced), (550, "5.1.1"), r)
        self.assertIn("nosuch@example.test", r.text)    # Postfix's text, passed through
        r = c.cmd("RCPT TO:<user@example.test>")
        self.assertEqual(r.code, 250, r)
        c.quit()

    def test_sender_refused_by_postfix_answers_each_recipient(self):
        # The gateway answers MAIL itself and sends it to Postfix with the first recipient
        # (Postfix offers PIPELINING): Postfix's refusal of the sender is then the answer to
        # every RCPT of the transaction, with Postfix's own code and text; nothing is
        # delivered, and the connection serves the next transaction.
        before = len(self.postfix.messages(USER))
        c = self.connect(self.gw)
        self.assertEqual(c.cmd("EHLO client.example.org").code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<refused@example.org>").code, 250)
        for rcpt in ("user@example.test", "other@example.test"):
            r = c.cmd(f"RCPT TO:<{rcpt}>")
            self.assertEqual((r.code, r.enhanced), (554, "5.7.1"), r)
            self.assertIn("Sender address rejected: Sender refused by policy", r.text)
        r = c.cmd("DATA")
        self.assertGreaterEqual(r.code, 500, r)       # no recipient: no DATA
        self.assertEqual(c.cmd("RSET").code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<sender@example.org>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<user@example.test>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        r = c.data(message_data("Subject: after a refused sender\r\n\r\nbody\r\n"))
        self.assertEqual(r.code, 250, r)
        c.quit()
        msgs = self.postfix.wait_for_messages(USER, before + 1)
        self.assertEqual(len(msgs), before + 1)
        self.assertIn(b"Subject: after a refused sender", msgs[before])
        log = self.postfix.maillog()
        self.assertIn("refused@example.org", log)      # Postfix saw (and refused) the sender

    def test_swaks(self):
        before = len(self.postfix.messages(USER))
        proc = subprocess.run(
            ["swaks", "--server", f"127.0.0.1:{self.gw.port}", "--to", USER,
             "--from", "swaks@example.org", "--helo", "swaks.example.org",
             "--header", "Subject: swaks test", "--body", "hello from swaks",
             "--timeout", "15"],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        msgs = self.postfix.wait_for_messages(USER, before + 1)
        self.assertIn(b"Subject: swaks test", msgs[before])
        self.assertIn(b"hello from swaks", msgs[before])

    def test_several_messages_one_connection_pipelined(self):
        before = {u: len(self.postfix.messages(u)) for u in ("user", "other", "alice")}
        c = self.connect(self.gw)
        ehlo = c.cmd("EHLO client.example.org")
        self.assertIn("PIPELINING", ehlo.keywords())
        for i in range(3):
            replies = c.pipeline("MAIL FROM:<sender@example.org>",
                                 "RCPT TO:<user@example.test>",
                                 "RCPT TO:<other@example.test>",
                                 "DATA")
            self.assertEqual([r.code for r in replies], [250, 250, 250, 354], replies)
            r = c.data(message_data(f"Subject: pipelined {i}\r\n\r\nmessage {i}\r\n"))
            self.assertEqual((r.code, r.enhanced), (250, "2.0.0"), r)
        # A transaction with a rejected recipient, then RSET, then one to alice.
        replies = c.pipeline("MAIL FROM:<sender@example.org>", "RCPT TO:<nosuch@example.test>",
                             "RSET", "MAIL FROM:<sender@example.org>",
                             "RCPT TO:<alice@example.test>", "DATA")
        self.assertEqual([r.code for r in replies], [250, 550, 250, 250, 250, 354], replies)
        r = c.data(message_data("Subject: after rset\r\n\r\nfor alice\r\n"))
        self.assertEqual(r.code, 250, r)
        self.assertEqual(c.cmd("QUIT").code, 221)
        for u, n in (("user", 3), ("other", 3), ("alice", 1)):
            msgs = self.postfix.wait_for_messages(u, before[u] + n)
            self.assertEqual(len(msgs), before[u] + n, u)
        # Postfix delivers the three in parallel: their mailbox order is not the sending order.
        delivered = self.postfix.messages("user")[before["user"]:]
        for i in range(3):
            subject = f"Subject: pipelined {i}".encode()
            self.assertEqual(sum(subject in m for m in delivered), 1, subject)

    def test_8bitmime_and_smtputf8(self):
        c = self.connect(self.gw)
        ehlo = c.cmd("EHLO client.example.org")
        self.assertTrue({"8BITMIME", "SMTPUTF8"} <= ehlo.keywords(), ehlo)
        before = len(self.postfix.messages(USER))
        # 8BITMIME: raw 8-bit body.
        body8 = "Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n" \
                "Content-Transfer-Encoding: 8bit\r\n\r\nGrüße aus Köln, 日本語\r\n"
        replies = c.pipeline("MAIL FROM:<sender@example.org> BODY=8BITMIME",
                             "RCPT TO:<user@example.test>", "DATA")
        self.assertEqual([r.code for r in replies], [250, 250, 354], replies)
        r = c.data(message_data(body8))
        self.assertEqual(r.code, 250, r)
        # SMTPUTF8: UTF-8 envelope addresses and headers.
        before_j = len(self.postfix.messages("jürgen@example.test"))
        bodyu = "From: Søren <søren@example.org>\r\nTo: <jürgen@example.test>\r\n" \
                "Subject: ünïcödé\r\n\r\nSMTPUTF8 body ✓\r\n"
        replies = c.pipeline("MAIL FROM:<søren@example.org> SMTPUTF8 BODY=8BITMIME",
                             "RCPT TO:<jürgen@example.test>", "DATA")
        self.assertEqual([r.code for r in replies], [250, 250, 354], replies)
        r = c.data(message_data(bodyu))
        self.assertEqual(r.code, 250, r)
        c.quit()
        msgs = self.postfix.wait_for_messages(USER, before + 1)
        self.assertIn("Grüße aus Köln, 日本語".encode(), msgs[before])
        msgs = self.postfix.wait_for_messages("jürgen@example.test", before_j + 1)
        got = msgs[before_j]
        self.assertIn("Subject: ünïcödé".encode(), got)
        self.assertIn("SMTPUTF8 body ✓".encode(), got)
        self.assertIn("Return-Path: <søren@example.org>".encode(), got)

    def test_size_declared_too_large(self):
        c = self.connect(self.gw)
        ehlo = c.cmd("EHLO client.example.org")
        self.assertEqual(ehlo.ehlo_params("SIZE"), ["100000"], ehlo)
        r = c.cmd("MAIL FROM:<sender@example.org> SIZE=100001")
        self.assertEqual((r.code, r.enhanced), (552, "5.3.4"), r)
        r = c.cmd("MAIL FROM:<sender@example.org> SIZE=1000")
        self.assertEqual(r.code, 250, r)
        c.quit()

    def test_message_larger_than_limit_refused(self):
        before = len(self.postfix.messages(USER))
        c = self.connect(self.gw)
        c.cmd("EHLO client.example.org")
        replies = c.pipeline("MAIL FROM:<sender@example.org>", "RCPT TO:<user@example.test>",
                             "DATA")
        self.assertEqual([r.code for r in replies], [250, 250, 354], replies)
        big = "Subject: big\r\n\r\n" + ("x" * 98 + "\r\n") * 1500   # ~150 kB > 100000
        r = c.data(message_data(big), timeout=30)
        self.assertEqual((r.code, r.enhanced), (552, "5.3.4"), r)
        self.assertEqual(c.cmd("NOOP").code, 250)
        c.quit()
        self.postfix.wait_queue_empty()
        self.assertEqual(len(self.postfix.messages(USER)), before)


if __name__ == "__main__":
    unittest.main()
