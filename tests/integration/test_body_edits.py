"""SDK ABI 1.3 message edits end to end: a plugin's body replacement and quarantine, in proxy
mode and in milter mode, against real Postfix instances.

Owns:
  * proxy mode: with tests/plugins/tp_body.c replacing the body (given in 7-octet chunks, with
    lines that start with a dot and a line that is only a dot), the message a plain Postfix
    delivers has the received header block and the replacement body byte for byte; the
    transaction log line says body=replaced(N);
  * proxy mode: a quarantining plugin adds "X-Mailgate-Quarantine: <reason>" and the backend
    Postfix, with the header_checks rule of docs/deployment.md, puts the message on hold; the
    log line says quarantined="<reason>";
  * milter mode: the same plugin inside a Postfix (smtpd_milters) changes the body that
    Postfix delivers (smfi_replacebody) and quarantine holds the message (smfi_quarantine).
"""

import os
import unittest

from mgtest import base, util
from mgtest.gateway import Gateway
from mgtest.policyctl import PolicyCtl, test_plugin
from mgtest.postfix import PostfixInstance, milter_postfix, start_all, stop_all
from mgtest.smtpclient import RawSmtp, message_data

DOMAIN = base.DOMAIN

# What the plugin relays instead of the body: dot lines (which the relay must dot-stuff, or
# the lone "." would end the message early), an empty line, a long-ish line, no final CRLF
# missing.
REPLACEMENT = (b"This body was replaced by a plugin.\r\n"
               b".a line starting with a dot\r\n"
               b"..two dots\r\n"
               b".\r\n"
               b"\r\n"
               b"tail " + b"x" * 300 + b"\r\n"
               b"last line\r\n")


class BodyEditsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        base.require_binary()
        cls.tmpdir = util.make_tempdir("mailgate-body-")
        checks = os.path.join(cls.tmpdir, "header_checks")
        with open(checks, "w") as f:
            f.write("/^X-Mailgate-Quarantine:/ HOLD\n")
        cls.body_file = os.path.join(cls.tmpdir, "replacement.txt")
        with open(cls.body_file, "wb") as f:
            f.write(REPLACEMENT)
        cls.milter_port = util.free_port()
        cls.plain_postfix = PostfixInstance(
            os.path.join(cls.tmpdir, "plain-postfix"), users=base.USERS,
            extra_main={"header_checks": f"regexp:{checks}"})
        cls.milter_postfix = milter_postfix(
            os.path.join(cls.tmpdir, "milter-postfix"), cls.milter_port, users=base.USERS,
            hostname="mta.mailgate.test")
        start_all([cls.plain_postfix, cls.milter_postfix], cls.tmpdir)

    @classmethod
    def tearDownClass(cls):
        stop_all([cls.plain_postfix, cls.milter_postfix], cls.tmpdir)

    # ------------------------------------------------------------------ helpers
    def policy(self, settings):
        d = util.make_tempdir("mailgate-body-policy-")
        self.addCleanup(util.remove_tree, d)
        ctl = PolicyCtl(os.path.join(d, "policy.db"))
        ctl.init()
        ctl("policy", "domain", "add", DOMAIN)
        ctl("policy", "plugin", "add", "--name", "body", "--path", test_plugin("body"),
            "--settings", settings, "--fail-mode", "tempfail", "--timeout-ms", "2000")
        return ctl

    def start(self, gw, postfix):
        self.addCleanup(self._dump_on_failure, gw, postfix)
        gw.start()
        self.addCleanup(gw.stop)
        return gw

    def proxy(self, ctl):
        return self.start(Gateway(backend_port=self.plain_postfix.port,
                                  flags=[f"--policy_db={ctl.db}"]), self.plain_postfix)

    def milter(self, ctl):
        return self.start(Gateway(listen=None, flags=[
            "--mode=milter", f"--milter_socket=inet:{self.milter_port}@127.0.0.1",
            f"--policy_db={ctl.db}", "--milter_profile=inbound"]), self.milter_postfix)

    def _dump_on_failure(self, gw, postfix):
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is not None and (result.failures or result.errors):
            print(f"\n--- mailgate log:\n{gw.log_text()[-6000:]}\n"
                  f"--- postfix maillog (tail):\n{postfix.maillog()[-4000:]}")

    def send(self, host, port, subject, extra_headers=""):
        c = RawSmtp(host, port)
        self.addCleanup(c.close)
        self.assertEqual(c.greeting.code, 220, c.greeting)
        self.assertEqual(c.cmd("EHLO client.example").code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<sender@sender.example>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        r = c.data(message_data(
            f"From: <sender@sender.example>\r\nTo: <{base.USER}>\r\nSubject: {subject}\r\n"
            f"{extra_headers}\r\nThe original body.\r\n.original dot line\r\n".encode()))
        self.assertEqual(r.code, 250, r)
        c.quit()

    def delivered(self, postfix, subject):
        def find():
            for m in postfix.messages(base.USER):
                if f"Subject: {subject}".encode() in m:
                    return m
            return None
        util.wait_until(lambda: find() is not None, 20,
                        what=f"delivery of {subject!r}\n{postfix.maillog()[-3000:]}")
        return find()

    def assert_replaced(self, message, subject):
        # Maildir stores LF line endings.
        head, _, body = message.partition(b"\n\n")
        self.assertIn(f"Subject: {subject}".encode(), head)
        self.assertEqual(body, REPLACEMENT.replace(b"\r\n", b"\n"))
        self.assertNotIn(b"original", message)

    def assert_held(self, postfix):
        util.wait_until(lambda: any(q == "hold" for q, _ in postfix.queue()), 20,
                        what=f"a message on hold\n{postfix.maillog()[-3000:]}")

    # ------------------------------------------------------------------ proxy mode
    def test_proxy_replaces_the_body_byte_for_byte(self):
        gw = self.proxy(self.policy('{"body_file":"%s"}' % self.body_file))
        self.send(gw.host, gw.port, "proxy body replaced")
        self.assert_replaced(self.delivered(self.plain_postfix, "proxy body replaced"),
                             "proxy body replaced")
        gw.wait_for_log(rf"status=accepted .*body=replaced\({len(REPLACEMENT)}\)")

    def test_proxy_quarantine_is_held_by_the_backend(self):
        gw = self.proxy(self.policy('{"quarantine":"suspicious attachment"}'))
        self.send(gw.host, gw.port, "proxy quarantined")
        gw.wait_for_log(r'status=accepted .*quarantined="suspicious attachment"')
        self.assert_held(self.plain_postfix)
        self.assertIn("hold: header X-Mailgate-Quarantine: suspicious attachment",
                      self.plain_postfix.maillog())

    def test_proxy_removes_a_clients_own_quarantine_field(self):
        # A sender cannot get its own message held by writing the field the backend holds on.
        gw = self.proxy(self.policy("{}"))
        self.send(gw.host, gw.port, "proxy forged quarantine",
                  extra_headers="X-Mailgate-Quarantine: forged by the client\r\n"
                                "x-mailgate-quarantine: and in lower case\r\n")
        message = self.delivered(self.plain_postfix, "proxy forged quarantine")
        self.assertNotIn(b"forged by the client", message)
        self.assertNotIn(b"lower case", message)
        self.assertIn(b"The original body.", message)

    # ------------------------------------------------------------------ milter mode
    def test_milter_replaces_the_body_and_quarantines(self):
        gw = self.milter(self.policy('{"body_file":"%s"}' % self.body_file))
        pf = self.milter_postfix
        self.send(pf.host, pf.port, "milter body replaced")
        self.assert_replaced(self.delivered(pf, "milter body replaced"), "milter body replaced")
        gw.wait_for_log(rf"status=accepted .*body=replaced\({len(REPLACEMENT)}\)")
        gw.stop()

        gw = self.milter(self.policy('{"quarantine":"held by the milter test"}'))
        self.send(pf.host, pf.port, "milter quarantined")
        gw.wait_for_log(r'status=accepted .*quarantined="held by the milter test"')
        self.assert_held(pf)
        self.assertIn("milter-hold", pf.maillog())


if __name__ == "__main__":
    unittest.main()
