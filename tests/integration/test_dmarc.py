"""The `dmarc` plugin (plugins/dmarc/) in the real gateway, after the spf and dkim plugins, in
front of a real Postfix, with a real unbound on loopback serving the test zone dmarc.test.

Owns: a message From a p=reject domain, sent by a host its SPF record does not list and
without a DKIM signature, is refused at end of data with 550 5.7.1 naming the domain's policy,
and Postfix never sees it; a message signed by an independent signer (python3-dkim,
mgtest.dkimtool) for the From domain is delivered even though SPF fails (an aligned DKIM pass
is enough), with a history row holding what an aggregate report needs; an aligned SPF pass from
a subdomain's author (relaxed alignment, organizational-domain fallback) is delivered; a
p=quarantine failure is delivered with the X-Mailgate-DMARC header; with a DNS server that
never answers and "tempfail_on_dns_error" the message is answered 451 4.7.1; and the
Authentication-Results writer (authres, last in the chain) shows dmarc=pass / dmarc=fail on the
delivered messages.

libspf2 gives loopback clients a free pass, so, as in test_spf, the clients connect from
documentation addresses (192.0.2.25 is dmarc.test's mail server, 192.0.2.66 a forger) inside a
network namespace of the test process's own (unshare(CLONE_NEWNET), as root) holding Postfix,
unbound, the gateway and the clients; it vanishes with the process.
"""

import json
import os
import sqlite3
import unittest
import uuid

from dnstest import SilentServer, UnboundServer, txt, unbound_binary
from mgtest import base, dkimtool, util
from mgtest.netns import private_network
from mgtest.policyctl import PolicyCtl, builtin_plugin
from mgtest.smtpclient import message_data

ZONE = "dmarc.test"
GOOD_IP = "192.0.2.25"
FORGER_IP = "192.0.2.66"
CLIENT_IPS = (GOOD_IP, FORGER_IP)
KEY_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit", "plugins",
                       "dkim_keys")


def _read(name):
    with open(os.path.join(KEY_DIR, name), encoding="ascii") as f:
        return f.read().strip()


def _zones():
    return "\n".join([
        f'local-zone: "{ZONE}." static',
        f'local-data: "{ZONE}. 3600 IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 60"',
        f'local-data: "mail.{ZONE}. 300 IN A {GOOD_IP}"',
        txt(f"{ZONE}.", f"v=spf1 ip4:{GOOD_IP} -all"),
        txt(f"_dmarc.{ZONE}.", f"v=DMARC1; p=reject; rua=mailto:dmarc-agg@{ZONE}"),
        txt(f"s2048._domainkey.{ZONE}.", "v=DKIM1; k=rsa; p=" + _read("rsa2048.pub.b64")),
        txt(f"quar.{ZONE}.", "v=spf1 -all"),
        txt(f"_dmarc.quar.{ZONE}.", "v=DMARC1; p=quarantine"),
        txt(f"mail.{ZONE}.", f"v=spf1 ip4:{GOOD_IP} -all"),
    ]) + "\n"


def token():
    return uuid.uuid4().hex[:12]


def message(t, case, author):
    return (f"From: Alice <{author}>\r\n"
            f"To: <{base.USER}>\r\n"
            f"Subject: dmarc-{case}-{t}\r\n"
            f"Date: Sun, 22 Nov 2026 01:00:00 +0000\r\n"
            f"Message-ID: <{t}.{case}@{ZONE}>\r\n"
            f"\r\n"
            f"Hello,\r\n"
            f"this is the {case} case.\r\n")


