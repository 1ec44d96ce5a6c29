"""The `access` plugin (plugins/access/) in the real gateway, in front of a real Postfix.

Owns: anti-relay with a real client through the gateway to Postfix (a non-relay client's
recipient outside the local domains is refused 554 5.7.1 by the gateway and never reaches
Postfix; a relay network, added live, lets it through to Postfix), and access rules
(allow/deny/tempfail at client, helo, sender, sender_domain, recipient, recipient_domain)
whose replies reach the client verbatim. The policy database is written with mailgatectl
before the gateway starts, or while it runs. Clients connect from 127.0.0.x source
addresses, so the client address the plugin sees is chosen by the test; Postfix trusts
127.0.0.0/8 (mynetworks) and learns the real client through XCLIENT.
"""

import os
import unittest
import uuid

from mgtest import base, util
from mgtest.policyctl import PolicyCtl, builtin_plugin, log_mark, wait_policy_applied
from mgtest.smtpclient import message_data

DOMAIN = base.DOMAIN  # example.test: Postfix's virtual domain and the gateway's local domain


def token():
    return uuid.uuid4().hex[:12]


class AccessCase(base.PostfixCase):
    """Each test writes its own policy database and starts its own gateway."""

    def policy(self, networks=(), rules=(), access_settings=None):
        """A fresh policy db: local domain example.test, the access plugin (by its path
        relative to --plugin_dir), the relay networks and the access rules given (each rule a
        list of `policy access add` arguments)."""
        builtin_plugin("access")  # a clear error when access.so was not built
        d = util.make_tempdir("mailgate-access-policy-")
        self.addCleanup(util.remove_tree, d)
        ctl = PolicyCtl(os.path.join(d, "policy.db"))
        ctl.init()
        ctl("policy", "domain", "add", DOMAIN)
        add = ["policy", "plugin", "add", "--name", "access", "--path", "access.so",
               "--fail-mode", "tempfail", "--timeout-ms", "1000"]
        if access_settings is not None:
            add += ["--settings", access_settings]
        ctl(*add)
        for cidr in networks:
            ctl("policy", "network", "add", cidr)
        for rule in rules:
            ctl("policy", "access", "add", *rule)
        return ctl

    def gateway(self, ctl):
        gw = self.start_gateway(flags=[f"--policy_db={ctl.db}", "--policy_poll_ms=100"])
        gw.wait_for_log(r"plugin chains ready \(\d+ profiles, 1 plugin instances\)")
        return gw

    def client(self, gw, source="127.0.0.2", helo="client.example"):
        c = self.connect(gw, source_address=(source, 0))
        self.assertEqual(c.greeting.code, 220, c.greeting)
        r = c.cmd(f"EHLO {helo}")
        self.assertEqual(r.code, 250, r)
        return c

    def send_message(self, c, subject, rcpt=base.USER):
        """DATA for an open transaction; returns the final reply."""
        r = c.cmd("DATA")
        self.assertEqual(r.code, 354, r)
        return c.data(message_data(f"From: a@example.org\r\nTo: <{rcpt}>\r\n"
                                   f"Subject: {subject}\r\n\r\nhello\r\n"))

    def delivered_subjects(self, user=base.USER):
        out = []
        for m in self.postfix.messages(user):
            for line in m.split(b"\r\n" if b"\r\n" in m else b"\n"):
                if line.lower().startswith(b"subject:"):
                    out.append(line.split(b":", 1)[1].strip().decode())
        return out

    def wait_delivered(self, subject, user=base.USER):
        util.wait_until(lambda: subject in self.delivered_subjects(user), 20,
                        what=f"delivery of {subject!r} to {user}\n{self.postfix.maillog()[-3000:]}")

    def assert_postfix_answered(self, reply, rcpt):
        """`reply` to RCPT TO:<rcpt> is the test Postfix's own refusal of a domain it does not
        deliver: the gateway passed the recipient on. Postfix logged it too."""
        self.assertEqual(reply.wire, f"550 5.1.1 <{rcpt}>: Recipient address rejected: mail for "
                                     f"other domains is not delivered here")
        self.wait_postfix_logged(f"reject: RCPT from unknown[127.0.0.2]: 550 5.1.1 <{rcpt}>")

    def wait_postfix_logged(self, text, timeout=20):
        util.wait_until(lambda: text in self.postfix.maillog(), timeout,
                        what=f"{text!r} in postfix's maillog\n{self.postfix.maillog()[-3000:]}")


