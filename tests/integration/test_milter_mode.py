"""Milter mode: mailgate --mode=milter inside a real Postfix (smtpd_milters).

Owns:
  * Postfix with smtpd_milters pointing at mailgate: a plugin's REJECT at MAIL and TEMPFAIL
    at RCPT are Postfix's replies (code, enhanced code and text), a refused recipient does
    not end the transaction, a header added at the end of the message and a recipient
    rewritten at RCPT are in the delivered message and mailbox, a REJECT at the end of the
    message is Postfix's reply to the final dot, and DISCARD drops the message;
  * the macros mailgate asks for itself (smfi_setsymlist: this Postfix is given no
    milter_*_macros) reach it: the queue id (i) and the service's address ({daemon_addr},
    {daemon_port}) are in mailgate's log;
  * edits at the end of the message reach Postfix as milter operations and give the message
    proxy mode relays: authres's field inserted at the top and forged ones removed
    (smfi_insheader, smfi_chgheader), and with tests/unit/milter/plugins/edits.c a new
    sender, an added and a removed recipient, a changed Subject and removed fields
    (smfi_chgfrom, smfi_addrcpt, smfi_delrcpt, smfi_chgheader) — compared field by field
    with what the proxy delivered through a plain Postfix;
  * mailgate's own milter client plugin (plugins/milter) in a proxy, with milter mode as its
    milter: refusals and edits come through (two implementations of the protocol agree);
  * the same policy database gives the same verdicts both ways: one policy, the same client
    conversations against mailgate as the proxy (in front of a plain Postfix) and against a
    Postfix that runs mailgate as its milter; the replies to MAIL, RCPT and the final dot
    are compared (refusals in full, acceptances by code and enhanced code, since the queue
    ids differ) and so is what is delivered.
Conversations where Postfix refuses by itself first (a domain it does not deliver, checked
in its smtpd_recipient_restrictions before any milter runs) are not the chain's verdicts and
are left out of the comparison.
"""

import os
import re
import subprocess
import threading
import unittest

from mgtest import base, util
from mgtest.gateway import Gateway
from mgtest.policyctl import (PolicyCtl, builtin_plugin, log_mark, test_plugin,
                              wait_policy_applied)
from mgtest.postfix import PostfixInstance, milter_postfix, start_all, stop_all
from mgtest.smtpclient import RawSmtp, message_data

DOMAIN = base.DOMAIN


def make_policy(directory, alpha_script=None):
    """The policy both modes run: the access plugin (sender and recipient rules) and, when
    given, the scripted test plugin `alpha` after it."""
    builtin_plugin("access")
    ctl = PolicyCtl(os.path.join(directory, "policy.db"))
    ctl.init()
    ctl("policy", "domain", "add", DOMAIN)
    ctl("policy", "plugin", "add", "--name", "access", "--path", "access.so",
        "--fail-mode", "tempfail", "--timeout-ms", "1000")
    ctl("policy", "access", "add", "--stage", "sender", "--pattern", "spammer@bad.example",
        "--action", "deny", "--code", "554", "--enhanced", "5.7.1", "--text",
        "Sender blocked by policy")
    ctl("policy", "access", "add", "--stage", "recipient", "--pattern", f"bob@{DOMAIN}",
        "--action", "tempfail", "--code", "450", "--enhanced", "4.7.1", "--text",
        "Mailbox busy, try again later")
    if alpha_script is not None:
        ctl("policy", "plugin", "add", "--name", "alpha", "--path", test_plugin("alpha"),
            "--settings", '{"script":"%s"}' % alpha_script, "--fail-mode", "tempfail",
            "--timeout-ms", "2000")
    return ctl


def message(subject, rcpt=base.USER):
    return message_data(f"From: <sender@sender.example>\r\nTo: <{rcpt}>\r\n"
                        f"Subject: {subject}\r\n\r\nhello from the milter test\r\n")


