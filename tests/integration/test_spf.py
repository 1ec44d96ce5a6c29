"""The `spf` plugin (plugins/spf/) in the real gateway, in front of a real Postfix, with a real
unbound on loopback serving the test zone spf.test.

Owns: a spoofed sender whose domain publishes -all is refused at RCPT with 550 5.7.23 and the
domain's explanation, and Postfix never sees the message; a permitted sender is delivered with
Received-SPF: pass at the top; softfail gets the configured action (tempfail here); with the
DNS server gone the result is temperror, answered 451 4.7.24 within the plugin's timeout; and
the plugin's results agree with python3-spf (spf.check2, asking the same unbound) on a set of
cases covering every result, include, redirect, mx, a, and the RFC 7208 lookup limits.

libspf2 gives loopback clients a free pass, so the clients connect from documentation
addresses (192.0.2.25 is the permitted server, 192.0.2.66 a forger). To keep every packet of
the test inside the test, the whole test process first moves into a network namespace of its
own (unshare(CLONE_NEWNET), as root), brings its loopback up and gives those two addresses to
that namespace's lo: Postfix, unbound, the gateway and the clients all run in it, and it
vanishes with the process. The gateway tells Postfix the real client through XCLIENT;
Postfix trusts the gateway at 127.0.0.1.
"""

import json
import os
import time
import unittest
import uuid

from dnstest import UnboundServer, txt, unbound_binary
from mgtest import base, util
from mgtest.netns import private_network
from mgtest.policyctl import PolicyCtl, builtin_plugin
from mgtest.smtpclient import message_data
from mgtest.spfverify import verifier_available, verify

GOOD_IP = "192.0.2.25"
FORGER_IP = "192.0.2.66"
CLIENT_IPS = (GOOD_IP, FORGER_IP)
RECEIVER = "gateway.mailgate.test"


def _zones():
    lines = [
        'local-zone: "spf.test." static',
        'local-data: "spf.test. 3600 IN SOA ns.spf.test. hostmaster.spf.test. 1 3600 600 86400 60"',
        'local-data: "mail.spf.test. 300 IN A 192.0.2.25"',
        'local-data: "mx.spf.test. 300 IN MX 10 mail.spf.test."',
        'local-data: "norecord.spf.test. 300 IN A 192.0.2.99"',
        'local-data: "helo.spf.test. 300 IN A 192.0.2.25"',
        txt("helo.spf.test.", "v=spf1 a -all"),
        txt("pass.spf.test.", "v=spf1 ip4:192.0.2.25 -all"),
        txt("strict.spf.test.", "v=spf1 a:mail.spf.test -all"),
        txt("soft.spf.test.", "v=spf1 ip4:198.51.100.0/24 ~all"),
        txt("neutral.spf.test.", "v=spf1 ?all"),
        txt("mx.spf.test.", "v=spf1 mx -all"),
        txt("inc.spf.test.", "v=spf1 include:pass.spf.test -all"),
        txt("red.spf.test.", "v=spf1 redirect=strict.spf.test"),
        txt("split.spf.test.", ("v=spf1 ip4:192.0.2.0/28", " ip4:192.0.2.16/28 -all")),
        txt("bad.spf.test.", "v=spf1 ip4:300.0.0.1 -all"),
        txt("exp.spf.test.", "v=spf1 -all exp=why.spf.test"),
        txt("why.spf.test.", "%{i} is not a mail server of %{d}"),
        txt("void.spf.test.", "v=spf1 a:n1.spf.test a:n2.spf.test a:n3.spf.test -all"),
        txt("late.spf.test.", "v=spf1 ip4:192.0.2.25 -all"),
        txt("many.spf.test.",
             "v=spf1 " + " ".join(f"include:i{i}.spf.test" for i in range(1, 12)) + " -all"),
    ]
    for i in range(1, 12):
        lines.append(txt(f"i{i}.spf.test.", "v=spf1 ip4:198.51.100.1 -all"))
    return "\n".join(lines) + "\n"


def token():
    return uuid.uuid4().hex[:12]


