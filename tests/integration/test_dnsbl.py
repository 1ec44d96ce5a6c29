"""The `dnsbl` plugin (plugins/dnsbl/) in the real gateway in front of a real Postfix, with a
real unbound on loopback serving test blocklists.

Owns: a client listed in an address list (bl.test), a sender domain and a URL domain listed in
a domain list (dbl.test) give their symbols — the delivered message carries the plugin's
X-Mailgate-DNSBL field naming zone, return code and what was listed, and the gateway logs the
same — while a clean client, sender and body get nothing; a list answering outside 127/8
(all.test answers every name with 192.0.2.200, as a lapsed list does) is ignored and logged; a
zone whose server never answers (dead.test, forwarded by unbound to a silent socket) costs a
message at most its timeout_ms although the gateway's resolver would wait 5 s, and the listed
zone's symbol still arrives; reject_on refuses at end of data with 550 5.7.1; with spamscore
after it in the chain, X-Spam-Symbols lists the dnsbl symbols with their details.

The client must come from the listed address, so the test runs in a network namespace of its
own (as test_dmarc does) where lo holds 192.0.2.77 (listed) and 192.0.2.78 (clean).
"""

import json
import os
import sqlite3
import time
import unittest
import uuid

from dnstest import SilentServer, UnboundServer, unbound_binary
from mgtest import base, util
from mgtest.netns import private_network
from mgtest.policyctl import PolicyCtl, builtin_plugin
from mgtest.smtpclient import message_data

LISTED_IP = "192.0.2.77"
CLEAN_IP = "192.0.2.78"
DNS_TIMEOUT_MS = 5000
DEAD_ZONE_TIMEOUT_MS = 500


def _zones(silent_port):
    return "\n".join([
        'local-zone: "bl.test." static',
        'local-data: "bl.test. 3600 IN SOA ns.bl.test. hostmaster.bl.test. 1 3600 600 86400 60"',
        'local-data: "77.2.0.192.bl.test. 300 IN A 127.0.0.2"',
        'local-data: "77.2.0.192.bl.test. 300 IN A 127.0.0.11"',
        'local-zone: "dbl.test." static',
        'local-data: "dbl.test. 3600 IN SOA ns.dbl.test. hostmaster.dbl.test. 1 3600 600 86400 60"',
        'local-data: "spammer.test.dbl.test. 300 IN A 127.0.1.2"',
        'local-data: "evil.test.dbl.test. 300 IN A 127.0.1.4"',
        # A list that answers every name, outside 127/8: broken, must be ignored.
        'local-zone: "all.test." redirect',
        'local-data: "all.test. 300 IN A 192.0.2.200"',
        # A list whose server never answers.
        'local-zone: "dead.test." transparent',
        "do-not-query-localhost: no",
        "forward-zone:",
        '  name: "dead.test."',
        f"  forward-addr: 127.0.0.1@{silent_port}",
    ]) + "\n"


def token():
    return uuid.uuid4().hex[:12]


