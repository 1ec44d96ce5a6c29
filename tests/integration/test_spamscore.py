"""The spamscore plugin (plugins/spamscore/) in the real gateway, in front of a real Postfix
that serves two domains (example.test, strict.test).

Owns, end to end through SMTP: GTUBE refused 550 5.7.1 at end of data and never seen by
Postfix; thresholds per recipient domain from spam_thresholds (a message to a strict domain
refused, the same message to a lenient one delivered, both at once: the strictest); delivered
mail carrying X-Spam-Score / X-Spam-Status / X-Spam-Symbols that explain the verdict (a forged
X-Spam-Status from the client removed); a spam_rules row added while the gateway runs takes
effect without a restart; a row whose pattern does not compile is refused with the row named
(the gateway's log, and mailgatectl on its next edit), and the rules in force before keep
applying until the row is fixed. Rows are written with SQL as an admin would (PolicyCtl.hand_edit); the
gateway notices the change itself (--policy_poll_ms).
"""

import os
import re
import uuid

from mgtest import base, util
from mgtest.policyctl import PolicyCtl, builtin_plugin, log_mark, wait_policy_applied
from mgtest.postfix import PostfixInstance
from mgtest.smtpclient import message_data

STRICT = "strict.test"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
THRESHOLDS = ("INSERT INTO spam_thresholds (domain, add_header, tempfail, reject) VALUES "
              "('*', 5, NULL, 15), ('strict.test', 1, NULL, 2)")


def token():
    return uuid.uuid4().hex[:12]