@unittest.skipUnless(unbound_binary(), "unbound(8) is not installed")
class SpfCase(base.PostfixCase):
    @classmethod
    def setUpClass(cls):
        why = private_network(CLIENT_IPS)
        if why is not None:
            raise unittest.SkipTest(f"needs its own network namespace (root): {why}")
        super().setUpClass()
        try:
            cls.dns = UnboundServer(_zones()).start()
        except BaseException:
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.dns.close()
        finally:
            super().tearDownClass()

    def gateway(self, settings, dns=None):
        builtin_plugin("spf")  # a clear error when spf.so was not built
        d = util.make_tempdir("mailgate-spf-policy-")
        self.addCleanup(util.remove_tree, d)
        ctl = PolicyCtl(os.path.join(d, "policy.db"))
        ctl.init()
        ctl("policy", "domain", "add", base.DOMAIN)
        settings = dict(settings, receiver=RECEIVER)
        ctl("policy", "plugin", "add", "--name", "spf", "--path", "spf.so",
            "--settings", json.dumps(settings), "--fail-mode", "tempfail",
            "--timeout-ms", "15000")
        gw = self.start_gateway(flags=[f"--policy_db={ctl.db}", "--policy_poll_ms=100",
                                       f"--dns_servers={(dns or self.dns).forwarder}",
                                       "--dns_timeout_ms=2000"])
        gw.wait_for_log(r"plugin chains ready \(\d+ profiles, 1 plugin instances\)")
        return gw

    def client(self, gw, source, helo="client.spf.test"):
        c = self.connect(gw, source_address=(source, 0), timeout=30)
        self.assertEqual(c.greeting.code, 220, c.greeting)
        r = c.cmd(f"EHLO {helo}")
        self.assertEqual(r.code, 250, r)
        return c

    def send_message(self, c, subject):
        r = c.cmd("DATA")
        self.assertEqual(r.code, 354, r)
        return c.data(message_data(f"From: a@spf.test\r\nTo: <{base.USER}>\r\n"
                                   f"Subject: {subject}\r\n\r\nhello\r\n"))

    def delivered(self, subject):
        for m in self.postfix.messages(base.USER):
            if f"Subject: {subject}".encode() in m:
                return m
        return None

    def wait_delivered(self, subject):
        util.wait_until(lambda: self.delivered(subject) is not None, 20,
                        what=f"delivery of {subject!r}\n{self.postfix.maillog()[-3000:]}")
        return self.delivered(subject)