@unittest.skipUnless(unbound_binary(), "unbound(8) is not installed")
class DnsblGatewayTest(base.PostfixCase):
    @classmethod
    def setUpClass(cls):
        why = private_network([LISTED_IP, CLEAN_IP])
        if why is not None:
            raise unittest.SkipTest(f"needs its own network namespace (root): {why}")
        super().setUpClass()
        try:
            cls.silent = SilentServer()
            cls.dns = UnboundServer(_zones(cls.silent.port)).start()
        except BaseException:
            super().tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.dns.close()
            cls.silent.close()
        finally:
            super().tearDownClass()

    def setUp(self):
        d = util.make_tempdir("mailgate-dnsbl-policy-")
        self.addCleanup(util.remove_tree, d)
        self.dir = d

    def gateway(self, zones, settings=None, name="policy", spamscore=False):
        """A gateway whose chain is dnsbl (then spamscore when asked), with these dnsbl_zones
        rows (zone, kind, symbol, score, codes, timeout_ms)."""
        ctl = PolicyCtl(os.path.join(self.dir, f"{name}.db"))
        ctl.init()
        ctl("policy", "domain", "add", base.DOMAIN)
        chain = [("dnsbl", dict({"header": "X-Mailgate-DNSBL"}, **(settings or {})))]
        if spamscore:
            chain.append(("spamscore", {}))
        for plugin, plugin_settings in chain:
            ctl("policy", "plugin", "add", "--name", plugin, "--path", builtin_plugin(plugin),
                "--settings", json.dumps(plugin_settings), "--fail-mode", "tempfail",
                "--timeout-ms", "15000")
        db = sqlite3.connect(ctl.db)
        try:
            with db:
                db.executemany("INSERT INTO dnsbl_zones (zone, kind, symbol, score, codes, "
                               "timeout_ms) VALUES (?, ?, ?, ?, ?, ?)",
                               [(z, k, s, sc, json.dumps(c), t) for z, k, s, sc, c, t in zones])
        finally:
            db.close()
        gw = self.start_gateway(flags=[f"--policy_db={ctl.db}", "--policy_poll_ms=100",
                                       f"--dns_servers={self.dns.forwarder}",
                                       f"--dns_timeout_ms={DNS_TIMEOUT_MS}"])
        gw.wait_for_log(rf"plugin chains ready \(\d+ profiles, {len(chain)} plugin instances\)")
        return gw

    STANDARD = [
        ("bl.test", "ip", "RBL_TEST", 1.0,
         {"127.0.0.2": {"symbol": "RBL_TEST_SPAM", "score": 3.5}}, 2000),
        ("dbl.test", "domain", "DBL_TEST", 2.0,
         {"127.0.1.4": {"symbol": "DBL_TEST_PHISH", "score": 5}}, 2000),
    ]

    def send(self, gw, source, sender, subject, body):
        """One transaction from `source`; (reply to the end of data, seconds it all took)."""
        started = time.monotonic()
        c = self.connect(gw, source_address=(source, 0), timeout=30)
        self.assertEqual(c.greeting.code, 220, c.greeting)
        self.assertEqual(c.cmd("EHLO client.test").code, 250)
        self.assertEqual(c.cmd(f"MAIL FROM:<{sender}>").code, 250)
        r = c.cmd(f"RCPT TO:<{base.USER}>")
        self.assertEqual(r.code, 250, r)
        self.assertEqual(c.cmd("DATA").code, 354)
        text = (f"From: <{sender}>\r\nTo: <{base.USER}>\r\nSubject: {subject}\r\n"
                f"Date: Sun, 22 Nov 2026 01:00:00 +0000\r\nMessage-ID: <{subject}@client.test>\r\n"
                f"\r\n{body}")
        r = c.data(message_data(text.encode("ascii")))
        took = time.monotonic() - started
        c.quit()
        return r, took

    @staticmethod
    def header_block(msg):
        """The header fields, unfolded, one a line."""
        head = msg.replace("\r\n", "\n").split("\n\n", 1)[0]
        return head.replace("\n ", " ").replace("\n\t", " ")

    def test_listed_client_sender_and_url_domains_carry_their_symbols(self):
        gw = self.gateway(self.STANDARD)
        t = token()
        start = len(gw.log_lines())
        body = "Cheap offers at https://www.evil.test/buy?id=1 and http://clean.test/\r\n"
        r, _ = self.send(gw, LISTED_IP, f"bulk-{t}@mail.spammer.test", f"dnsbl-listed-{t}", body)
        self.assertEqual(r.code, 250, r)
        head = self.header_block(self.wait_delivered(f"dnsbl-listed-{t}"))
        field = [line for line in head.split("\n") if line.startswith("X-Mailgate-DNSBL:")]
        self.assertEqual(len(field), 1, head)
        value = field[0]
        # Two answers from bl.test: 127.0.0.2 has its own symbol, 127.0.0.11 the zone's.
        self.assertIn(f"RBL_TEST_SPAM=3.5 (bl.test 127.0.0.2 client {LISTED_IP})", value)
        self.assertIn(f"RBL_TEST=1 (bl.test 127.0.0.11 client {LISTED_IP})", value)
        self.assertIn("DBL_TEST=2 (dbl.test 127.0.1.2 sender domain spammer.test)", value)
        self.assertIn("DBL_TEST_PHISH=5 (dbl.test 127.0.1.4 url domain evil.test)", value)
        self.assertNotIn("clean.test", value)
        line = gw.wait_for_log(r"plugin dnsbl: listed ", start=start).string
        for needle in (f"RBL_TEST_SPAM=3.5 (bl.test 127.0.0.2 client {LISTED_IP})",
                       "DBL_TEST_PHISH=5 (dbl.test 127.0.1.4 url domain evil.test)"):
            self.assertIn(needle, line)

    def test_spamscore_lists_the_symbols_with_their_details(self):
        try:
            builtin_plugin("spamscore")
        except FileNotFoundError as e:
            self.skipTest(str(e))
        gw = self.gateway(self.STANDARD, settings={"header": ""}, spamscore=True)
        t = token()
        r, _ = self.send(gw, LISTED_IP, f"bulk-{t}@spammer.test", f"dnsbl-score-{t}",
                         "Hello.\r\n")
        self.assertEqual(r.code, 250, r)
        head = self.header_block(self.wait_delivered(f"dnsbl-score-{t}"))
        self.assertNotIn("X-Mailgate-DNSBL", head)
        symbols = [ln for ln in head.split("\n") if ln.startswith("X-Spam-Symbols:")]
        self.assertEqual(len(symbols), 1, head)
        for needle in (f"RBL_TEST_SPAM(3.5)[bl.test 127.0.0.2 client {LISTED_IP}]",
                       f"RBL_TEST(1.0)[bl.test 127.0.0.11 client {LISTED_IP}]",
                       "DBL_TEST(2.0)[dbl.test 127.0.1.2 sender domain spammer.test]"):
            self.assertIn(needle, symbols[0])
        score = [ln for ln in head.split("\n") if ln.startswith("X-Spam-Score:")]
        self.assertEqual(len(score), 1, head)
        self.assertGreaterEqual(float(score[0].split(":", 1)[1]), 6.5)

    def test_clean_client_sender_and_body_get_nothing(self):
        gw = self.gateway(self.STANDARD)
        t = token()
        r, _ = self.send(gw, CLEAN_IP, f"alice-{t}@clean.test", f"dnsbl-clean-{t}",
                         "See https://www.clean.test/ for details.\r\n")
        self.assertEqual(r.code, 250, r)
        msg = self.wait_delivered(f"dnsbl-clean-{t}")
        self.assertNotIn("X-Mailgate-DNSBL", self.header_block(msg))
        self.assertFalse([ln for ln in gw.log_lines() if "plugin dnsbl: listed" in ln])

    def test_list_answering_outside_loopback_is_ignored_and_logged(self):
        gw = self.gateway([("all.test", "ip", "RBL_ALL", 5.0, {}, 2000)])
        t = token()
        start = len(gw.log_lines())
        r, _ = self.send(gw, CLEAN_IP, f"a-{t}@clean.test", f"dnsbl-broken-{t}", "Hi.\r\n")
        self.assertEqual(r.code, 250, r)
        msg = self.wait_delivered(f"dnsbl-broken-{t}")
        self.assertNotIn("X-Mailgate-DNSBL", self.header_block(msg))
        gw.wait_for_log(r"plugin dnsbl: zone all\.test answered 192\.0\.2\.200 for "
                        r"78\.2\.0\.192\.all\.test: not in 127\.0\.0\.0/8, ignored", start=start)

    def test_dead_zone_does_not_delay_mail_beyond_its_timeout(self):
        zones = self.STANDARD + [
            ("dead.test", "ip", "RBL_DEAD", 9.0, {}, DEAD_ZONE_TIMEOUT_MS),
            ("dbl.dead.test", "domain", "DBL_DEAD", 9.0, {}, DEAD_ZONE_TIMEOUT_MS)]
        gw = self.gateway(zones)
        t = token()
        start = len(gw.log_lines())
        r, took = self.send(gw, LISTED_IP, f"bulk-{t}@spammer.test", f"dnsbl-dead-{t}",
                            "Offer: https://evil.test/x\r\n")
        self.assertEqual(r.code, 250, r)
        # The whole transaction (connect to the end-of-data reply, delivery to Postfix included)
        # within the dead zones' timeout plus a margin, far below the resolver's 5 s.
        self.assertLess(took, DEAD_ZONE_TIMEOUT_MS / 1000 + 1.5,
                        f"the transaction took {took:.2f} s")
        head = self.header_block(self.wait_delivered(f"dnsbl-dead-{t}"))
        self.assertIn(f"RBL_TEST_SPAM=3.5 (bl.test 127.0.0.2 client {LISTED_IP})", head)
        self.assertIn("DBL_TEST=2 (dbl.test 127.0.1.2 sender domain spammer.test)", head)
        self.assertNotIn("DEAD", head)
        line = gw.wait_for_log(r"plugin dnsbl: listed .*; skipped ", start=start).string
        self.assertIn(f"dead.test (client {LISTED_IP}: no answer within "
                      f"{DEAD_ZONE_TIMEOUT_MS} ms)", line)
        self.assertIn(f"dbl.dead.test (sender domain spammer.test: no answer within "
                      f"{DEAD_ZONE_TIMEOUT_MS} ms)", line)

    def test_reject_on_refuses_at_end_of_data(self):
        gw = self.gateway(self.STANDARD, settings={"reject_on": ["RBL_TEST_SPAM"]})
        t = token()
        r, _ = self.send(gw, LISTED_IP, f"a-{t}@clean.test", f"dnsbl-reject-{t}", "Hi.\r\n")
        self.assertEqual((r.code, r.enhanced), (550, "5.7.1"), r)
        self.assertIn(f"client {LISTED_IP} is listed by bl.test", r.text)
        self.assertNotIn(t, self.postfix.maillog(), "the refused message reached Postfix")
        r, _ = self.send(gw, CLEAN_IP, f"a-{t}@clean.test", f"dnsbl-pass-{t}", "Hi.\r\n")
        self.assertEqual(r.code, 250, r)
        self.wait_delivered(f"dnsbl-pass-{t}")


if __name__ == "__main__":
    unittest.main()
