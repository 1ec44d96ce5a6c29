"""SMTP smuggling (SEC Consult, Dec 2023; CVE-2023-51764/51765/51766): an end-of-data
marker that is not exactly <CR><LF>.<CR><LF> must never end the message, in either
--bare_eol mode, so a second "smuggled" message can never reach the backend.

Each case sends, in one write after 354:
    Subject: first\\r\\n\\r\\nhello <SEQ> MAIL FROM/RCPT TO/DATA + "Subject: smuggled" message
    \\r\\n.\\r\\n QUIT
reject mode: the message is refused with 5xx, nothing is delivered.
normalize mode: exactly one message ("Subject: first") is delivered, with the would-be
smuggled commands and headers as body text.
"""

import email
import email.policy
import time
import unittest

from mgtest.base import PostfixCase, USER
from mgtest.smtpclient import ConnectionClosed

# The end-of-data variants from the SMTP smuggling research and its follow-ups
# (bare LF, bare CR, mixed, and NUL-decorated dots).
SEQUENCES = [
    "\n.\n",
    "\n.\r\n",
    "\r\n.\n",
    "\r.\r\n",
    "\r\n.\r",
    "\r\n.\r\r\n",
    "\n.\n\r\n",
    "\r.\r",
    "\n.\r",
    "\r.\n",
    "\r\n.\n\r\n",
    "\n.\r\r\n",
    "\r\r\n.\r\r\n",
    "\r\n\r\n.\n",
    "\n\n.\n\n",
]
# Variants without bare CR/LF that rely on a receiver dropping NULs. Not "bare EOL", so the
# gateway may refuse them in both modes; it must still never deliver a smuggled message.
NUL_SEQUENCES = [
    "\r\n\x00.\r\n",
    "\r\n.\x00\r\n",
]

SMUGGLED = ("MAIL FROM:<evil@example.test>\r\n"
            "RCPT TO:<user@example.test>\r\n"
            "DATA\r\n"
            "Subject: smuggled\r\n"
            "\r\n"
            "smuggled\r\n")


def payload(seq):
    return ("Subject: first\r\n\r\nhello" + seq + SMUGGLED + "\r\n.\r\n").encode()


def header_section(raw):
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    return msg


class SmugglingTest(PostfixCase):

    def all_delivered(self):
        out = []
        for msgs in self.postfix.all_messages().values():
            out.extend(msgs)
        return out

    def run_case(self, gw, seq):
        """Sends one case; returns the replies after 354 (until QUIT's reply or close)."""
        c = self.connect(gw)
        self.assertEqual(c.cmd("EHLO client.example.org").code, 250)
        replies = c.pipeline("MAIL FROM:<sender@example.org>", f"RCPT TO:<{USER}>", "DATA")
        self.assertEqual([r.code for r in replies], [250, 250, 354], replies)
        c.send(payload(seq) + b"QUIT\r\n")
        after = []
        try:
            while True:
                r = c.read_reply(timeout=15)
                after.append(r)
                if r.code in (221, 421):
                    break
        except ConnectionClosed:
            pass
        c.close()
        return after

    def assert_never_smuggled(self, seq):
        for raw in self.all_delivered():
            msg = header_section(raw)
            subjects = msg.get_all("Subject") or []
            self.assertNotIn("smuggled", " ".join(subjects),
                             f"{seq!r}: a smuggled message reached the backend:\n{raw!r}")
            self.assertNotIn(b"evil@example.test>\n", raw.split(b"\n\n", 1)[0],
                             f"{seq!r}: smuggled envelope: {raw!r}")

    def check_mode(self, mode):
        gw = self.start_gateway(flags=[f"--bare_eol={mode}"])
        for seq in SEQUENCES + NUL_SEQUENCES:
            with self.subTest(mode=mode, seq=seq):
                before = self.all_delivered()
                after = self.run_case(gw, seq)
                codes = [r.code for r in after]
                self.assertTrue(after, f"no reply to end-of-data for {seq!r}")
                # Whatever else happens, the smuggled MAIL/RCPT/DATA never ran as commands.
                self.assertNotIn(354, codes, f"{seq!r}: smuggled DATA was accepted: {after}")
                if mode == "reject" or (seq in NUL_SEQUENCES and codes[0] != 250):
                    self.assertGreaterEqual(codes[0], 500, after)
                    self.assertNotIn(250, codes, after)
                    # Give a wrongly queued message the time to arrive, then check.
                    self.postfix.wait_queue_empty()
                    time.sleep(0.3)
                    self.assertEqual(len(self.all_delivered()), len(before),
                                     f"{seq!r}: refused message was delivered")
                else:
                    self.assertEqual(codes[0], 250, after)
                    self.assertEqual(codes[1:], [221], after)
                    deadline = time.monotonic() + 20
                    while len(self.all_delivered()) <= len(before) and time.monotonic() < deadline:
                        time.sleep(0.05)
                    self.postfix.wait_queue_empty()
                    time.sleep(0.3)
                    delivered = self.all_delivered()
                    self.assertEqual(len(delivered), len(before) + 1,
                                     f"{seq!r}: expected exactly one message")
                    new = [m for m in delivered if m not in before]
                    self.assertEqual(len(new), 1, f"{seq!r}: {new}")
                    msg = header_section(new[0])
                    self.assertEqual(msg.get_all("Subject"), ["first"], new[0])
                    body = new[0].split(b"\n\n", 1)[1]
                    self.assertIn(b"MAIL FROM:<evil@example.test>", body, new[0])
                    self.assertIn(b"Subject: smuggled", body, new[0])
                self.assert_never_smuggled(seq)
        # Nothing is left in the queue and nothing arrived late.
        self.postfix.wait_queue_empty()
        self.assert_never_smuggled("(final check)")

    def test_reject_mode(self):
        self.check_mode("reject")

    def test_normalize_mode(self):
        self.check_mode("normalize")


if __name__ == "__main__":
    unittest.main()