class AntiRelayTest(AccessCase):
    def test_local_recipient_is_delivered(self):
        gw = self.gateway(self.policy())
        c = self.client(gw)
        self.assertEqual(c.cmd("MAIL FROM:<sender@elsewhere.example>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        subject = f"local-{token()}"
        r = self.send_message(c, subject)
        self.assertEqual(r.code, 250, r)
        c.quit()
        self.wait_delivered(subject)

    def test_relay_is_refused_and_postfix_never_sees_the_recipient(self):
        gw = self.gateway(self.policy())
        c = self.client(gw)
        t = token()
        denied = f"denied-{t}@outside.example"
        self.assertEqual(c.cmd("MAIL FROM:<sender@elsewhere.example>").code, 250)
        r = c.cmd(f"RCPT TO:<{denied}>")
        self.assertEqual(r.code, 554, r)
        self.assertEqual(r.wire, f"554 5.7.1 <{denied}>: Relay access denied")
        # Upper case, and routing through a local domain, are relaying too.
        for rcpt in (f"Denied-{t}@OUTSIDE.Example", f"denied-{t}%outside.example@{DOMAIN}",
                     f"outside.example!denied-{t}@{DOMAIN}"):
            r = c.cmd(f"RCPT TO:<{rcpt}>")
            self.assertEqual((r.code, r.enhanced), (554, "5.7.1"), f"{rcpt}: {r}")
            self.assertIn("Relay access denied", r.text)
        # The transaction goes on with the local recipient only.
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        subject = f"after-denied-{t}"
        self.assertEqual(self.send_message(c, subject).code, 250)
        c.quit()
        self.wait_delivered(subject)
        self.wait_postfix_logged(f"to=<{base.USER}>")
        self.assertNotIn(t, self.postfix.maillog().replace(subject, ""),
                         "a refused recipient reached Postfix")
        gw.wait_for_log(rf"reject: RCPT from .*\[127\.0\.0\.2\]: 554 5\.7\.1 <{denied}>: Relay "
                        rf"access denied; plugin=access")
        gw.wait_for_log(rf"relay access denied: <{denied}> from client 127\.0\.0\.2")

    def test_relay_network_added_live_lets_relaying_through_to_postfix(self):
        ctl = self.policy()
        gw = self.gateway(ctl)
        t = token()
        relayed = f"relayed-{t}@outside.example"
        c = self.client(gw)
        self.assertEqual(c.cmd("MAIL FROM:<>").code, 250)  # <>: Postfix's bounce is dropped
        self.assertEqual(c.cmd(f"RCPT TO:<{relayed}>").code, 554)
        c.quit()

        mark = log_mark(gw)
        ctl("policy", "network", "add", "127.0.0.2/32")
        wait_policy_applied(gw, mark)

        # The relay client: the gateway passes the recipient on, and the answer is Postfix's
        # own. (The test Postfix delivers nothing off loopback: its transport for other
        # domains is error:, so its smtpd refuses such recipients itself, and logs it.)
        c = self.client(gw, source="127.0.0.2")
        self.assertEqual(c.cmd("MAIL FROM:<>").code, 250)
        r = c.cmd(f"RCPT TO:<{relayed}>")
        self.assert_postfix_answered(r, relayed)
        c.quit()
        # Any other client is still refused.
        c = self.client(gw, source="127.0.0.3")
        self.assertEqual(c.cmd("MAIL FROM:<>").code, 250)
        r = c.cmd(f"RCPT TO:<other-{t}@outside.example>")
        self.assertEqual(r.wire, f"554 5.7.1 <other-{t}@outside.example>: Relay access denied")
        c.quit()

    def test_relay_check_off_leaves_relaying_to_the_backend(self):
        gw = self.gateway(self.policy(access_settings='{"relay_check": false}'))
        gw.wait_for_log(r"relay_check is off")
        c = self.client(gw)
        self.assertEqual(c.cmd("MAIL FROM:<>").code, 250)
        passed = f"passed-{token()}@outside.example"
        self.assert_postfix_answered(c.cmd(f"RCPT TO:<{passed}>"), passed)
        c.quit()


class AccessRulesTest(AccessCase):
    """One gateway per test; each rule's reply reaches the client as written."""

    def test_client_rules(self):
        gw = self.gateway(self.policy(rules=[
            ["--stage", "client", "--pattern", "127.0.0.4", "--action", "deny", "--code", "554",
             "--enhanced", "5.7.1", "--text", "Your network is blocked"],
            ["--stage", "client", "--pattern", "127.0.0.5/32", "--action", "tempfail",
             "--code", "421", "--enhanced", "4.7.0", "--text", "Too busy for you"],
            ["--stage", "client", "--pattern", "127.0.0.6", "--action", "allow"],
        ]))
        c = self.connect(gw, source_address=("127.0.0.4", 0))
        self.assertEqual(c.greeting.wire, "554 5.7.1 Your network is blocked")
        self.assertTrue(c.wait_closed(5))
        c = self.connect(gw, source_address=("127.0.0.5", 0))
        self.assertEqual(c.greeting.wire, "421 4.7.0 Too busy for you")
        self.assertTrue(c.wait_closed(5))
        # allow: a normal session; it does not make the client a relay client.
        c = self.client(gw, source="127.0.0.6")
        self.assertEqual(c.cmd("MAIL FROM:<>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<x@outside.example>").code, 554)
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        c.quit()
        c = self.client(gw, source="127.0.0.7")  # no rule
        c.quit()
        gw.wait_for_log(r"reject: CONNECT from .*\[127\.0\.0\.4\]: 554 5\.7\.1 Your network is "
                        r"blocked; plugin=access")

    def test_helo_rules(self):
        gw = self.gateway(self.policy(rules=[
            ["--stage", "helo", "--pattern", "bad.helo.example", "--action", "deny", "--code",
             "550", "--enhanced", "5.7.1", "--text", "You are not bad.helo.example"],
            ["--stage", "helo", "--pattern", ".slow.example", "--action", "tempfail",
             "--text", "Come back later"],
        ]))
        c = self.connect(gw, source_address=("127.0.0.2", 0))
        r = c.cmd("EHLO BAD.helo.example")
        self.assertEqual(r.wire, "550 5.7.1 You are not bad.helo.example")
        r = c.cmd("HELO mx.slow.example")
        self.assertEqual(r.wire, "450 4.7.1 Come back later")
        self.assertEqual(c.cmd("EHLO good.example").code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<>").code, 250)
        c.quit()

    def test_sender_rules_address_before_domain(self):
        gw = self.gateway(self.policy(rules=[
            ["--stage", "sender", "--pattern", "spammer@elsewhere.example", "--action", "deny",
             "--code", "553", "--enhanced", "5.7.1", "--text", "Sender address rejected"],
            ["--stage", "sender_domain", "--pattern", "spam.example", "--action", "deny",
             "--text", "Domain blocked"],
            ["--stage", "sender", "--pattern", "ceo@spam.example", "--action", "allow"],
            ["--stage", "sender_domain", "--pattern", ".greylist.example", "--action",
             "tempfail", "--code", "451", "--enhanced", "4.7.1", "--text", "Greylisted"],
        ]))
        c = self.client(gw)
        self.assertEqual(c.cmd("MAIL FROM:<spammer@elsewhere.example>").wire,
                         "553 5.7.1 Sender address rejected")
        self.assertEqual(c.cmd("MAIL FROM:<Anyone@Spam.Example>").wire,
                         "554 5.7.1 Domain blocked")
        self.assertEqual(c.cmd("MAIL FROM:<a@mx.greylist.example>").wire,
                         "451 4.7.1 Greylisted")
        self.assertEqual(c.cmd("MAIL FROM:<ceo@spam.example>").code, 250)  # allow beats domain
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        subject = f"ceo-{token()}"
        self.assertEqual(self.send_message(c, subject).code, 250)
        self.assertEqual(c.cmd("MAIL FROM:<>").code, 250)  # the null sender matches nothing
        c.quit()
        self.wait_delivered(subject)

    def test_recipient_rules_and_allowed_domain_skips_the_relay_check(self):
        gw = self.gateway(self.policy(rules=[
            ["--stage", "recipient", "--pattern", "alice@example.test", "--action", "deny",
             "--code", "550", "--enhanced", "5.1.1", "--text", "Alice has left, write to bob"],
            ["--stage", "recipient_domain", "--pattern", "partner.example", "--action",
             "allow"],
            ["--stage", "recipient", "--pattern", "bob@example.test", "--action", "tempfail",
             "--code", "452", "--enhanced", "4.2.2", "--text", "Mailbox full"],
        ]))
        c = self.client(gw)
        self.assertEqual(c.cmd("MAIL FROM:<>").code, 250)
        self.assertEqual(c.cmd("RCPT TO:<alice@example.test>").wire,
                         "550 5.1.1 Alice has left, write to bob")
        self.assertEqual(c.cmd("RCPT TO:<bob@example.test>").wire, "452 4.2.2 Mailbox full")
        backup = f"backup-{token()}@partner.example"
        self.assert_postfix_answered(c.cmd(f"RCPT TO:<{backup}>"), backup)  # allowed: passed on
        self.assertEqual(c.cmd("RCPT TO:<x@sub.partner.example>").code, 554)  # exact domain only
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        c.quit()

    def test_rules_added_live_apply_and_removed_rules_stop_applying(self):
        ctl = self.policy()
        gw = self.gateway(ctl)
        mark = log_mark(gw)
        out = ctl("policy", "access", "add", "--stage", "sender_domain", "--pattern",
                  "live.example", "--action", "deny", "--code", "550", "--enhanced", "5.7.1",
                  "--text", "Blocked live")
        rule_id = out.split()[3].rstrip(":")
        wait_policy_applied(gw, mark)
        c = self.client(gw)
        self.assertEqual(c.cmd("MAIL FROM:<x@live.example>").wire, "550 5.7.1 Blocked live")
        mark = log_mark(gw)
        ctl("policy", "access", "remove", rule_id)
        wait_policy_applied(gw, mark)
        self.assertEqual(c.cmd("MAIL FROM:<x@live.example>").code, 250)
        c.quit()


if __name__ == "__main__":
    unittest.main()