@unittest.skipUnless(unbound_binary(), "unbound(8) is not installed")
@unittest.skipUnless(dkimtool.available(), "python3-dkim is not installed for /usr/bin/python3")
class DmarcGatewayTest(base.PostfixCase):
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

    def setUp(self):
        d = util.make_tempdir("mailgate-dmarc-policy-")
        self.addCleanup(util.remove_tree, d)
        self.dir = d
        self.history = os.path.join(d, "dmarc-history.db")
        self.gw = self.gateway()

    def gateway(self, dmarc_settings=None, spf_settings=None, dns=None, name="policy"):
        """A gateway with the chain spf, dkim, dmarc, authres."""
        ctl = PolicyCtl(os.path.join(self.dir, f"{name}.db"))
        ctl.init()
        ctl("policy", "domain", "add", base.DOMAIN)
        # SPF only scores here: DMARC decides what an SPF fail means for the From domain.
        chain = [("spf", builtin_plugin("spf"),
                  dict({"fail": "accept", "receiver": "mx.test"}, **(spf_settings or {}))),
                 ("dkim", builtin_plugin("dkim"), {}),
                 ("dmarc", builtin_plugin("dmarc"),
                  dict({"history_db": self.history}, **(dmarc_settings or {}))),
                 ("authres", builtin_plugin("authres"), {"authserv_id": "mx.test"})]
        for plugin, path, settings in chain:
            ctl("policy", "plugin", "add", "--name", plugin, "--path", path,
                "--settings", json.dumps(settings), "--fail-mode", "tempfail",
                "--timeout-ms", "15000")
        gw = self.start_gateway(flags=[f"--policy_db={ctl.db}", "--policy_poll_ms=100",
                                       f"--dns_servers={(dns or self.dns).forwarder}",
                                       "--dns_timeout_ms=1000"])
        gw.wait_for_log(rf"plugin chains ready \(\d+ profiles, {len(chain)} plugin "
                        rf"instances\)")
        return gw

    def send(self, source, sender, text, gw=None):
        """One transaction from `source`; the reply to the end of data."""
        c = self.connect(gw or self.gw, source_address=(source, 0), timeout=30)
        self.assertEqual(c.greeting.code, 220, c.greeting)
        self.assertEqual(c.cmd(f"EHLO mail.{ZONE}").code, 250)
        self.assertEqual(c.cmd(f"MAIL FROM:<{sender}>").code, 250)
        r = c.cmd(f"RCPT TO:<{base.USER}>")
        self.assertEqual(r.code, 250, r)
        self.assertEqual(c.cmd("DATA").code, 354)
        r = c.data(message_data(text.encode("ascii")))
        c.quit()
        return r

    def history_rows(self):
        db = sqlite3.connect(self.history)
        try:
            db.row_factory = sqlite3.Row
            return [dict(r) for r in db.execute("SELECT * FROM dmarc_history ORDER BY id")]
        finally:
            db.close()

    @staticmethod
    def header_block(msg):
        return msg.replace("\r\n", "\n").split("\n\n", 1)[0]

    def test_reject_policy_failure_is_refused_at_end_of_data(self):
        t = token()
        start = len(self.gw.log_lines())
        r = self.send(FORGER_IP, f"ceo-{t}@{ZONE}", message(t, "spoof", f"ceo-{t}@{ZONE}"))
        self.assertEqual((r.code, r.enhanced), (550, "5.7.1"), r)
        self.assertIn(f"DMARC policy of {ZONE} (p=reject)", r.text)
        self.gw.wait_for_log(rf"dmarc: result=fail header\.from={ZONE} .*p=reject .*"
                             rf"spf=fail\({ZONE}\) spf_aligned=no dkim=none dkim_aligned=no "
                             rf"dis=reject applied=reject", start=start)
        rows = self.history_rows()
        self.assertEqual(len(rows), 1, rows)
        row = rows[0]
        self.assertEqual((row["source_ip"], row["header_from"], row["envelope_from"]),
                         (FORGER_IP, ZONE, f"ceo-{t}@{ZONE}"))
        self.assertEqual((row["result"], row["disposition"], row["policy_requested"]),
                         ("fail", "reject", "reject"))
        self.assertEqual((row["spf_result"], row["spf_aligned"], row["dkim_aligned"]),
                         ("fail", "fail", "fail"))
        self.assertEqual(row["rua"], f"mailto:dmarc-agg@{ZONE}")
        self.assertNotIn(t, self.postfix.maillog(), "the spoofed message reached Postfix")
        self.assertIsNone(self.delivered(f"dmarc-spoof-{t}"))

    def test_aligned_dkim_signature_is_delivered_despite_spf_fail(self):
        t = token()
        signed = dkimtool.run([{"op": "sign", "message": message(t, "signed", f"alice@{ZONE}"),
                                "domain": ZONE, "selector": "s2048",
                                "key": _read("rsa2048.pem"), "alg": "rsa-sha256",
                                "canon": "relaxed/relaxed"}])[0]
        # The independent verifier agrees the signature is good with this DNS server.
        self.assertEqual(dkimtool.run([{"op": "verify", "message": signed,
                                        "dns_port": self.dns.port}])[0], [True])
        start = len(self.gw.log_lines())
        r = self.send(FORGER_IP, f"bounce-{t}@{ZONE}", signed)
        self.assertEqual(r.code, 250, r)
        msg = self.wait_delivered(f"dmarc-signed-{t}")
        self.gw.wait_for_log(rf"dmarc: result=pass header\.from={ZONE} .*spf=fail\({ZONE}\) "
                             rf"spf_aligned=no dkim=pass\({ZONE}\) dkim_aligned=yes", start=start)
        self.assertNotIn("X-Mailgate-DMARC", msg)
        rows = self.history_rows()
        self.assertEqual(len(rows), 1, rows)
        row = rows[0]
        self.assertEqual((row["result"], row["disposition"], row["header_from"],
                          row["policy_domain"], row["p"], row["pct"], row["adkim"], row["aspf"]),
                         ("pass", "none", ZONE, ZONE, "reject", 100, "r", "r"))
        self.assertEqual((row["dkim_aligned"], row["spf_aligned"], row["spf_result"],
                          row["spf_domain"], row["spf_scope"]),
                         ("pass", "fail", "fail", ZONE, "mfrom"))
        self.assertEqual(json.loads(row["dkim"]),
                         [{"domain": ZONE, "selector": "s2048", "result": "pass",
                           "aligned": True}])
        self.assertEqual((row["source_ip"], row["helo"], row["envelope_to"]),
                         (FORGER_IP, f"mail.{ZONE}", base.DOMAIN))
        self.assertRegex(self.header_block(msg),
                         rf"Authentication-Results: mx\.test;(\n[ \t][^\n]*)*"
                         rf"dmarc=pass[^\n]*(\n[ \t][^\n]*)*header\.from={ZONE}")

    def test_aligned_spf_pass_from_a_subdomain_author_is_delivered(self):
        t = token()
        start = len(self.gw.log_lines())
        r = self.send(GOOD_IP, f"bounce-{t}@{ZONE}", message(t, "spf", f"news@news.{ZONE}"))
        self.assertEqual(r.code, 250, r)
        self.wait_delivered(f"dmarc-spf-{t}")
        # No record at _dmarc.news.dmarc.test: the organizational domain's record applies.
        self.gw.wait_for_log(rf"dmarc: result=pass header\.from=news\.{ZONE} "
                             rf"policy_domain={ZONE} p=reject .*spf=pass\({ZONE}\) "
                             rf"spf_aligned=yes", start=start)
        row = self.history_rows()[-1]
        self.assertEqual((row["header_from"], row["policy_domain"], row["spf_aligned"]),
                         (f"news.{ZONE}", ZONE, "pass"))

    def test_quarantine_policy_failure_is_delivered_with_the_header(self):
        t = token()
        r = self.send(FORGER_IP, f"x-{t}@quar.{ZONE}", message(t, "quar", f"x-{t}@quar.{ZONE}"))
        self.assertEqual(r.code, 250, r)
        msg = self.wait_delivered(f"dmarc-quar-{t}")
        head = self.header_block(msg)
        self.assertIn(f"X-Mailgate-DMARC: quarantine header.from=quar.{ZONE} policy=quarantine",
                      head)
        row = self.history_rows()[-1]
        self.assertEqual((row["result"], row["disposition"], row["policy_domain"]),
                         ("fail", "quarantine", f"quar.{ZONE}"))
        self.assertRegex(head, rf"dmarc=fail[^\n]*(\n[ \t][^\n]*)*header\.from=quar\.{ZONE}")

    def test_dns_failure_of_the_record_lookup_is_tempfailed_when_set(self):
        silent = SilentServer()
        self.addCleanup(silent.close)
        # SPF's own DNS failure must not decide first: its temperror only scores here.
        gw = self.gateway(dmarc_settings={"tempfail_on_dns_error": True},
                          spf_settings={"temperror": "accept"}, dns=silent, name="silent")
        t = token()
        start = len(gw.log_lines())
        r = self.send(GOOD_IP, f"a-{t}@{ZONE}", message(t, "dnsfail", f"a-{t}@{ZONE}"), gw=gw)
        self.assertEqual((r.code, r.enhanced), (451, "4.7.1"), r)
        self.assertIn(f"DMARC policy of {ZONE} cannot be retrieved now", r.text)
        gw.wait_for_log(rf"dmarc: result=temperror header\.from={ZONE} "
                        rf"\(DNS lookup of _dmarc\.{ZONE} failed\)", start=start)
        self.assertEqual(self.history_rows()[-1]["result"], "temperror")
        self.assertNotIn(t, self.postfix.maillog(), "the message reached Postfix")


if __name__ == "__main__":
    unittest.main()