class SpamScoreCase(base.PostfixCase):

    @classmethod
    def setUpClass(cls):
        base.require_binary()
        cls.tmpdir = util.make_tempdir()
        cls.postfix = PostfixInstance(os.path.join(cls.tmpdir, "postfix"),
                                      domains=(base.DOMAIN, STRICT), users=("user",))
        try:
            cls.postfix.start()
        except BaseException:
            cls.postfix.stop()
            util.remove_tree(cls.tmpdir)
            raise

    def policy(self, *rows):
        builtin_plugin("spamscore")
        d = util.make_tempdir("mailgate-spamscore-policy-")
        self.addCleanup(util.remove_tree, d)
        ctl = PolicyCtl(os.path.join(d, "policy.db"))
        ctl.init()
        ctl("policy", "domain", "add", base.DOMAIN)
        ctl("policy", "domain", "add", STRICT)
        ctl("policy", "plugin", "add", "--name", "spamscore", "--path", "spamscore.so",
            "--fail-mode", "tempfail", "--timeout-ms", "5000")
        for sql in (THRESHOLDS, *rows):
            ctl.hand_edit(sql)
        return ctl

    def gateway(self, ctl):
        gw = self.start_gateway(flags=[f"--policy_db={ctl.db}", "--policy_poll_ms=100"])
        gw.wait_for_log(r"plugin chains ready \(\d+ profiles, 1 plugin instances\)")
        return gw

    def send(self, gw, subject, body, rcpts=(base.USER,), extra_headers="", date=True):
        """One message; the reply to its end of data."""
        c = self.connect(gw, source_address=("127.0.0.2", 0))
        self.assertEqual(c.greeting.code, 220, c.greeting)
        self.assertEqual(c.cmd("EHLO client.example").code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<sender@example.org>").code, 250)
        for r in rcpts:
            reply = c.cmd(f"RCPT TO:<{r}>")
            self.assertEqual(reply.code, 250, reply)
        self.assertEqual(c.cmd("DATA").code, 354)
        header = (f"From: Sender <sender@example.org>\r\nTo: {', '.join(rcpts)}\r\n"
                  f"Subject: {subject}\r\nMessage-ID: <{subject}@example.org>\r\n")
        if date:
            header += "Date: " + util_date() + "\r\n"
        reply = c.data(message_data((header + extra_headers + "\r\n" + body).encode()))
        c.quit()
        return reply

    def delivered(self, subject, user=base.USER):
        """The delivered message with this Subject (waits for it), as text."""
        def find():
            for m in self.postfix.messages(user):
                text = m.decode("utf-8", "replace")
                if f"Subject: {subject}" in text:
                    return text
            return None
        return util.wait_until(find, 20, what=f"delivery of {subject!r} to {user}\n"
                                             f"{self.postfix.maillog()[-3000:]}")

    def assert_never_reached_postfix(self, subject):
        for user in (base.USER, f"user@{STRICT}"):
            for m in self.postfix.messages(user):
                self.assertNotIn(subject.encode(), m)
        self.assertNotIn(subject, self.postfix.maillog())

    @staticmethod
    def header(message, name):
        """The unfolded value of the first field `name` in the delivered message's header."""
        head = message.split("\n\n", 1)[0].replace("\r\n", "\n")
        m = re.search(rf"^{re.escape(name)}:[ \t]*((?:.*)(?:\n[ \t].*)*)", head,
                      re.MULTILINE | re.IGNORECASE)
        return None if m is None else re.sub(r"\n[ \t]+", " ", m.group(1)).strip()

    @staticmethod
    def count(message, name):
        head = message.split("\n\n", 1)[0].replace("\r\n", "\n")
        return len(re.findall(rf"^{re.escape(name)}:", head, re.MULTILINE | re.IGNORECASE))


def util_date():
    import email.utils
    return email.utils.formatdate(usegmt=True)


class GtubeTest(SpamScoreCase):

    def test_gtube_is_refused_and_never_reaches_postfix(self):
        gw = self.gateway(self.policy())
        subject = f"gtube-{token()}"
        r = self.send(gw, subject, f"This is the GTUBE\r\n{GTUBE}\r\n")
        self.assertEqual(r.wire, "550 5.7.1 Message rejected as spam: score 1000.0 reaches 15.0 "
                                 "(GTUBE)")
        gw.wait_for_log(r"spam score 1000\.0 \(Yes, score=1000\.0 required=5\.0\) reject; "
                        r"symbols: GTUBE")
        gw.wait_for_log(r"status=rejected reply=\"550 5\.7\.1 Message rejected as spam: score "
                        r"1000\.0 reaches 15\.0 \(GTUBE\)\" score=1000\.00 .*plugin=spamscore")
        # Something delivered after it proves Postfix had the chance to show it.
        after = f"after-{token()}"
        self.assertEqual(self.send(gw, after, "hello\r\n").code, 250)
        self.delivered(after)
        self.assert_never_reached_postfix(subject)


class HeadersTest(SpamScoreCase):

    def test_delivered_mail_explains_its_score(self):
        gw = self.gateway(self.policy(
            "INSERT INTO spam_rules (name, kind, pattern, score, description) VALUES "
            "('LOTTERY', 'body', '(?i)lottery', 2.5, 'talks about a lottery')"))
        subject = f"headers-{token()}"
        r = self.send(gw, subject, "You won the LOTTERY!\r\n", date=False,
                      extra_headers="X-Spam-Status: No, score=-99 (forged)\r\n")
        self.assertEqual(r.code, 250, r)
        m = self.delivered(subject)
        self.assertEqual(self.header(m, "X-Spam-Score"), "3.5")
        self.assertEqual(self.header(m, "X-Spam-Status"), "No, score=3.5 required=5.0")
        self.assertEqual(self.count(m, "X-Spam-Status"), 1, "the forged field is removed")
        self.assertEqual(self.header(m, "X-Spam-Symbols"),
                         "LOTTERY(2.5)[talks about a lottery], MISSING_DATE(1.0)[no Date header "
                         "field]")

    def test_marked_as_spam_above_add_header(self):
        gw = self.gateway(self.policy(
            "INSERT INTO spam_rules (name, kind, pattern, score, description) VALUES "
            "('PILLS', 'subject', '(?i)pills', 6, 'pills in the subject')"))
        subject = f"Pills-{token()}"
        self.assertEqual(self.send(gw, subject, "buy\r\n").code, 250)
        m = self.delivered(subject)
        self.assertEqual(self.header(m, "X-Spam-Status"), "Yes, score=6.0 required=5.0")
        self.assertEqual(self.header(m, "X-Spam-Symbols"), "PILLS(6.0)[pills in the subject]")


class ThresholdsTest(SpamScoreCase):

    def test_thresholds_per_recipient_domain(self):
        gw = self.gateway(self.policy(
            "INSERT INTO spam_rules (name, kind, pattern, score, description) VALUES "
            "('CASINO', 'body', '(?i)online casino', 3, 'mentions an online casino')"))
        body = "Visit our online casino today\r\n"
        # example.test has the '*' row: 3 is below add_header 5, delivered and marked No.
        lenient = f"lenient-{token()}"
        self.assertEqual(self.send(gw, lenient, body).code, 250)
        self.assertEqual(self.header(self.delivered(lenient), "X-Spam-Status"),
                         "No, score=3.0 required=5.0")
        # strict.test refuses from 2.
        strict = f"strict-{token()}"
        r = self.send(gw, strict, body, rcpts=(f"user@{STRICT}",))
        self.assertEqual(r.wire, "550 5.7.1 Message rejected as spam: score 3.0 reaches 2.0 "
                                 "(CASINO)")
        # One end of data for both domains: the strictest threshold decides.
        both = f"both-{token()}"
        r = self.send(gw, both, body, rcpts=(base.USER, f"user@{STRICT}"))
        self.assertEqual((r.code, r.enhanced), (550, "5.7.1"), r)
        # Without the rule's words, strict.test takes it.
        clean = f"clean-{token()}"
        self.assertEqual(self.send(gw, clean, "hello\r\n", rcpts=(f"user@{STRICT}",)).code, 250)
        self.assertEqual(self.header(self.delivered(clean, f"user@{STRICT}"), "X-Spam-Status"),
                         "No, score=0.0 required=1.0")
        self.assert_never_reached_postfix(strict)
        self.assert_never_reached_postfix(both)

    def test_tempfail_step(self):
        gw = self.gateway(self.policy(
            "UPDATE spam_thresholds SET add_header = 1, tempfail = 2, reject = 50 "
            "WHERE domain = '*'",
            "INSERT INTO spam_rules (name, kind, header, pattern, score) VALUES "
            "('BULK', 'header', 'X-Mailer', 'BulkBlaster', 2.5)"))
        subject = f"tempfail-{token()}"
        r = self.send(gw, subject, "hi\r\n", extra_headers="X-Mailer: BulkBlaster 3\r\n")
        self.assertEqual(r.wire, "451 4.7.1 Message looks like spam: score 2.5 reaches 2.0 "
                                 "(BULK); try again later")
        self.assert_never_reached_postfix(subject)


class LiveRulesTest(SpamScoreCase):

    def test_rule_added_while_running_takes_effect(self):
        ctl = self.policy()
        gw = self.gateway(ctl)
        word = f"zork{token()}"
        before = f"before-{token()}"
        self.assertEqual(self.send(gw, before, f"a {word} here\r\n").code, 250)
        self.assertEqual(self.header(self.delivered(before), "X-Spam-Symbols"), "none")
        mark = log_mark(gw)
        ctl.hand_edit("INSERT INTO spam_rules (name, kind, pattern, score, description) "
                      "VALUES ('ZORK', 'body', ?, 20, 'the zork word')", (word,))
        wait_policy_applied(gw, mark)
        after = f"after-{token()}"
        r = self.send(gw, after, f"a {word} here\r\n")
        self.assertEqual(r.wire, "550 5.7.1 Message rejected as spam: score 20.0 reaches 15.0 "
                                 "(ZORK)")
        gw.wait_for_log(r"spamscore: compiled 1 spam_rules", start=mark)

    def test_bad_regex_keeps_the_old_rules_and_names_the_row(self):
        ctl = self.policy(
            "INSERT INTO spam_rules (name, kind, pattern, score, description) VALUES "
            "('OLD_RULE', 'body', 'oldword', 1.5, 'the old rule')")
        gw = self.gateway(ctl)
        mark = log_mark(gw)
        ctl.hand_edit_script(
            "BEGIN; INSERT INTO spam_rules (name, kind, pattern, score) VALUES "
            "('NEW_RULE', 'body', 'newword', 4);"
            "INSERT INTO spam_rules (name, kind, pattern, score) VALUES ('FOO', 'body', '(abc', 1);"
            "COMMIT;")
        gw.wait_for_log(r"policy: reload of .* refused, keeping snapshot \d+: spam_rules row "
                        r"'FOO': pattern does not compile: missing \): \(abc", start=mark)
        # mailgatectl names the row too (an unrelated edit reports the problem already there).
        p = ctl.run("policy", "domain", "add", "third.test")
        self.assertIn("spam_rules row 'FOO': pattern does not compile: missing ): (abc",
                      p.stdout + p.stderr)
        subject = f"kept-{token()}"
        self.assertEqual(self.send(gw, subject, "oldword and newword\r\n").code, 250)
        self.assertEqual(self.header(self.delivered(subject), "X-Spam-Symbols"),
                         "OLD_RULE(1.5)[the old rule]")
        # Fixed: the new rules apply.
        mark = log_mark(gw)
        ctl.hand_edit("UPDATE spam_rules SET pattern = '\\(abc' WHERE name = 'FOO'")
        wait_policy_applied(gw, mark)
        fixed = f"fixed-{token()}"
        self.assertEqual(self.send(gw, fixed, "oldword and newword\r\n").code, 250)
        self.assertEqual(self.header(self.delivered(fixed), "X-Spam-Symbols"),
                         "NEW_RULE(4.0)[spam_rules row NEW_RULE], OLD_RULE(1.5)[the old rule]")