class SpfGatewayTest(SpfCase):
    def test_spoofed_sender_is_rejected_and_postfix_never_sees_it(self):
        gw = self.gateway({})
        c = self.client(gw, FORGER_IP)
        t = token()
        self.assertEqual(c.cmd(f"MAIL FROM:<ceo-{t}@exp.spf.test>").code, 250)
        r = c.cmd(f"RCPT TO:<{base.USER}>")
        self.assertEqual((r.code, r.enhanced), (550, "5.7.23"), r)
        self.assertIn(f"SPF fail for ceo-{t}@exp.spf.test", r.text)
        self.assertIn(f"{FORGER_IP} is not a mail server of exp.spf.test", r.text)
        # Same for a plain -all domain without exp=.
        c.cmd("RSET")
        self.assertEqual(c.cmd(f"MAIL FROM:<ceo-{t}@pass.spf.test>").code, 250)
        r = c.cmd(f"RCPT TO:<{base.USER}>")
        self.assertEqual((r.code, r.enhanced), (550, "5.7.23"), r)
        self.assertIn(f"{FORGER_IP} is not allowed to send mail for pass.spf.test", r.text)
        r = c.cmd("DATA")
        self.assertGreaterEqual(r.code, 500, r)
        c.quit()
        gw.wait_for_log(rf"spf: identity=mailfrom sender=<ceo-{t}@pass\.spf\.test> "
                        rf"ip={FORGER_IP} .*result=fail")
        time.sleep(0.5)
        self.assertNotIn(t, self.postfix.maillog(), "the forged sender reached Postfix")
        self.assertEqual([m for m in self.postfix.messages(base.USER) if t.encode() in m], [])

    def test_permitted_sender_is_delivered_with_received_spf_pass(self):
        gw = self.gateway({})
        c = self.client(gw, GOOD_IP, helo="helo.spf.test")
        t = token()
        self.assertEqual(c.cmd(f"MAIL FROM:<alice-{t}@strict.spf.test>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        subject = f"spf-pass-{t}"
        r = self.send_message(c, subject)
        self.assertEqual(r.code, 250, r)
        c.quit()
        msg = self.wait_delivered(subject).decode("utf-8", "replace")
        header = msg.split("\n\n", 1)[0].split("\r\n\r\n", 1)[0]
        self.assertIn("Received-SPF: pass (gateway.mailgate.test: domain of strict.spf.test "
                      f"designates {GOOD_IP} as permitted sender)", header)
        self.assertIn(f"client-ip={GOOD_IP};", header)
        self.assertIn(f'envelope-from="alice-{t}@strict.spf.test";', header)
        self.assertIn("helo=helo.spf.test;", header)
        self.assertIn("identity=mailfrom;", header)
        # Inserted at the top: above the message's own fields (Postfix adds its trace fields
        # above it on delivery).
        self.assertLess(header.index("Received-SPF:"), header.index("From: a@spf.test"))
        gw.wait_for_log(r"spf: identity=helo sender=<postmaster@helo\.spf\.test> .*result=pass")

    def test_softfail_gets_the_configured_action(self):
        gw = self.gateway({"softfail": "tempfail"})
        c = self.client(gw, GOOD_IP)
        self.assertEqual(c.cmd("MAIL FROM:<bob@soft.spf.test>").code, 250)
        r = c.cmd(f"RCPT TO:<{base.USER}>")
        self.assertEqual((r.code, r.enhanced), (451, "4.7.23"), r)
        self.assertIn("SPF softfail for bob@soft.spf.test", r.text)
        c.quit()
        # With the default action (accept) it is delivered, marked softfail.
        gw2 = self.gateway({})
        c = self.client(gw2, GOOD_IP)
        t = token()
        self.assertEqual(c.cmd(f"MAIL FROM:<bob-{t}@soft.spf.test>").code, 250)
        self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
        subject = f"spf-soft-{t}"
        self.assertEqual(self.send_message(c, subject).code, 250)
        c.quit()
        self.assertIn(b"Received-SPF: softfail", self.wait_delivered(subject))

    def test_dns_server_gone_is_temperror_451_within_the_timeout(self):
        dns = UnboundServer(_zones()).start()
        self.addCleanup(dns.close)
        gw = self.gateway({}, dns=dns)
        c = self.client(gw, GOOD_IP)
        dns.kill()
        start = time.monotonic()
        self.assertEqual(c.cmd("MAIL FROM:<carol@late.spf.test>", timeout=30).code, 250)
        r = c.cmd(f"RCPT TO:<{base.USER}>", timeout=30)
        elapsed = time.monotonic() - start
        self.assertEqual((r.code, r.enhanced), (451, "4.7.24"), r)
        self.assertLess(elapsed, 15.0)
        c.quit()
        gw.wait_for_log(r"spf: identity=mailfrom sender=<carol@late\.spf\.test> .*"
                        r"result=temperror")


@unittest.skipUnless(verifier_available(), "python3-spf is not installed for /usr/bin/python3")
class SpfAgreesWithPyspfTest(SpfCase):
    CASES = [
        (GOOD_IP, "a@pass.spf.test"),
        (FORGER_IP, "a@pass.spf.test"),
        (GOOD_IP, "a@strict.spf.test"),
        (FORGER_IP, "a@soft.spf.test"),
        (GOOD_IP, "a@neutral.spf.test"),
        (GOOD_IP, "a@norecord.spf.test"),
        (GOOD_IP, "a@nowhere.spf.test"),
        (GOOD_IP, "a@mx.spf.test"),
        (FORGER_IP, "a@mx.spf.test"),
        (GOOD_IP, "a@inc.spf.test"),
        (FORGER_IP, "a@red.spf.test"),
        (GOOD_IP, "a@red.spf.test"),
        (GOOD_IP, "a@split.spf.test"),
        (GOOD_IP, "a@bad.spf.test"),
        (GOOD_IP, "a@void.spf.test"),
        (GOOD_IP, "a@many.spf.test"),
    ]
    HELO = "helo.spf.test"

    def test_results_agree_with_python3_spf(self):
        expected = verify(self.dns.port, [(ip, s, self.HELO) for ip, s in self.CASES])
        accept_all = {r: "accept" for r in ("pass", "fail", "softfail", "neutral", "none",
                                            "temperror", "permerror")}
        gw = self.gateway(accept_all)
        got = []
        for ip, sender in self.CASES:
            c = self.client(gw, ip, helo=self.HELO)
            self.assertEqual(c.cmd(f"MAIL FROM:<{sender}>").code, 250)
            self.assertEqual(c.cmd(f"RCPT TO:<{base.USER}>").code, 250)
            c.quit()
            m = gw.wait_for_log(rf"spf: identity=mailfrom sender=<{sender}> ip={ip} .*"
                                rf"result=(\w+)")
            got.append(m.group(1))
        table = "\n".join(f"  {ip:12} {s:22} plugin={g:10} pyspf={e}"
                          for (ip, s), g, e in zip(self.CASES, got, expected))
        self.assertEqual(got, expected, f"\n{table}")
        # Every result kind but temperror is in the set (temperror: the test above).
        self.assertEqual(set(got), {"pass", "fail", "softfail", "neutral", "none", "permerror"})


if __name__ == "__main__":
    unittest.main()