class UnixMilterGateway(Gateway):
    """A milter-mode gateway on a unix socket: ready when it logs 'milter listening on unix:'
    (Gateway.start() waits for an ADDR:PORT)."""

    def start(self):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        self.wait_for_log(r"milter listening on unix:", timeout=self.start_timeout)
        return self


class MilterModeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        base.require_binary()
        cls.tmpdir = util.make_tempdir("mailgate-milter-")
        cls.milter_port = util.free_port()
        # No milter_*_macros here: mailgate asks for the macros it needs itself.
        cls.milter_postfix = milter_postfix(
            os.path.join(cls.tmpdir, "milter-postfix"), cls.milter_port, users=base.USERS,
            hostname="mta.mailgate.test", extra_main={"non_smtpd_milters": "$smtpd_milters"})
        cls.plain_postfix = PostfixInstance(os.path.join(cls.tmpdir, "plain-postfix"),
                                            users=base.USERS)
        start_all([cls.milter_postfix, cls.plain_postfix], cls.tmpdir)

    @classmethod
    def tearDownClass(cls):
        stop_all([cls.milter_postfix, cls.plain_postfix], cls.tmpdir)

    # ------------------------------------------------------------------ helpers
    def policy(self, alpha_script=None):
        d = util.make_tempdir("mailgate-milter-policy-")
        self.addCleanup(util.remove_tree, d)
        return make_policy(d, alpha_script)

    def _start(self, gw):
        self.addCleanup(self._dump_on_failure, gw)
        gw.start()
        self.addCleanup(gw.stop)
        return gw

    def start_milter(self, ctl):
        gw = Gateway(listen=None, flags=[
            "--mode=milter", f"--milter_socket=inet:{self.milter_port}@127.0.0.1",
            f"--policy_db={ctl.db}", "--policy_poll_ms=100", "--milter_profile=inbound"])
        return self._start(gw)

    def start_proxy(self, ctl):
        gw = Gateway(backend_port=self.plain_postfix.port,
                     flags=[f"--policy_db={ctl.db}", "--policy_poll_ms=100"])
        return self._start(gw)

    def _dump_on_failure(self, gw):
        result = getattr(getattr(self, "_outcome", None), "result", None)
        failed = result is not None and (result.failures or result.errors)
        if failed or os.environ.get("MAILGATE_VERBOSE"):
            print(f"\n--- mailgate log ({' '.join(gw.argv)}):\n{gw.log_text()[-8000:]}\n"
                  f"--- milter postfix maillog (tail):\n{self.milter_postfix.maillog()[-4000:]}")

    def client(self, host, port):
        c = RawSmtp(host, port)
        self.addCleanup(c.close)
        self.assertEqual(c.greeting.code, 220, c.greeting)
        r = c.cmd("EHLO client.example")
        self.assertEqual(r.code, 250, r)
        return c

    def delivered(self, postfix, user, subject):
        for m in postfix.messages(user):
            if f"Subject: {subject}".encode() in m:
                return m.decode("utf-8", "replace")
        return None

    def wait_delivered(self, postfix, user, subject):
        util.wait_until(lambda: self.delivered(postfix, user, subject) is not None, 20,
                        what=f"delivery of {subject!r} to {user}\n{postfix.maillog()[-3000:]}")
        return self.delivered(postfix, user, subject)

    # ------------------------------------------------------------------ Postfix + milter
    def test_reject_tempfail_header_and_rewrite_through_postfix(self):
        ctl = self.policy("rcpt=rewrite:alice@example.test;eom=header:X-Mailgate-Milter:checked")
        gw = self.start_milter(ctl)
        pf = self.milter_postfix
        c = self.client(pf.host, pf.port)
        # REJECT at MAIL: Postfix gives the plugin's reply.
        r = c.cmd("MAIL FROM:<spammer@bad.example>")
        self.assertEqual(r.wire, "554 5.7.1 Sender blocked by policy")
        # TEMPFAIL at RCPT refuses that recipient only; the rewritten one is accepted.
        self.assertEqual(c.cmd("MAIL FROM:<sender@sender.example>").code, 250)
        r = c.cmd(f"RCPT TO:<bob@{DOMAIN}>")
        self.assertEqual(r.wire, "450 4.7.1 Mailbox busy, try again later")
        r = c.cmd(f"RCPT TO:<{base.USER}>")
        self.assertEqual(r.code, 250, r)
        self.assertEqual(c.cmd("DATA").code, 354)
        r = c.data(message("milter rewrite"))
        self.assertEqual(r.code, 250, r)
        self.assertIn("queued as", r.text)
        queue_id = r.text.rsplit(" ", 1)[1]
        # Delivered to the rewritten recipient, with the header the plugin added.
        m = self.wait_delivered(pf, f"alice@{DOMAIN}", "milter rewrite")
        self.assertIn("\nX-Mailgate-Milter: checked\n", m.replace("\r\n", "\n"))
        self.assertIsNone(self.delivered(pf, base.USER, "milter rewrite"))
        self.assertIsNone(self.delivered(pf, f"bob@{DOMAIN}", "milter rewrite"))
        c.quit()
        # mailgate saw the queue id (macro i) and logged the edits it asked for.
        line = gw.wait_for_log(rf"milter client=.* queue_id={queue_id} status=accepted.*$").group(0)
        self.assertIn("header_edits=1", line)
        self.assertIn("rcpt_added=1 rcpt_deleted=1", line)
        self.assertIn(f"to=<alice@{DOMAIN}>", line)
        # The connect macros it asked for: the address and port of Postfix's smtpd.
        gw.wait_for_log(rf"milter connect from unknown\[127\.0\.0\.1\]:\d+ "
                        rf"to 127\.0\.0\.1:{pf.port} ")

    def test_end_of_message_reject_and_discard(self):
        ctl = self.policy("eom=reject:550:5.7.0:Content refused by the milter test")
        gw = self.start_milter(ctl)
        pf = self.milter_postfix
        c = self.client(pf.host, pf.port)
        self.assertEqual(c.cmd("MAIL FROM:<sender@sender.example>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<other@{DOMAIN}>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        r = c.data(message("milter eom reject", f"other@{DOMAIN}"))
        self.assertEqual(r.wire, "550 5.7.0 Content refused by the milter test")
        c.quit()

        # A live policy edit: connections made after the reload run the new chain.
        mark = log_mark(gw)
        ctl.hand_edit("UPDATE plugins SET settings = ? WHERE name = 'alpha'",
                      ('{"script":"rcpt=discard"}',))
        wait_policy_applied(gw, mark)
        c = self.client(pf.host, pf.port)
        self.assertEqual(c.cmd("MAIL FROM:<sender@sender.example>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<other@{DOMAIN}>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        r = c.data(message("milter discard", f"other@{DOMAIN}"))
        self.assertEqual(r.code, 250, r)
        c.quit()
        gw.wait_for_log(r"status=discarded .* plugin=alpha$")
        for subject in ("milter eom reject", "milter discard"):
            self.assertIsNone(self.delivered(pf, f"other@{DOMAIN}", subject))
        self.assertIn("milter-discard", pf.maillog())

    def test_parallel_connections(self):
        """Postfix's smtpd processes hold several milter connections at once; each runs its
        own session (blocking plugin calls on the shared worker pool) and every message is
        delivered with its edit."""
        ctl = self.policy("mail=sleep:50;eom=header:X-Mailgate-Milter:checked")
        gw = self.start_milter(ctl)
        pf = self.milter_postfix
        n = 8
        errors = []

        def send(i):
            try:
                c = RawSmtp(pf.host, pf.port, timeout=30)
                try:
                    for cmd, want in (("EHLO client.example", 250),
                                      ("MAIL FROM:<sender@sender.example>", 250),
                                      (f"RCPT TO:<other@{DOMAIN}>", 250), ("DATA", 354)):
                        r = c.cmd(cmd)
                        if r.code != want:
                            raise AssertionError(f"{cmd}: {r}")
                    r = c.data(message(f"parallel {i}", f"other@{DOMAIN}"))
                    if r.code != 250:
                        raise AssertionError(f"end of data: {r}")
                    c.quit()
                finally:
                    c.close()
            except Exception as e:  # reported below, with the connection's number
                errors.append(f"connection {i}: {e!r}")

        threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        for i in range(n):
            m = self.wait_delivered(pf, f"other@{DOMAIN}", f"parallel {i}")
            self.assertIn("\nX-Mailgate-Milter: checked\n", m.replace("\r\n", "\n"))
        ids = {m.group(1) for m in re.finditer(r"(\w+)\.1: milter client=.*status=accepted",
                                                 gw.log_text())}
        self.assertEqual(len(ids), n)

    def test_unix_socket_with_mode(self):
        """--milter_socket=unix:PATH with --milter_socket_mode=0666: Postfix's smtpd (user
        postfix) connects to the socket mailgate (root) made."""
        d = util.make_tempdir("mailgate-milter-sock-")
        self.addCleanup(util.remove_tree, d)
        path = os.path.join(d, "milter.sock")
        ctl = self.policy("eom=header:X-Mailgate-Milter:unix")
        gw = UnixMilterGateway(listen=None, flags=[
            "--mode=milter", f"--milter_socket=unix:{path}", "--milter_socket_mode=0666",
            f"--policy_db={ctl.db}"])
        self._start(gw)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o666)
        pf = PostfixInstance(os.path.join(d, "postfix"), users=base.USERS,
                             hostname="unix.mailgate.test",
                             extra_main={"smtpd_milters": f"unix:{path}",
                                         "milter_default_action": "tempfail"})
        self.addCleanup(pf.stop)
        pf.start()
        c = self.client(pf.host, pf.port)
        self.assertEqual(c.cmd("MAIL FROM:<sender@sender.example>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        self.assertEqual(c.data(message("over a unix socket")).code, 250)
        c.quit()
        m = self.wait_delivered(pf, base.USER, "over a unix socket")
        self.assertIn("\nX-Mailgate-Milter: unix\n", m.replace("\r\n", "\n"))

    def test_mailgate_as_the_milter_of_mailgate(self):
        """The proxy's milter client plugin (plugins/milter) talking to milter mode: two
        independent implementations of the protocol agree. The proxy's client gets milter
        mode's refusals verbatim and the plain Postfix delivers its edits."""
        builtin_plugin("milter")
        milter = self.start_milter(self.policy(
            "rcpt=rewrite:alice@example.test;eom=header:X-Mailgate-Milter:via-plugin"))
        d = util.make_tempdir("mailgate-milter-client-")
        self.addCleanup(util.remove_tree, d)
        front = PolicyCtl(os.path.join(d, "policy.db"))
        front.init()
        front("policy", "plugin", "add", "--name", "milter", "--path", "milter.so", "--settings",
              '{"milters":[{"name":"mailgate","socket":"inet:%d@127.0.0.1"}]}' % self.milter_port)
        proxy = self.start_proxy(front)
        c = self.client(proxy.host, proxy.port)
        self.assertEqual(c.cmd("MAIL FROM:<spammer@bad.example>").wire,
                         "554 5.7.1 Sender blocked by policy")
        self.assertEqual(c.cmd("MAIL FROM:<sender@sender.example>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<bob@{DOMAIN}>").wire,
                         "450 4.7.1 Mailbox busy, try again later")
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        self.assertEqual(c.cmd("DATA").code, 354)
        self.assertEqual(c.data(message("milter of mailgate")).code, 250)
        c.quit()
        m = self.wait_delivered(self.plain_postfix, f"alice@{DOMAIN}", "milter of mailgate")
        self.assertIn("\nX-Mailgate-Milter: via-plugin\n", m.replace("\r\n", "\n"))
        self.assertIsNone(self.delivered(self.plain_postfix, base.USER, "milter of mailgate"))
        milter.wait_for_log(r"status=accepted .*header_edits=1 rcpt_added=1 rcpt_deleted=1")

    # ------------------------------------------------------------------ both modes
    CONVERSATIONS = [
        # (name, sender, recipients, subject or None for no DATA)
        ("blocked sender", "spammer@bad.example", [base.USER], None),
        ("tempfailed and accepted recipient", "sender@sender.example",
         [f"bob@{DOMAIN}", base.USER], "same verdicts 1"),
        ("tempfailed recipient only", "sender@sender.example", [f"bob@{DOMAIN}"], None),
        ("plain delivery", "someone@sender.example", [f"other@{DOMAIN}"], "same verdicts 2"),
    ]

    def converse(self, host, port, sender, rcpts, subject):
        """One conversation; returns the replies that carry verdicts, normalised."""
        out = []

        def norm(r):
            if r.code < 400:  # acceptances: queue ids and wording differ between MTAs
                return (r.code, r.enhanced)
            return (r.code, r.enhanced, r.text)

        c = self.client(host, port)
        r = c.cmd(f"MAIL FROM:<{sender}>")
        out.append(("MAIL", norm(r)))
        if r.code == 250:
            ok = 0
            for rcpt in rcpts:
                r = c.cmd(f"RCPT TO:<{rcpt}>")
                out.append((f"RCPT {rcpt}", norm(r)))
                ok += r.code == 250
            if subject is not None and ok:
                r = c.cmd("DATA")
                out.append(("DATA", r.code))
                if r.code == 354:
                    out.append(("end of data", norm(c.data(message(subject)))))
        c.quit()
        return out

    def test_same_policy_same_verdicts_as_proxy_and_as_milter(self):
        ctl = self.policy("rcpt=rewrite:alice@example.test;eom=header:X-Mailgate-Milter:checked")
        proxy = self.start_proxy(ctl)
        self.start_milter(ctl)
        for name, sender, rcpts, subject in self.CONVERSATIONS:
            with self.subTest(conversation=name):
                via_proxy = self.converse(proxy.host, proxy.port, sender, rcpts, subject)
                via_milter = self.converse(self.milter_postfix.host, self.milter_postfix.port,
                                           sender, rcpts, subject)
                self.assertEqual(via_proxy, via_milter)
        # Both delivered the same messages to the same (rewritten) mailbox, edited alike.
        for subject in ("same verdicts 1", "same verdicts 2"):
            for pf in (self.plain_postfix, self.milter_postfix):
                m = self.wait_delivered(pf, f"alice@{DOMAIN}", subject)
                self.assertIn("\nX-Mailgate-Milter: checked\n", m.replace("\r\n", "\n"))
        for pf in (self.plain_postfix, self.milter_postfix):
            for user in (base.USER, f"bob@{DOMAIN}", f"other@{DOMAIN}"):
                for subject in ("same verdicts 1", "same verdicts 2"):
                    self.assertIsNone(self.delivered(pf, user, subject), f"{user} at {pf.dir}")

    def test_header_insert_and_remove_same_both_ways(self):
        """authres inserts its field at the top and removes a forged one wherever it is; the
        delivered header (the MTAs' own trace fields aside) is the same in both modes."""
        ctl = self.policy()
        ctl("policy", "plugin", "add", "--name", "authres", "--path", "authres.so",
            "--settings", '{"authserv_id":"mx.mailgate.test"}')
        proxy = self.start_proxy(ctl)
        self.start_milter(ctl)
        subject = "milter header edits"
        raw = (f"Authentication-Results: mx.mailgate.test; spf=pass (forged)\r\n"
               f"From: <sender@sender.example>\r\nTo: <{base.USER}>\r\n"
               f"Subject: {subject}\r\nDate: Sun, 22 Nov 2026 05:00:00 +0000\r\n"
               f"Message-ID: <edits@sender.example>\r\n"
               f"Authentication-Results: other.example; dkim=pass\r\n"
               f"Authentication-Results: MX.MAILGATE.TEST; dkim=pass (forged too)\r\n"
               f"X-Keep: folded\r\n\tsecond line\r\n\r\nbody\r\n")
        for host, port in ((proxy.host, proxy.port),
                           (self.milter_postfix.host, self.milter_postfix.port)):
            c = self.client(host, port)
            self.assertEqual(c.cmd("MAIL FROM:<sender@sender.example>").code, 250)
            self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
            self.assertEqual(c.cmd("DATA").code, 354)
            r = c.data(message_data(raw))
            self.assertEqual(r.code, 250, r)
            c.quit()

        def fields(pf):
            text = self.wait_delivered(pf, base.USER, subject).replace("\r\n", "\n")
            head = text.split("\n\n", 1)[0]
            out = []
            for line in head.split("\n"):
                if line[:1] in (" ", "\t") and out:
                    out[-1] += "\n" + line
                else:
                    out.append(line)
            trace = ("received:", "return-path:", "delivered-to:", "x-original-to:")
            return [f for f in out if not f.lower().startswith(trace)]

        via_proxy = fields(self.plain_postfix)
        via_milter = fields(self.milter_postfix)
        self.assertEqual(via_proxy, via_milter)
        self.assertEqual(via_milter[0], "Authentication-Results: mx.mailgate.test; none")
        self.assertIn("Authentication-Results: other.example; dkim=pass", via_milter)
        self.assertNotIn("forged", "\n".join(via_milter))
        self.assertIn("X-Keep: folded\n\tsecond line", via_milter)

    def test_envelope_and_header_changes_same_both_ways(self):
        """At the end of the message a plugin changes the sender, adds and removes a
        recipient, changes the Subject and removes every X-Drop field: smfi_chgfrom,
        smfi_addrcpt, smfi_delrcpt and smfi_chgheader give what proxy mode relays."""
        ctl = self.policy()
        settings = ('{"sender":"bounces@example.test","add":"alice@example.test",'
                    '"remove":"other@example.test","subject_prefix":"[tagged]",'
                    '"remove_header":"X-Drop"}')
        ctl("policy", "plugin", "add", "--name", "edits", "--path", test_plugin("edits"),
            "--settings", settings)
        proxy = self.start_proxy(ctl)
        milter = self.start_milter(ctl)
        subject = "milter envelope edits"
        raw = (f"X-Drop: one\r\nFrom: <sender@sender.example>\r\nTo: <{base.USER}>\r\n"
               f"Subject: {subject}\r\nX-Drop: two\r\nDate: Sun, 22 Nov 2026 05:00:00 +0000\r\n"
               f"Message-ID: <envelope@sender.example>\r\n\r\nbody\r\n")
        for host, port in ((proxy.host, proxy.port),
                           (self.milter_postfix.host, self.milter_postfix.port)):
            c = self.client(host, port)
            self.assertEqual(c.cmd("MAIL FROM:<sender@sender.example>").code, 250)
            self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
            self.assertEqual(c.cmd(f"RCPT TO:<other@{DOMAIN}>").code, 250)
            self.assertEqual(c.cmd("DATA").code, 354)
            r = c.data(message_data(raw))
            self.assertEqual(r.code, 250, r)
            c.quit()
        milter.wait_for_log(r"status=accepted .*header_edits=3 new_from=<bounces@example.test> "
                            r"rcpt_added=1 rcpt_deleted=1")
        tagged = f"[tagged] {subject}"
        results = {}
        for pf in (self.plain_postfix, self.milter_postfix):
            for user in (base.USER, f"alice@{DOMAIN}"):
                text = self.wait_delivered(pf, user, tagged).replace("\r\n", "\n")
                head = text.split("\n\n", 1)[0].split("\n")
                self.assertEqual(head[0], "Return-Path: <bounces@example.test>", pf.dir)
                kept = [l for l in head if not l.lower().startswith(
                    ("received:", "return-path:", "delivered-to:", "x-original-to:", " ", "\t"))]
                results.setdefault(user, []).append(kept)
            self.assertIsNone(self.delivered(pf, f"other@{DOMAIN}", tagged), pf.dir)
        for user, (via_proxy, via_milter) in results.items():
            self.assertEqual(via_proxy, via_milter, user)
            self.assertNotIn("X-Drop", "\n".join(via_milter))


if __name__ == "__main__":
    unittest.main()
